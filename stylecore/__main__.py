"""`python -m stylecore ...`: the command line; `python -m stylecore worker` goes straight to the worker, so torch
loads only after the worker has set up its stream (the CLI imports the engine as it loads)."""

import sys

if sys.argv[1:2] == ["worker"]:
    from stylecore.frontends.worker import main as worker_main

    sys.exit(worker_main(sys.argv[2:]))

from stylecore.frontends.cli import main

sys.exit(main())
