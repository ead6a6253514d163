#!/usr/bin/python3
"""oialr_traj — write (and summarise) oialr trajectories from Python.

Writes exactly the HDF5 layout of docs/format.md (format "oialr-trajectory",
format_version 1) with h5py + numpy, so a run of PyTorch or any other
framework can be analysed by `oialr analyze` and read by the C reader.

Example, in a PyTorch training loop::

    import torch
    from oialr_traj import TrajectoryWriter

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    layers = TrajectoryWriter.layers_of(model)   # every parameter of rank >= 2
    with TrajectoryWriter("run.h5", layers, seed=0, force=True,
                          config={"model": "mlp:256", "optimizer": "sgd"}) as tw:
        step = 0
        for epoch in range(epochs):
            for x, y in loader:
                ...  # forward, backward, optimizer.step()
                if step % 50 == 0:
                    for name, p in model.named_parameters():
                        if name in layers:
                            tw.append(name, step, p.detach().cpu().numpy())
                    tw.append_metrics(step, epoch=step / len(loader),
                                      loss=loss.item(), lr=lr)
                step += 1

To read a snapshot of any oialr trajectory, also a factored one of a
low-rank layer (format version 2), use read_snapshot(f["layers/NAME"], t).

Weights of any shape are stored as their matrix view (out, in*kh*kw...), the
PyTorch layout, exactly as the C recorder does. After the constructor has
created every dataset, the file switches to SWMR mode: readers can follow it
live and a killed run keeps every appended snapshot.

Command line::

    python3 tools/oialr_traj.py info run.h5      # summary (also of a live or killed run)
    python3 tools/oialr_traj.py demo out.h5      # write a small synthetic trajectory
"""

import os
import secrets
import stat
import sys
import time

import h5py
import numpy as np

FORMAT = "oialr-trajectory"
FORMAT_VERSION = 1
NAME_MAX = 64
DEFAULT_METRICS = ("epoch", "loss", "train_acc", "val_loss", "val_acc", "test_loss",
                   "test_acc", "lr", "trainable_fraction", "seconds")
EVENT_KINDS = {"switch": 0, "rotate": 1, "truncate": 2}
EVENT_DTYPE = np.dtype([
    ("step", "<i8"),
    ("layer", "S64"),
    ("kind", h5py.enum_dtype(EVENT_KINDS, basetype="i1")),
    ("stability", "<f8"),
    ("rank_before", "<i4"),
    ("rank_after", "<i4"),
])


def _check_name(what, name):
    if not name or len(name.encode()) >= NAME_MAX or "/" in name or name in (".", ".."):
        raise ValueError(f"{what} name {name!r}: 1..{NAME_MAX - 1} bytes, no '/', not '.'/'..'")


def _check_output(path, force):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise FileExistsError(f"{path} is a symbolic link; oialr does not write through links")
    if not stat.S_ISREG(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a regular file; oialr never writes over it")
    if not force:
        raise FileExistsError(f"{path}: file exists (pass force=True to replace it)")


def _temp_beside(path):
    d, name = os.path.split(path)
    for _ in range(100):
        tmp = os.path.join(d, ".%s.%s.part" % (name, secrets.token_hex(3)))
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free temporary name beside it")


class TrajectoryWriter:
    """Write an oialr trajectory.

    layers:  {name: shape} — the original shape of each weight (rank >= 2,
             or (rows, cols)); declared up front, because SWMR allows no new
             datasets once writing has started.
    metrics: metric column names besides "step" (default: the C recorder's).
    """

    def __init__(self, path, layers, metrics=DEFAULT_METRICS, seed=0, command_line=None,
                 config=None, force=False, compress=0, kinds=None):
        if not layers:
            raise ValueError("no layers to record")
        # The output rules of the C writer (docs/format.md, "Where a new file
        # lives"): only a regular file or nothing at the path, replaced only
        # with force and only once the new file is complete.
        _check_output(path, force)
        self.path, self.force = path, force
        self._tmp = _temp_beside(path)
        self.f = None
        try:
            self._define(layers, metrics, seed, command_line, config, compress, kinds)
            self._publish()
        except BaseException:
            if self.f is not None:
                self.f.close()
            if self._tmp is not None:
                os.unlink(self._tmp)
            raise

    def _publish(self):
        _check_output(self.path, self.force)
        if self.force:
            os.replace(self._tmp, self.path)
        else:
            os.link(self._tmp, self.path)  # never replaces a file that appeared meanwhile
            os.unlink(self._tmp)
        self._tmp = None

    def _define(self, layers, metrics, seed, command_line, config, compress, kinds):
        self.f = h5py.File(self._tmp, "w", libver="latest")
        f = self.f
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int32(FORMAT_VERSION)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.attrs["seed"] = np.uint64(seed)
        f.attrs["command_line"] = command_line if command_line is not None else " ".join(sys.argv)
        f.attrs["library"] = "oialr_traj.py (h5py %s)" % h5py.version.version
        cfg = f.create_group("config")
        for k, v in (config or {}).items():
            cfg.attrs[str(k)] = str(v)
        filt = {}
        if compress:
            filt = dict(shuffle=True, compression="gzip", compression_opts=int(compress))
        lay = f.create_group("layers", track_order=True)
        self.layers = {}
        for name, shape in layers.items():
            _check_name("layer", name)
            shape = tuple(int(s) for s in shape)
            if len(shape) < 2 or len(shape) > 4:
                raise ValueError(f"layer {name}: shape {shape} is not a matrix (rank 2..4)")
            rows, cols = shape[0], int(np.prod(shape[1:]))
            g = lay.create_group(name)
            g.attrs["kind"] = (kinds or {}).get(name, "dense" if len(shape) == 2 else "conv%dd" % (len(shape) - 2))
            g.attrs["shape"] = np.array(shape, dtype="<i8")
            g.attrs["rows"] = np.int64(rows)
            g.attrs["cols"] = np.int64(cols)
            w = g.create_dataset("weight", shape=(0, rows, cols), maxshape=(None, rows, cols),
                                 chunks=(1, rows, cols), dtype="<f4", **filt)
            s = g.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(256,), dtype="<i8")
            r = g.create_dataset("rank", shape=(0,), maxshape=(None,), chunks=(256,), dtype="<i4")
            self.layers[name] = (rows, cols, w, s, r)
        self.columns = tuple(metrics)
        for c in self.columns:
            _check_name("metric", c)
            if c == "step":
                raise ValueError("'step' is always a metric column")
        met = f.create_group("metrics", track_order=True)
        met.attrs["columns"] = ",".join(self.columns)
        self.mstep = met.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(256,), dtype="<i8")
        self.mcols = [met.create_dataset(c, shape=(0,), maxshape=(None,), chunks=(256,), dtype="<f8")
                      for c in self.columns]
        self.events = f.create_dataset("events", shape=(0,), maxshape=(None,), chunks=(64,),
                                       dtype=EVENT_DTYPE)
        ck = f.create_group("checkpoint")
        ck.create_dataset("slot", data=np.array([-1], dtype="<i8"))
        f.flush()
        f.swmr_mode = True

    @staticmethod
    def layers_of(module):
        """{name: shape} of every parameter of rank >= 2 of a torch.nn.Module."""
        return {n: tuple(p.shape) for n, p in module.named_parameters() if p.dim() >= 2}

    def append(self, name, step, weight, rank=0):
        """Append one snapshot of a layer (any array with rows*cols elements)."""
        rows, cols, w, s, r = self.layers[name]
        a = np.asarray(weight, dtype=np.float32).reshape(rows, cols)
        n = min(w.shape[0], s.shape[0], r.shape[0])
        w.resize(n + 1, axis=0)
        w[n] = a
        w.flush()
        r.resize(n + 1, axis=0)
        r[n] = rank if rank > 0 else min(rows, cols)
        r.flush()
        s.resize(n + 1, axis=0)   # the step goes last: it marks the snapshot complete
        s[n] = step
        s.flush()

    def append_metrics(self, step, **values):
        """Append a metrics row; columns not given are NaN."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"unknown metric columns {sorted(unknown)}; declared: {self.columns}")
        n = self.mstep.shape[0]
        for c, d in zip(self.columns, self.mcols):
            d.resize(n + 1, axis=0)
            d[n] = float(values.get(c, np.nan))
            d.flush()
        self.mstep.resize(n + 1, axis=0)
        self.mstep[n] = step
        self.mstep.flush()

    def append_event(self, step, layer, kind, stability=float("nan"), rank_before=0, rank_after=0):
        n = self.events.shape[0]
        self.events.resize(n + 1, axis=0)
        self.events[n] = np.array((step, layer.encode(), EVENT_KINDS[kind], stability, rank_before, rank_after),
                                  dtype=EVENT_DTYPE)
        self.events.flush()

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_trajectory(path):
    """Open for reading; a live or killed run's file needs SWMR-read mode."""
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if "already open for write" not in str(e) and "h5clear" not in str(e):
            raise
        print(f"{path}: opened in SWMR-read mode (writer running or killed; `h5clear -s` clears the mark)",
              file=sys.stderr)
        return h5py.File(path, "r", libver="latest", swmr=True)


def read_snapshot(g, t):
    """Snapshot t of the layer group g (f["layers/fc1.weight"]) as a
    (rows, cols) float32 array: its weight row, or, for a factored snapshot of
    a low-rank layer (format version 2, docs/format.md), U Σ Vᵀ formed from
    u[k][:, :r], sigma[t][:r, :r], v[k][:, :r] with k = basis[t], r = rank[t]."""
    if "basis" in g and g["basis"][t] >= 0:
        k, r = int(g["basis"][t]), int(g["rank"][t])
        u, s, v = g["u"][k][:, :r], g["sigma"][t][:r, :r], g["v"][k][:, :r]
        return ((u @ s) @ v.T).astype(np.float32)
    return g["weight"][t]


def info(path):
    with open_trajectory(path) as f:
        if f.attrs.get("format") != FORMAT:
            raise SystemExit(f"{path}: not an oialr trajectory")
        print(f"{path}: {FORMAT} v{f.attrs['format_version']}, created {f.attrs.get('created')}, "
              f"seed {f.attrs.get('seed')}")
        for name, g in f["layers"].items():
            n = min(g["weight"].shape[0], g["step"].shape[0])
            steps = g["step"][:n]
            rng = f"steps {steps[0]}..{steps[-1]}" if n else "no snapshots"
            fact = ""
            if "basis" in g:
                b = g["basis"][:n]
                fact = f", {int((b >= 0).sum())} factored on {g['basis_step'].shape[0]} bases"
            print(f"  {name:24s} {g.attrs.get('kind', '')!s:8s} {g['weight'].shape[1]}x{g['weight'].shape[2]}"
                  f"  {n} snapshots, {rng}{fact}")
        print(f"  metrics rows: {f['metrics/step'].shape[0]}, events: {f['events'].shape[0]}")


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


def main(argv):
    if len(argv) == 3 and argv[1] == "info":
        info(argv[2])
    elif len(argv) == 3 and argv[1] == "demo":
        demo(argv[2])
    else:
        print(__doc__.split("Command line::")[1].strip("\n"), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
