"""oialr.reader — read oialr files into numpy: trajectories and analysis results.

* ``open_trajectory("run.h5")`` -> Trajectory: its layers, each snapshot as a
  (rows, cols) float32 array (also the factored snapshots of a low-rank
  layer, format version 2), the metrics and the events. A file whose writer
  is still running, or was killed, is opened in SWMR-read mode (the file is
  never modified); ``t.writer_alive`` tells which, from the writer's lock.
* ``open_results("analysis.h5")`` -> Results (`oialr analyze`'s output,
  docs/analyze.md): per layer a dict of numpy arrays (stability, sigma,
  ranks...), the mean stability, and ``dataframe()``: one pandas row per
  (layer, snapshot) when pandas is installed (Debian: python3-pandas).
"""

import h5py
import numpy as np

from . import _lock
from .writer import FORMAT, RECOVER_ADVICE

RESULTS_FORMAT = "oialr-analysis"
TRAJ_VERSION_MAX = 2
RESULTS_VERSION_MAX = 1


def _text(v):
    """An attribute as Python: str for strings (bytes from older files too)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO" and v.shape == ():
        return _text(v[()])
    return v


def _h5open(path):
    """(h5py.File, swmr): a plain read-only open, or SWMR-read for a file
    whose writer runs or was killed. Never writes to the file."""
    try:
        return h5py.File(path, "r"), False
    except OSError as e:
        msg = str(e)
        if "already open for write" not in msg and "h5clear" not in msg and "unable to lock" not in msg:
            raise
    return h5py.File(path, "r", libver="latest", swmr=True), True


def _what_is(path, f):
    fmt = _text(f.attrs.get("format", ""))
    if fmt == FORMAT:
        return "an oialr trajectory"
    if fmt == RESULTS_FORMAT:
        src = _text(f.attrs.get("source", ""))
        return "an oialr analysis results file (oialr analyze's output" + (f", made from {src})" if src else ")")
    if fmt:
        return f"an HDF5 file of format {fmt!r}"
    return "an HDF5 file without a 'format' attribute"


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


class Layer:
    """One recorded weight matrix: len(layer) snapshots, layer[t] is
    snapshot t as (rows, cols) float32, layer.steps their steps."""

    def __init__(self, name, g, swmr=False):
        self.name, self.group, self._swmr = name, g, swmr
        self.kind = _text(g.attrs.get("kind", ""))
        self.shape = tuple(int(x) for x in g.attrs.get("shape", ()))
        self.rows, self.cols = int(g.attrs["rows"]), int(g.attrs["cols"])
        self.refresh()

    def refresh(self):
        g = self.group
        if self._swmr:
            for k in ("weight", "step", "rank", "basis"):
                if k in g:
                    g[k].refresh()
        # a snapshot is complete once its step is written (docs/format.md)
        n = min(g["weight"].shape[0], g["step"].shape[0], g["rank"].shape[0])
        if "basis" in g:
            n = min(n, g["basis"].shape[0])
        self.steps = g["step"][:n]
        self.ranks = g["rank"][:n]

    def __len__(self):
        return len(self.steps)

    def __getitem__(self, t):
        n = len(self)
        if t < 0:
            t += n
        if not 0 <= t < n:
            raise IndexError(f"layer {self.name}: snapshot {t} of {n}")
        return read_snapshot(self.group, t)

    def at_step(self, step):
        """The snapshot recorded at `step` (KeyError if none)."""
        i = np.searchsorted(self.steps, step)
        if i >= len(self) or self.steps[i] != step:
            raise KeyError(f"layer {self.name}: no snapshot at step {step}")
        return self[int(i)]

    def __iter__(self):
        """(step, W) for every snapshot."""
        for t in range(len(self)):
            yield int(self.steps[t]), self[t]

    def __repr__(self):
        return f"<oialr layer {self.name} {self.kind} {self.rows}x{self.cols}, {len(self)} snapshots>"


class Trajectory:
    """An oialr trajectory opened for reading (use open_trajectory)."""

    def __init__(self, path):
        self.path = path
        self.writer_alive = _lock.held(path)
        self.file, self.swmr = _h5open(path)
        try:
            f = self.file
            if _text(f.attrs.get("format", "")) != FORMAT:
                raise ValueError(f"{path}: {_what_is(path, f)}, not an oialr trajectory")
            self.format_version = int(f.attrs.get("format_version", 0))
            if not 1 <= self.format_version <= TRAJ_VERSION_MAX:
                raise ValueError(f"{path}: format_version {self.format_version}; this reader reads 1..{TRAJ_VERSION_MAX}")
            self.attrs = {k: _text(v) for k, v in f.attrs.items()}
            self.config = {k: _text(v) for k, v in f["config"].attrs.items()} if "config" in f else {}
            self.layers = {n: Layer(n, g, self.swmr) for n, g in f["layers"].items()}
        except BaseException:
            self.file.close()
            raise

    @property
    def killed(self):
        """True if the file was left open for write by a writer that is gone."""
        return self.swmr and not self.writer_alive

    def refresh(self):
        """Follow a live run: see what its writer appended since."""
        for lay in self.layers.values():
            lay.refresh()

    def metrics(self):
        """{"step": int64 array, column: float64 array, ...}, the complete rows."""
        m = self.file["metrics"]
        cols = [c for c in _text(m.attrs.get("columns", "")).split(",") if c and c in m]
        ds = [m["step"]] + [m[c] for c in cols]
        if self.swmr:
            for d in ds:
                d.refresh()
        n = min(d.shape[0] for d in ds)
        out = {"step": m["step"][:n]}
        for c in cols:
            out[c] = m[c][:n]
        return out

    def events(self):
        """The events as a structured array (layer as str, kind as its name)."""
        e = self.file["events"]
        if self.swmr:
            e.refresh()
        raw = e[:]
        enum = h5py.check_enum_dtype(e.dtype["kind"]) or {"switch": 0, "rotate": 1, "truncate": 2}
        names = {v: k for k, v in enum.items()}
        out = np.empty(len(raw), dtype=[("step", "<i8"), ("layer", "O"), ("kind", "O"), ("stability", "<f8"),
                                        ("rank_before", "<i4"), ("rank_after", "<i4")])
        for k in ("step", "stability", "rank_before", "rank_after"):
            out[k] = raw[k]
        out["layer"] = [_text(x) for x in raw["layer"]]
        out["kind"] = [names.get(int(x), str(int(x))) for x in raw["kind"]]
        return out

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = " (live)" if self.writer_alive else " (writer killed)" if self.swmr else ""
        return f"<oialr trajectory {self.path}: {len(self.layers)} layers{state}>"


def open_trajectory(path):
    """Open an oialr trajectory for reading (also while it is written, or
    after its writer was killed: SWMR-read, the file stays as it is)."""
    return Trajectory(path)


class Results:
    """`oialr analyze`'s results file (use open_results).

    layers:          {name: {dataset: numpy array}} ("step", "stability",
                     "sigma" [T, n], "rank", "cutoff_rank", ...), in file order
    layer_attrs:     {name: {attr: value}} (rows, cols, kind, stable_step, ...)
    mean_stability:  {"step", "value", "layers": arrays}
    attrs:           the file's attributes (lag, beta, tau, policy...), str as str
    """

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as f:
            if _text(f.attrs.get("format", "")) != RESULTS_FORMAT:
                raise ValueError(f"{path}: {_what_is(path, f)}, not an oialr analysis results file")
            self.attrs = {k: _text(v) for k, v in f.attrs.items()}
            ver = int(self.attrs.get("format_version", 0))
            if not 1 <= ver <= RESULTS_VERSION_MAX:
                raise ValueError(f"{path}: results format_version {ver}; this reader reads 1..{RESULTS_VERSION_MAX}")
            self.layers, self.layer_attrs = {}, {}
            for name, g in f["layers"].items():
                self.layers[name] = {k: d[()] for k, d in g.items() if isinstance(d, h5py.Dataset)}
                self.layer_attrs[name] = {k: _text(v) for k, v in g.attrs.items()}
            ms = f.get("mean_stability")
            self.mean_stability = {k: d[()] for k, d in ms.items()} if ms is not None else {}

    def __getitem__(self, layer):
        return self.layers[layer]

    def __iter__(self):
        return iter(self.layers)

    def dataframe(self):
        """One row per (layer, snapshot): layer, step and every per-snapshot
        metric (not the spectra: see spectra_dataframe). Needs pandas."""
        pd = _pandas()
        frames = []
        for name, d in self.layers.items():
            cols = {k: v for k, v in d.items() if v.ndim == 1}
            t = len(cols["step"])
            frames.append(pd.DataFrame({"layer": [name] * t, **cols}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def spectra_dataframe(self):
        """Long format: layer, step, index (1..n), sigma. Needs pandas."""
        pd = _pandas()
        frames = []
        for name, d in self.layers.items():
            s = d["sigma"]
            t, n = s.shape
            frames.append(pd.DataFrame({"layer": name, "step": np.repeat(d["step"], n),
                                        "index": np.tile(np.arange(1, n + 1), t), "sigma": s.ravel()}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def __repr__(self):
        return f"<oialr results {self.path}: {len(self.layers)} layers>"


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("oialr: dataframe() needs pandas (Debian: apt-get install python3-pandas); "
                          "the numpy arrays are in .layers") from None
    return pandas


def open_results(path):
    """Read `oialr analyze`'s results HDF5 (docs/analyze.md) into numpy."""
    return Results(path)


def recover_advice(path):
    return RECOVER_ADVICE.format(path=path)
