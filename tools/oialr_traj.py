#!/usr/bin/python3
"""oialr_traj — the old name of oialr's Python writer, kept as a shim.

The writer and readers now live in the `oialr` package (tools/python/oialr,
installed by `make install`; docs/python.md):

    import oialr                     # PYTHONPATH=tools/python from the source tree
    rec = oialr.Recorder(model, "run.h5", every=50)

This file re-exports the same names (TrajectoryWriter, read_snapshot, ...)
for scripts that imported oialr_traj, and `python3 tools/oialr_traj.py info
FILE` runs `python3 -m oialr info FILE`.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))

from oialr import *  # noqa: E402,F401,F403
from oialr import open_trajectory, read_snapshot, Recorder, TrajectoryWriter  # noqa: E402,F401
from oialr.writer import DEFAULT_METRICS, EVENT_DTYPE, EVENT_KINDS, FORMAT, FORMAT_VERSION  # noqa: E402,F401
from oialr.__main__ import demo, info, main as _main  # noqa: E402,F401


def main(argv):
    return _main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
