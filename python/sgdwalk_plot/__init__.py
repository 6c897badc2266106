"""sgdwalk_plot: figures and tables from sgdwalk run directories.

    PYTHONPATH=python /usr/bin/python3 -m sgdwalk_plot RUN [RUN ...] [--out DIR] [--no-theory]

Needs numpy, h5py and matplotlib (Debian: python3-numpy python3-h5py python3-matplotlib).
"""

__all__ = ["theory", "run", "figures"]
