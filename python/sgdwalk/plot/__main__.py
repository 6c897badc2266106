"""python -m sgdwalk.plot RUN [RUN ...]: the sgdwalk_plot command (see sgdwalk.plot.cli)."""

import sys

from .cli import main

sys.exit(main())
