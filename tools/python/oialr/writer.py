"""oialr.writer — write oialr trajectories from Python (h5py + numpy).

Two levels:

* ``Recorder(model, "run.h5", every=50)``: one call for a torch.nn.Module
  (or any object with ``named_parameters()``). It records the initial
  weights at once (step 0); call ``rec.step(loss=..., acc=...)`` after each
  optimizer step and it snapshots every ``every`` steps; ``rec.close()`` (or
  the end of a ``with`` block) records the final weights and closes the file.
* ``TrajectoryWriter(path, {name: shape})``: the file itself; you call
  ``append(name, step, weight)`` and ``append_metrics(step, ...)``.

Both write exactly the layout of docs/format.md (format "oialr-trajectory",
format version 1) and behave as the C recorder does:

* **step** = the number of optimizer updates done when the weights were
  copied: step 0 is the initial weights, step s the weights after s updates
  (docs/format.md, "Steps"). A layer's steps strictly increase and metrics
  steps never decrease: anything else raises ValueError and writes nothing.
* the file is written under a temporary name beside the path and renamed
  into place once every dataset exists; an existing file is replaced only
  with force=True, and only a regular file (never a link, a device...);
* the writer holds the liveness lock of the C writer (oialr._lock), so
  `oialr analyze` and oialr.open_trajectory tell a live run from a killed one;
* SWMR mode: readers can follow the file live, and a killed run keeps every
  snapshot appended before the kill. To read a killed file with tools other
  than oialr and h5py's SWMR mode: ``h5clear -s --increment=0 run.h5``
  (``python3 -m oialr recover run.h5`` runs it for you).

Shapes (the rank limit). A weight of rank 2, 3 or 4 — (out, in), (out, in,
k), (out, in, kh, kw) — is stored as its matrix view (out, in*k...), the
PyTorch layout, with its original shape in the ``shape`` attribute: the
format (and the C reader) keeps at most 4 dimensions. Rank 1 (biases,
norms) is not a matrix and is refused. Recorder records a weight of rank
5 or more (Conv3d) as its matrix view, with ``shape`` = (rows, cols) and the
full shape in the attribute ``full_shape``; TrajectoryWriter refuses it:
pass (rows, cols) yourself.
"""

import fnmatch
import os
import secrets
import stat
import sys
import time
import warnings

import h5py
import numpy as np

from . import _lock

FORMAT = "oialr-trajectory"
FORMAT_VERSION = 1
NAME_MAX = 64
# the C recorder hook's columns (OIALR_TRAJ_METRICS_DEFAULT)
DEFAULT_METRICS = ("epoch", "loss", "train_acc", "val_loss", "val_acc", "test_loss",
                   "test_acc", "lr", "trainable_fraction", "seconds")
# Recorder's: what a torch loop usually has at hand
RECORDER_METRICS = ("epoch", "loss", "acc", "lr", "val_loss", "val_acc", "test_loss",
                    "test_acc", "seconds")
EVENT_KINDS = {"switch": 0, "rotate": 1, "truncate": 2}
EVENT_DTYPE = np.dtype([
    ("step", "<i8"),
    ("layer", "S64"),
    ("kind", h5py.enum_dtype(EVENT_KINDS, basetype="i1")),
    ("stability", "<f8"),
    ("rank_before", "<i4"),
    ("rank_after", "<i4"),
])
RECOVER_ADVICE = "h5clear -s --increment=0 {path}   (or: python3 -m oialr recover {path}; only once its writer is dead)"


def _library():
    from . import __version__
    return "oialr %s (Python, h5py %s)" % (__version__, h5py.version.version)


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
    if _lock.held(path):
        raise BlockingIOError(f"{path}: another process is writing this trajectory; nothing was changed")
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


def _step_int(step):
    if isinstance(step, (bool, float)) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step {step!r}: an integer count of optimizer updates")
    step = int(step)
    if step < 0:
        raise ValueError(f"step {step}: steps are >= 0 (0 = the initial weights)")
    return step


class TrajectoryWriter:
    """Write an oialr trajectory.

    layers:  {name: shape}, the original shape of each weight (rank 2..4,
             see the module's doc); declared up front, because SWMR allows no
             new datasets once writing has started.
    metrics: metric column names besides "step" (default: the C recorder's).
    kinds:   {name: kind} ("dense", "conv2d", ...; default from the rank).
    """

    def __init__(self, path, layers, metrics=DEFAULT_METRICS, seed=0, command_line=None,
                 config=None, force=False, compress=0, kinds=None, attrs=None):
        if not layers:
            raise ValueError("no layers to record")
        # The output rules of the C writer (docs/format.md, "Where a new file
        # lives"): only a regular file or nothing at the path, replaced only
        # with force, never while another writer records it, and only once
        # the new file is complete.
        path = os.fspath(path)
        _check_output(path, force)
        self.path, self.force = path, force
        self.f = None
        self._lockfd = None
        self._warned = set()
        self._tmp = _temp_beside(path)
        try:
            self._lockfd = _lock.take(self._tmp)
            self._define(layers, metrics, seed, command_line, config, compress, kinds, attrs or {})
            self._publish()
        except BaseException:
            if self.f is not None:
                self.f.close()
                self.f = None
            self._release()
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

    def _release(self):
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None

    def _define(self, layers, metrics, seed, command_line, config, compress, kinds, attrs):
        self.f = h5py.File(self._tmp, "w", libver="latest")
        f = self.f
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int32(FORMAT_VERSION)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.attrs["seed"] = np.uint64(seed)
        f.attrs["command_line"] = command_line if command_line is not None else " ".join(sys.argv)
        f.attrs["library"] = _library()
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
                raise ValueError(f"layer {name}: shape {shape}: the format stores weights of rank 2..4 "
                                 f"(rank 1 is not a matrix; for rank 5 or more give the matrix view "
                                 f"(out, in*k*...) as the shape)")
            if min(shape) <= 0:
                raise ValueError(f"layer {name}: shape {shape} has an empty dimension")
            rows, cols = shape[0], int(np.prod(shape[1:]))
            g = lay.create_group(name)
            g.attrs["kind"] = (kinds or {}).get(name, "dense" if len(shape) == 2 else "conv%dd" % (len(shape) - 2))
            g.attrs["shape"] = np.array(shape, dtype="<i8")
            g.attrs["rows"] = np.int64(rows)
            g.attrs["cols"] = np.int64(cols)
            for k, v in attrs.get(name, {}).items():
                g.attrs[k] = v
            w = g.create_dataset("weight", shape=(0, rows, cols), maxshape=(None, rows, cols),
                                 chunks=(1, rows, cols), dtype="<f4", **filt)
            s = g.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(256,), dtype="<i8")
            r = g.create_dataset("rank", shape=(0,), maxshape=(None,), chunks=(256,), dtype="<i4")
            self.layers[name] = (rows, cols, w, s, r)
        self.last_step = {name: -1 for name in self.layers}
        self.columns = tuple(metrics)
        for c in self.columns:
            _check_name("metric", c)
            if c == "step":
                raise ValueError("'step' is always a metric column")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"metric columns {self.columns}: a name twice")
        met = f.create_group("metrics", track_order=True)
        met.attrs["columns"] = ",".join(self.columns)
        self.mstep = met.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(256,), dtype="<i8")
        self.mcols = [met.create_dataset(c, shape=(0,), maxshape=(None,), chunks=(256,), dtype="<f8")
                      for c in self.columns]
        self.last_metrics_step = -1
        self.events = f.create_dataset("events", shape=(0,), maxshape=(None,), chunks=(64,),
                                       dtype=EVENT_DTYPE)
        ck = f.create_group("checkpoint")
        ck.create_dataset("slot", data=np.array([-1], dtype="<i8"))
        f.flush()
        f.swmr_mode = True

    @staticmethod
    def layers_of(module):
        """{name: shape} of every parameter of rank 2..4 of a torch.nn.Module."""
        return {n: tuple(p.shape) for n, p in module.named_parameters() if 2 <= p.dim() <= 4}

    def _open(self):
        if self.f is None:
            raise ValueError(f"{self.path}: the writer is closed")

    def append(self, name, step, weight, rank=0):
        """Append one snapshot of a layer (any array with rows*cols elements)
        at `step`, which must be larger than the layer's previous step."""
        self._open()
        if name not in self.layers:
            raise KeyError(f"no layer {name!r} was declared; declared: {', '.join(self.layers)}")
        rows, cols, w, s, r = self.layers[name]
        step = _step_int(step)
        if step <= self.last_step[name]:
            raise ValueError(f"{self.path}: layer {name}: step {step} after step {self.last_step[name]}: "
                             f"a layer's steps must strictly increase (docs/format.md, 'Steps'); nothing written")
        a = np.asarray(weight, dtype=np.float32)
        if a.size != rows * cols:
            raise ValueError(f"layer {name}: {a.size} values, the layer has {rows}x{cols}")
        a = a.reshape(rows, cols)
        if name not in self._warned and not np.isfinite(a).all():
            self._warned.add(name)
            warnings.warn(f"{self.path}: layer {name} at step {step} has {int((~np.isfinite(a)).sum())} "
                          f"NaN/Inf values; recorded as they are", RuntimeWarning, stacklevel=2)
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
        self.last_step[name] = step

    def append_metrics(self, step, **values):
        """Append a metrics row at `step` (never below the previous row's;
        rows may share a step); columns not given are NaN."""
        self._open()
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"unknown metric columns {sorted(unknown)}; declared: {', '.join(self.columns)} "
                           f"(declare columns up front: metrics=(...))")
        step = _step_int(step)
        if step < self.last_metrics_step:
            raise ValueError(f"{self.path}: metrics row at step {step} after step {self.last_metrics_step}: "
                             f"metrics steps never decrease (docs/format.md, 'Steps'); nothing written")
        row = [float(values.get(c, np.nan)) for c in self.columns]
        n = self.mstep.shape[0]
        for v, d in zip(row, self.mcols):
            d.resize(n + 1, axis=0)
            d[n] = v
            d.flush()
        self.mstep.resize(n + 1, axis=0)
        self.mstep[n] = step
        self.mstep.flush()
        self.last_metrics_step = step

    def append_event(self, step, layer, kind, stability=float("nan"), rank_before=0, rank_after=0):
        """Append a low-rank decision (kind: switch, rotate or truncate)."""
        self._open()
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind {kind!r}: one of {', '.join(EVENT_KINDS)}")
        if len(layer.encode()) >= NAME_MAX:
            raise ValueError(f"event layer {layer!r}: at most {NAME_MAX - 1} bytes")
        n = self.events.shape[0]
        self.events.resize(n + 1, axis=0)
        self.events[n] = np.array((_step_int(step), layer.encode(), EVENT_KINDS[kind], stability,
                                   rank_before, rank_after), dtype=EVENT_DTYPE)
        self.events.flush()

    def close(self):
        """Close the file and release the lock. Raises OSError if the path no
        longer names the file this writer wrote (removed or replaced)."""
        if self.f is None:
            return
        self.f.close()
        self.f = None
        moved = False
        if self._lockfd is not None:
            a = os.fstat(self._lockfd)
            try:
                b = os.stat(self.path)
                moved = (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)
            except FileNotFoundError:
                moved = True
        self._release()
        if moved:
            raise OSError(f"{self.path}: the file was removed or replaced by another process while this run "
                          f"wrote it; what this run recorded is not at that path")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------
# Recorder: one call from a torch loop

_KINDS = {"Linear": "dense", "LazyLinear": "dense", "Bilinear": "bilinear", "Conv1d": "conv1d",
          "Conv2d": "conv2d", "Conv3d": "conv3d", "ConvTranspose1d": "convtranspose1d",
          "ConvTranspose2d": "convtranspose2d", "ConvTranspose3d": "convtranspose3d",
          "Embedding": "embedding", "MultiheadAttention": "attn"}


def _kind_of(model, pname, ndim):
    mod, _, leaf = pname.rpartition(".")
    mro = []
    if hasattr(model, "get_submodule"):
        try:
            mro = [c.__name__ for c in type(model.get_submodule(mod)).__mro__]
        except (AttributeError, TypeError):
            mro = []
    for cls in mro:  # a subclass of Linear is dense too (attention's out_proj)
        if cls in _KINDS:
            k = _KINDS[cls]
            return f"attn.{leaf}" if k == "attn" else k
    if mro:
        return mro[0].lower()
    return "dense" if ndim == 2 else "conv%dd" % (ndim - 2)


def select_layers(names, layers):
    """The names among `names` (the weight matrices) that `layers` selects:
    "*", comma-separated fnmatch patterns ("fc*,conv1.weight"), or a list of
    patterns. Warns about each pattern that matches nothing; ValueError
    listing the names if nothing is selected."""
    pats = [p.strip() for p in layers.split(",")] if isinstance(layers, str) else [str(p) for p in layers]
    pats = [p for p in pats if p]
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    for p in pats:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            hint = f" (did you mean '{p}.weight'?)" if p + ".weight" in names else ""
            warnings.warn(f"layers: pattern '{p}' matches no weight matrix{hint}", UserWarning, stacklevel=3)
    if not chosen:
        raise ValueError(f"layers {layers!r} select no weight matrix; the weight matrices are: "
                         f"{', '.join(names) if names else '(none)'}")
    return chosen


def _as_numpy(p):
    """A parameter (torch tensor or array-like) as a float32 numpy array."""
    if hasattr(p, "detach"):
        t = p.detach()
        if hasattr(t, "float"):
            t = t.float()
        return t.cpu().numpy()
    return np.asarray(p, dtype=np.float32)


class Recorder:
    """Record a model's weight matrices while it trains::

        rec = oialr.Recorder(model, "run.h5", every=50, layers="*")  # step 0: initial weights
        for x, y in loader:
            ...; loss.backward(); optimizer.step()
            rec.step(loss=loss.item(), acc=acc)  # snapshots when step % every == 0
        rec.close()                              # the final weights too

    model:    a torch.nn.Module, or anything with named_parameters()
    every:    snapshot every this many optimizer steps (>= 1)
    layers:   which parameters: "*" (every weight of rank >= 2), or
              comma-separated fnmatch patterns of parameter names
              ("fc*,conv1.weight"), or a list of them; biases and norms
              (rank 1) are never recorded
    metrics:  the metric columns rec.step()/rec.log() accept (the file
              declares them up front); "epoch" and "seconds" are filled in
              when not given (epoch needs steps_per_epoch)
    start_step: the steps already done (a resumed loop); the first snapshot
              is then taken at that step
    Also: force, seed, config (dict -> /config attributes), compress (gzip
    level), command_line.

    Step: rec.steps counts the optimizer updates done; the snapshot with
    step s holds the weights after s updates (step 0: before any).
    """

    def __init__(self, model, path, every=50, layers="*", metrics=RECORDER_METRICS, force=False,
                 seed=None, config=None, compress=0, steps_per_epoch=None, start_step=0, command_line=None):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every={every!r}: snapshot every N >= 1 optimizer steps")
        if steps_per_epoch is not None and steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch={steps_per_epoch!r}: > 0 or None")
        self.every = int(every)
        self.steps_per_epoch = steps_per_epoch
        params = list(model.named_parameters())
        mats = [(n, p) for n, p in params if len(tuple(p.shape)) >= 2]
        chosen = set(select_layers([n for n, _ in mats], layers))
        self._params = [(n, p) for n, p in mats if n in chosen]
        shapes, kinds, attrs = {}, {}, {}
        for n, p in self._params:
            shape = tuple(int(s) for s in p.shape)
            kinds[n] = _kind_of(model, n, len(shape))
            if len(shape) > 4:
                attrs[n] = {"full_shape": np.array(shape, dtype="<i8")}
                shape = (shape[0], int(np.prod(shape[1:])))
            shapes[n] = shape
        if seed is None:
            torch = sys.modules.get("torch")
            seed = torch.initial_seed() % (1 << 64) if torch is not None else 0
        cfg = {"model": type(model).__name__, "record_every": self.every,
               "record_layers": layers if isinstance(layers, str) else ",".join(layers)}
        torch = sys.modules.get("torch")
        if torch is not None:
            cfg["framework"] = "torch " + str(getattr(torch, "__version__", "?"))
        if steps_per_epoch:
            cfg["steps_per_epoch"] = steps_per_epoch
        cfg.update(config or {})
        self.columns = tuple(metrics)
        self.writer = TrajectoryWriter(path, shapes, metrics=self.columns, seed=seed, config=cfg, force=force,
                                       compress=compress, kinds=kinds, attrs=attrs, command_line=command_line)
        self.path = self.writer.path
        self.steps = _step_int(start_step)
        self.last_snapshot = -1
        self._t0 = time.monotonic()
        try:
            self.snapshot()
        except BaseException:
            self.writer.close()
            raise

    @property
    def layer_names(self):
        return [n for n, _ in self._params]

    def _row(self, values):
        v = dict(values)
        if "seconds" in self.columns and "seconds" not in v:
            v["seconds"] = time.monotonic() - self._t0
        if "epoch" in self.columns and "epoch" not in v and self.steps_per_epoch:
            v["epoch"] = self.steps / self.steps_per_epoch
        return v

    def snapshot(self):
        """Record every selected weight now, at rec.steps (once per step)."""
        if self.last_snapshot == self.steps:
            return False
        for n, p in self._params:
            self.writer.append(n, self.steps, _as_numpy(p))
        self.last_snapshot = self.steps
        return True

    def step(self, step=None, **metrics):
        """Call after each optimizer step: counts it, and every `every` steps
        records the weights and a metrics row of `metrics`. step=N says how
        many updates are done instead of counting one (it must grow).
        Returns True if it recorded a snapshot."""
        if step is None:
            new = self.steps + 1
        else:
            new = _step_int(step)
            if new <= self.steps:
                raise ValueError(f"{self.path}: step {new} after step {self.steps}: steps count optimizer "
                                 f"updates and must increase (docs/format.md, 'Steps'); nothing written")
        unknown = set(metrics) - set(self.columns)
        if unknown:  # before counting, so a bad call changes nothing
            raise KeyError(f"unknown metric columns {sorted(unknown)}; declared: {', '.join(self.columns)} "
                           f"(Recorder(..., metrics=(...)))")
        self.steps = new
        if self.steps % self.every:
            return False
        self.snapshot()
        self.writer.append_metrics(self.steps, **self._row(metrics))
        return True

    def log(self, **metrics):
        """A metrics row at the current step without a snapshot (e.g. the
        validation accuracy after an evaluation)."""
        self.writer.append_metrics(self.steps, **self._row(metrics))

    def event(self, layer, kind, stability=float("nan"), rank_before=0, rank_after=0):
        """A low-rank decision at the current step (docs/format.md, Events)."""
        self.writer.append_event(self.steps, layer, kind, stability, rank_before, rank_after)

    def close(self, final=True):
        """Record the final weights (unless final=False or already recorded
        at this step) and close the file."""
        if self.writer.f is None:
            return
        try:
            if final:
                self.snapshot()
        finally:
            self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # a run stopped by Ctrl-C keeps its last weights, as `oialr train` does;
        # after an error the weights may be what broke: not recorded
        self.close(final=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
