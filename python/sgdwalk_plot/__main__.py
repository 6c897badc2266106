"""python3 -m sgdwalk_plot: the command of sgdwalk.plot (sgdwalk/plot/cli.py)."""

import sys

from sgdwalk.plot.cli import main

if __name__ == "__main__":
    sys.exit(main())
