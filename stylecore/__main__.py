import sys

from stylecore.frontends.cli import main

sys.exit(main())
