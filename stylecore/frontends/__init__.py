"""The ways in: the command line, the worker process the plug-in talks to, the --remote client run, the demo."""
