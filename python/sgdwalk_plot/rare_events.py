"""python3 -m sgdwalk_plot.rare_events: the FFS Arrhenius plot of sgdwalk.plot.rare_events."""

import sys

from sgdwalk.plot.rare_events import arrhenius, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
