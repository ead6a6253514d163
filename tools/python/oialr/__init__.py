"""oialr — record PyTorch (or any Python) training into oialr trajectories, and
read oialr's files back into numpy.

    import oialr
    rec = oialr.Recorder(model, "run.h5", every=50)   # records the initial weights
    ...  optimizer.step(); rec.step(loss=loss.item(), acc=acc)
    rec.close()
    # then: oialr analyze run.h5 -o analysis.h5
    res = oialr.open_results("analysis.h5")           # numpy per layer; res.dataframe()
    traj = oialr.open_trajectory("run.h5")            # the snapshots

Docs: docs/python.md (this module), docs/format.md (the file; "Steps").
Command line: python3 -m oialr info|recover|demo FILE.
"""

__version__ = "0.1.0"  # liboialr's OIALR_VERSION_STRING (lib/oialr/base.h)

from .writer import (DEFAULT_METRICS, EVENT_KINDS, FORMAT, FORMAT_VERSION, RECORDER_METRICS,  # noqa: F401
                     Recorder, TrajectoryWriter)
from .reader import Layer, Results, Trajectory, open_results, open_trajectory, read_snapshot  # noqa: F401

__all__ = ["Recorder", "TrajectoryWriter", "open_trajectory", "open_results", "read_snapshot",
           "Trajectory", "Results", "Layer", "FORMAT", "FORMAT_VERSION", "DEFAULT_METRICS",
           "RECORDER_METRICS", "EVENT_KINDS", "__version__"]
