"""The installer behind install.py: standard library only, so it runs on any Python 3.10+ before anything is installed.

Modules: common (messages, errors, subprocess), discovery (GIMP folders, the Flatpak, the record of installs),
torch_choice, native (the host's worker environment), flatpak (the sandbox's), plugin (the plug-in folder),
check (--check), uninstall (--uninstall), cli (the options and the install itself).
"""
