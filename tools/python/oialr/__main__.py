"""python3 -m oialr — the Python writer's command-line tools.

    python3 -m oialr info FILE      summary of a trajectory (also of a live or
                                    killed run) or of an analysis results file
    python3 -m oialr recover FILE   make a killed run's file readable by every
                                    HDF5 tool: h5clear -s --increment=0 FILE,
                                    refused while a writer still holds it
    python3 -m oialr demo FILE      write a small synthetic trajectory

Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
"""

import os
import shutil
import subprocess
import sys

import numpy as np

from . import _lock
from .reader import RESULTS_FORMAT, _h5open, _text, open_trajectory, recover_advice
from .writer import TrajectoryWriter


def info(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    f, _ = _h5open(path)
    fmt = _text(f.attrs.get("format", ""))
    if fmt == RESULTS_FORMAT:
        print(f"{path}: oialr analysis results v{f.attrs.get('format_version')} of {_text(f.attrs.get('source'))}"
              f", {len(f['layers'])} layers, lag {f.attrs.get('lag')}")
        f.close()
        return
    f.close()
    with open_trajectory(path) as t:
        a = t.attrs
        print(f"{path}: oialr-trajectory v{t.format_version}, created {a.get('created')}, seed {a.get('seed')}, "
              f"written by {a.get('library', '?')}")
        if t.writer_alive:
            print("  a writer is recording it (live): what is there so far")
        elif t.killed:
            print("  its writer did not close it (killed?): every snapshot it flushed is below; for other "
                  f"HDF5 tools: {recover_advice(path)}")
        for name, lay in t.layers.items():
            n = len(lay)
            rng = f"steps {lay.steps[0]}..{lay.steps[-1]}" if n else "no snapshots"
            fact = ""
            g = lay.group
            if "basis" in g:
                b = g["basis"][:n]
                fact = f", {int((b >= 0).sum())} factored on {g['basis_step'].shape[0]} bases"
            print(f"  {name:24s} {lay.kind:8s} {lay.rows}x{lay.cols}  {n} snapshots, {rng}{fact}")
        m = t.metrics()
        print(f"  metrics rows: {len(m['step'])} ({', '.join(k for k in m if k != 'step')}), "
              f"events: {len(t.events())}")


def recover(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if _lock.held(path):
        raise RuntimeError(f"{path}: a writer process is recording it; recover only a file whose writer is dead")
    h5clear = shutil.which("h5clear")
    if not h5clear:
        raise RuntimeError("h5clear not found (Debian: apt-get install hdf5-tools)")
    r = subprocess.run([h5clear, "-s", "--increment=0", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{path}: h5clear failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    print(f"{path}: recovered (h5clear -s --increment=0): every HDF5 tool reads it now")


def demo(path):
    rng = np.random.default_rng(0)
    layers = {"fc1.weight": (32, 16), "conv.weight": (8, 3, 3, 3)}
    with TrajectoryWriter(path, layers, seed=1, force=True, config={"model": "demo"}) as tw:
        ws = {n: rng.standard_normal(s).astype(np.float32) for n, s in layers.items()}
        for step in range(0, 101, 10):
            for n, w in ws.items():
                w += 0.01 * rng.standard_normal(w.shape).astype(np.float32)
                tw.append(n, step, w)
            tw.append_metrics(step, epoch=step / 100, loss=1.0 / (1 + step))
        tw.append_event(60, "fc1.weight", "switch", 0.995, 16, 16)
    print(f"{path}: written")


COMMANDS = {"info": info, "recover": recover, "demo": demo}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0] in ("-h", "--help"):
        print(__doc__.strip("\n"))
        return 0
    if len(argv) != 2 or argv[0] not in COMMANDS:
        print(__doc__.strip("\n"), file=sys.stderr)
        return 2
    try:
        COMMANDS[argv[0]](argv[1])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # one line, never a traceback (OIALR_PY_DEBUG=1 shows it)
        if os.environ.get("OIALR_PY_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, OSError) and ("addr overflow" in str(e) or "truncated" in str(e)):
            msg += (" — the file ends before data its metadata points to: part of it is lost (a plain "
                    "`h5clear -s` after a kill cuts off what was written since the last clean close; "
                    "recover a killed file with `h5clear -s --increment=0`, docs/format.md)")
        print(f"oialr {argv[0]}: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
