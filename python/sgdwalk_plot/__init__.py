"""sgdwalk_plot: the command that turns sgdwalk run directories into figures and tables.

    PYTHONPATH=python /usr/bin/python3 -m sgdwalk_plot RUN [RUN ...] [--out DIR] [--no-theory]

The plotting code is ``sgdwalk.plot`` (python/sgdwalk/plot); this package only keeps the command's
name. Needs numpy, h5py and matplotlib (Debian: python3-numpy python3-h5py python3-matplotlib), not
sgdwalk's compiled core.
"""
