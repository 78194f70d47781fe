#!/usr/bin/env python3
"""One command that sets stylecore up for a user: environment, weights, GIMP plug-in, demo.

    python3 install.py                    # everything, then the demo
    python3 install.py --check            # diagnose every GIMP 3 folder it knows of
    python3 install.py --uninstall        # remove the plug-in from every folder it installed into

Standard library only, so it runs on any Python 3.10+ before anything is installed; the work is done by the
`installer` package beside this file (python3 install.py --help lists the options).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # installer/ and stylecore's stdlib modules

from installer.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
