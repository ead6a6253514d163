#!/usr/bin/python3
"""test_oialr.py — the Python module oialr (tools/python/oialr) against the C tools.

    /usr/bin/python3 tests/python/test_oialr.py SRCDIR OIALR_BIN WORKDIR

One process for every case (importing torch takes seconds). Each case prints
one line, "ok NAME", "FAIL NAME: why" (with the traceback after it, indented);
tests/check_python.c runs this once and turns each line into a Check test.
The last line is "cases N". Exit status 0 if every case passed.

Cases: a torch model recorded with Recorder and analysed by `oialr analyze`,
its stabilities checked against a float64 numpy computation and its
snapshots against the weights torch had at those steps; the README's
example, extracted and run; a live writer seen as live by `oialr analyze`;
a killed writer read before and after the recovery docs/format.md gives;
duplicate and decreasing steps refused; a second writer refused; the
readers (results strings as str, numpy arrays, pandas); the rank limits;
info never tracebacking.
"""

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import traceback
import warnings

SRC, OIALR, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(SRC, "tools", "python"))
PY = sys.executable
ENV = dict(os.environ, PYTHONPATH=os.path.join(SRC, "tools", "python"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import oialr  # noqa: E402
from oialr.__main__ import main as oialr_main  # noqa: E402

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def run(args, cwd, **kw):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV, **kw)


def workdir(name):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    return d


def stability64(wa, wb):
    """S = tr(Q_a^T Q_b) / n in float64, Q = U V^T of the tall-oriented W
    (docs/metrics.md), from numpy's SVD: the independent reference."""
    def q(w):
        w = np.asarray(w, dtype=np.float64)
        if w.shape[0] < w.shape[1]:
            w = w.T
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        r = int((s > max(w.shape) * np.finfo(np.float64).eps * s[0]).sum())
        return u[:, :r] @ vt[:r]
    qa, qb = q(wa), q(wb)
    return float(np.trace(qa.T @ qb)) / qa.shape[1]


class FakeModel:
    """named_parameters() over numpy arrays: a model without torch, for the
    cases that need no autograd (fast, and the killed child)."""

    def __init__(self, shapes, seed=0):
        rng = np.random.default_rng(seed)
        self.p = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}

    def named_parameters(self):
        return list(self.p.items())

    def train(self, rng, scale=0.01):
        for w in self.p.values():
            w += scale * rng.standard_normal(w.shape).astype(np.float32)


# ----------------------------------------------------------------------------

@case
def torch_recorder_stability():
    import torch
    d = workdir("torch")
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(6 * 6 * 6, 24), torch.nn.ReLU(), torch.nn.Linear(24, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    x, y = torch.randn(128, 1, 8, 8), torch.randint(0, 10, (128,))
    seen = {}  # step -> the weights torch had after that many updates

    def keep(step):
        seen[step] = {n: p.detach().clone().numpy() for n, p in model.named_parameters() if p.dim() >= 2}
    keep(0)
    with oialr.Recorder(model, os.path.join(d, "run.h5"), every=4, steps_per_epoch=10) as rec:
        for i in range(22):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss.item(), acc=0.1 * i)
            keep(i + 1)
        assert rec.steps == 22
    # steps: 0 (initial weights), every 4 updates, and the final weights at close
    with oialr.open_trajectory(os.path.join(d, "run.h5")) as t:
        assert list(t.layers) == ["0.weight", "3.weight", "5.weight"], list(t.layers)
        assert t.layers["0.weight"].kind == "conv2d" and t.layers["3.weight"].kind == "dense"
        assert t.layers["0.weight"].shape == (6, 1, 3, 3)
        for lay in t.layers.values():
            assert lay.steps.tolist() == [0, 4, 8, 12, 16, 20, 22], lay.steps
            for step, w in lay:
                want = seen[step][lay.name].reshape(lay.rows, lay.cols)
                assert np.array_equal(w, want), f"{lay.name} step {step}: not torch's weights then"
        m = t.metrics()
        assert m["step"].tolist() == [4, 8, 12, 16, 20], m["step"]
        assert np.allclose(m["epoch"], m["step"] / 10) and np.allclose(m["acc"], [0.3, 0.7, 1.1, 1.5, 1.9])
        assert not t.killed and not t.writer_alive
    r = run([OIALR, "analyze", "run.h5", "-o", "a.h5", "-q"], d)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.returncode, r.stdout, r.stderr)
    res = oialr.open_results(os.path.join(d, "a.h5"))
    worst = 0.0
    for name, lay in res.layers.items():
        steps = lay["step"].tolist()
        assert steps == [0, 4, 8, 12, 16, 20, 22], steps
        assert np.isnan(lay["stability"][0])
        rows = seen[0][name].shape[0]
        for j in range(1, len(steps)):
            ref = stability64(seen[steps[j - 1]][name].reshape(rows, -1), seen[steps[j]][name].reshape(rows, -1))
            worst = max(worst, abs(lay["stability"][j] - ref))
    assert worst < 1e-5, f"oialr analyze vs float64 numpy: worst |dS| = {worst:.3g}"
    return f"worst |S - S_float64| = {worst:.2g}"


@case
def readme_example():
    text = open(os.path.join(SRC, "README.md")).read()
    i = text.index("<!-- readme-example")
    blocks = re.findall(r"```(python|sh)\n(.*?)```", text[i:], re.S)[:3]
    assert [b[0] for b in blocks] == ["python", "sh", "python"], [b[0] for b in blocks]
    d = workdir("readme")
    here = os.getcwd()
    os.chdir(d)
    out = []
    try:
        for lang, code in blocks:
            if lang == "python":
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
                out.append(buf.getvalue())
            else:
                assert code.startswith("build/oialr "), code
                r = subprocess.run(OIALR + code[len("build/oialr"):], shell=True, capture_output=True, text=True)
                assert r.returncode == 0, r.stderr
    finally:
        os.chdir(here)
    res = oialr.open_results(os.path.join(d, "analysis.h5"))
    assert set(res.layers) == {"conv1.weight", "fc1.weight", "fc2.weight"}
    assert res["fc2.weight"]["step"][0] == 0 and res["fc2.weight"]["step"][-1] == 186
    assert "conv1 stability at step 186" in out[1], out[1]
    return "README blocks ran"


@case
def live_writer_seen_live():
    d = workdir("live")
    model = FakeModel({"fc1.weight": (20, 12), "fc2.weight": (5, 20)})
    rng = np.random.default_rng(2)
    rec = oialr.Recorder(model, os.path.join(d, "run.h5"), every=2)
    for _ in range(6):
        model.train(rng)
        rec.step(loss=1.0)
    r = run([OIALR, "analyze", "run.h5", "-o", "a.h5"], d)
    assert r.returncode == 0, r.stderr
    assert "(live file: analysed what is there so far)" in r.stdout, r.stdout
    assert "a writer is recording it" in r.stderr, r.stderr
    r = run([PY, "-m", "oialr", "info", "run.h5"], d)  # another process: SWMR-read, the lock held
    assert r.returncode == 0 and "a writer is recording it (live)" in r.stdout, (r.stdout, r.stderr)
    assert "fc1.weight" in r.stdout and "4 snapshots, steps 0..6" in r.stdout, r.stdout
    t = oialr.open_trajectory(os.path.join(d, "run.h5"))  # this process: HDF5 shares the writer's open file
    assert t.writer_alive and not t.killed
    assert len(t.layers["fc1.weight"]) == 4, t.layers["fc1.weight"].steps
    # a second writer is refused while this one records, force or not, and changes nothing
    size = os.path.getsize(os.path.join(d, "run.h5"))
    try:
        oialr.TrajectoryWriter(os.path.join(d, "run.h5"), {"x": (2, 2)}, force=True)
        raise AssertionError("a second writer was allowed")
    except BlockingIOError as e:
        assert "another process is writing" in str(e), e
    assert os.path.getsize(os.path.join(d, "run.h5")) == size
    assert not [f for f in os.listdir(d) if f.endswith(".part")]
    # following it live
    model.train(rng)
    rec.step(loss=0.5)
    t.refresh()
    assert len(t.layers["fc1.weight"]) == 4
    model.train(rng)
    rec.step(loss=0.4)
    t.refresh()
    assert t.layers["fc1.weight"].steps.tolist() == [0, 2, 4, 6, 8], t.layers["fc1.weight"].steps
    t.close()
    rec.close()
    r = run([OIALR, "analyze", "run.h5", "-o", "a.h5", "--force"], d)
    assert r.returncode == 0 and "live" not in r.stdout and "SWMR" not in r.stderr, (r.stdout, r.stderr)


KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys, time, numpy as np, oialr
    rng = np.random.default_rng(7)
    p = {"fc1.weight": rng.standard_normal((30, 16)).astype(np.float32),
         "conv.weight": rng.standard_normal((8, 2, 3, 3)).astype(np.float32)}
    class M:
        def named_parameters(self):
            return list(p.items())
    rec = oialr.Recorder(M(), sys.argv[1], every=2)
    for s in range(1, 11):
        for w in p.values():
            w += 0.05 * rng.standard_normal(w.shape).astype(np.float32)
        rec.step(loss=1.0 / s)
    np.savez(sys.argv[2], **p)
    print("ready", flush=True)
    time.sleep(60)
""")


def killed_file(d, name):
    """A trajectory whose writer was SIGKILLed after step 10; the last weights."""
    script = os.path.join(d, "child.py")
    with open(script, "w") as f:
        f.write(KILLED_CHILD)
    path, last = os.path.join(d, name), os.path.join(d, name + ".last.npz")
    child = subprocess.Popen([PY, script, path, last], stdout=subprocess.PIPE, text=True, env=ENV)
    line = child.stdout.readline()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert line.strip() == "ready", f"child said {line!r}"
    assert child.returncode == -signal.SIGKILL
    return path, dict(np.load(last))


def documented_advice():
    """The recovery command docs/format.md gives for a killed file."""
    doc = open(os.path.join(SRC, "docs", "format.md")).read()
    m = re.search(r"^\s*(h5clear [^#\n]*?)\s+#[^\n]*killed", doc, re.M)
    assert m, "docs/format.md shows no h5clear line for a killed writer's file"
    return m.group(1).split()


@case
def killed_writer_recovered():
    d = workdir("killed")
    path, last = killed_file(d, "run.h5")
    # before the recovery: oialr's tools read it as a killed file
    r = run([PY, "-m", "oialr", "info", "run.h5"], d)
    assert r.returncode == 0 and "Traceback" not in r.stderr, (r.returncode, r.stderr)
    assert "did not close it (killed?)" in r.stdout and "h5clear -s --increment=0 run.h5" in r.stdout, r.stdout
    r = run([OIALR, "analyze", "run.h5", "-o", "before.h5", "-q"], d)
    assert r.returncode == 0, r.stderr
    t = oialr.open_trajectory(path)
    assert t.killed and not t.writer_alive
    t.close()
    with h5py.File(path, "r", libver="latest", swmr=True) as f:  # docs/format.md's h5py line
        assert f["layers/fc1.weight/step"][:].tolist() == list(range(0, 11, 2))
    # the documented advice, then plain h5py and oialr analyze, as for a closed file
    cmd = documented_advice()
    assert cmd[:3] == ["h5clear", "-s", "--increment=0"], cmd
    r = subprocess.run(cmd[:-1] + [path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with h5py.File(path, "r") as f:
        assert f["layers/fc1.weight/step"][:].tolist() == list(range(0, 11, 2))
        assert f["layers/conv.weight/weight"].shape == (6, 8, 18)
        assert np.array_equal(f["layers/conv.weight/weight"][-1], last["conv.weight"].reshape(8, 18))
        assert np.array_equal(f["layers/fc1.weight/weight"][5], last["fc1.weight"])
        assert f["metrics/step"][:].tolist() == [2, 4, 6, 8, 10]
    r = run([OIALR, "analyze", "run.h5", "-o", "after.h5"], d)
    assert r.returncode == 0 and "died" not in r.stdout and "SWMR" not in r.stderr, (r.stdout, r.stderr)
    a, b = oialr.open_results(os.path.join(d, "before.h5")), oialr.open_results(os.path.join(d, "after.h5"))
    for name in a.layers:
        assert np.array_equal(a[name]["stability"], b[name]["stability"], equal_nan=True)
    # python3 -m oialr recover does the same, and refuses nothing else
    path2, _ = killed_file(d, "run2.h5")
    with contextlib.redirect_stdout(io.StringIO()):
        assert oialr_main(["recover", path2]) == 0
    with h5py.File(path2, "r") as f:
        assert f["layers/fc1.weight/step"].shape == (6,)


@case
def info_never_tracebacks():
    d = workdir("info")
    with open(os.path.join(d, "empty.h5"), "w"):
        pass
    with open(os.path.join(d, "text.h5"), "w") as f:
        f.write("not hdf5\n")
    with h5py.File(os.path.join(d, "other.h5"), "w") as f:
        f.attrs["format"] = "something-else"
    # a killed file on which a plain `h5clear -s` (the old advice) was run:
    # the snapshots written since the last clean state are cut off
    path, _ = killed_file(d, "cut.h5")
    subprocess.run(["h5clear", "-s", path], capture_output=True)
    here = os.getcwd()
    os.chdir(d)
    try:  # python3 -m oialr's main, in this process (each interpreter takes a second to start)
        for name, want in (("missing.h5", "no such file"), ("empty.h5", ""), ("text.h5", ""),
                           ("other.h5", "not an oialr trajectory"), ("cut.h5", "h5clear -s --increment=0")):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = oialr_main(["info", name])
            assert rc == 1, (name, rc, err.getvalue())
            assert len(err.getvalue().strip().splitlines()) == 1, (name, err.getvalue())
            assert want in err.getvalue(), (name, err.getvalue())
    finally:
        os.chdir(here)
    r = run([PY, os.path.join(SRC, "tools", "oialr_traj.py"), "info", "other.h5"], d)  # the old name
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr


@case
def duplicate_steps_refused():
    d = workdir("dup")
    path = os.path.join(d, "run.h5")
    w = np.ones((4, 3), np.float32)
    with oialr.TrajectoryWriter(path, {"a": (4, 3)}) as tw:
        tw.append("a", 0, w)
        tw.append("a", 5, w)
        for bad in (5, 3):
            try:
                tw.append("a", bad, w)
                raise AssertionError(f"step {bad} after 5 accepted")
            except ValueError as e:
                assert "strictly increase" in str(e), e
        for bad in (-1, 2.5):
            try:
                tw.append("a", bad, w)
                raise AssertionError(f"step {bad!r} accepted")
            except (ValueError, TypeError):
                pass
        tw.append_metrics(5, loss=1.0)
        tw.append_metrics(5, loss=0.9)  # rows may share a step
        try:
            tw.append_metrics(4, loss=1.0)
            raise AssertionError("a decreasing metrics step was accepted")
        except ValueError as e:
            assert "never decrease" in str(e)
        tw.append("a", 6, w)
        tw.append_event(6, "a", "truncate", 0.5, 3, 2)
    with oialr.open_trajectory(path) as t:
        ev = t.events()
        assert ev.tolist() == [(6, "a", "truncate", 0.5, 3, 2)], ev
    with h5py.File(path, "r") as f:
        assert f["layers/a/step"][:].tolist() == [0, 5, 6] and f["layers/a/weight"].shape[0] == 3
        assert f["metrics/step"][:].tolist() == [5, 5]
    model = FakeModel({"w": (3, 3)})
    with oialr.Recorder(model, os.path.join(d, "rec.h5"), every=1) as rec:
        rec.step(step=3)
        for bad in (3, 2):
            try:
                rec.step(step=bad)
                raise AssertionError("Recorder took a step that does not grow")
            except ValueError:
                pass
        try:
            rec.step(nonsense=1.0)
            raise AssertionError("an undeclared metric was accepted")
        except KeyError:
            assert rec.steps == 3
    r = run([OIALR, "analyze", "rec.h5", "-o", "a.h5", "-q"], d)
    assert r.returncode == 0, r.stderr


@case
def results_reader():
    d = workdir("results")
    model = FakeModel({"conv1.weight": (6, 2, 3, 3), "fc1.weight": (10, 12)}, seed=3)
    rng = np.random.default_rng(4)
    with oialr.Recorder(model, os.path.join(d, "run.h5"), every=1) as rec:
        for _ in range(5):
            model.train(rng, 0.05)
            rec.step(loss=1.0)
    r = run([OIALR, "analyze", "run.h5", "-o", "a.h5", "--csv", "tab", "--policy", "stability:0.5,lag=2"], d)
    assert r.returncode == 0, r.stderr
    with h5py.File(os.path.join(d, "a.h5"), "r") as f:  # h5py gives text, as for the trajectory
        for k, v in list(f.attrs.items()) + list(f["layers/fc1.weight"].attrs.items()):
            assert not isinstance(v, bytes), f"results attribute {k} comes back as bytes"
        assert f.attrs["format"] == "oialr-analysis" and f.attrs["policy"] == "stability:0.5,lag=2"
    res = oialr.open_results(os.path.join(d, "a.h5"))
    lay = res["conv1.weight"]
    assert lay["stability"].dtype == np.float64 and lay["stability"].shape == (6,)
    assert lay["sigma"].shape == (6, 6) and lay["step"].tolist() == list(range(6))
    assert res.layer_attrs["conv1.weight"]["kind"] == "conv2d" and res.attrs["lag"] == 2  # lag=2 steps
    assert res.mean_stability["step"].tolist() == list(range(2, 6))  # S needs the snapshot 2 back
    # without pandas (hidden from import, whether it is installed or not),
    # dataframe() names the package; make check installs it for the rest
    saved = sys.modules.get("pandas")
    sys.modules["pandas"] = None
    try:
        res.dataframe()
        raise AssertionError("dataframe() without pandas")
    except ImportError as e:
        assert "python3-pandas" in str(e), e
    finally:
        if saved is None:
            del sys.modules["pandas"]
        else:
            sys.modules["pandas"] = saved
    import pandas
    df = res.dataframe()
    assert len(df) == 12 and set(df["layer"]) == {"conv1.weight", "fc1.weight"}
    assert np.allclose(df[df.layer == "fc1.weight"]["stability"].to_numpy(), res["fc1.weight"]["stability"],
                       equal_nan=True)
    sp = res.spectra_dataframe()
    assert len(sp) == 6 * 6 + 6 * 10
    # the readers name what a file is
    for fn, other, want in ((oialr.open_trajectory, "a.h5", "analysis results file"),
                            (oialr.open_results, "run.h5", "an oialr trajectory")):
        try:
            fn(os.path.join(d, other))
            raise AssertionError(f"{fn.__name__} read {other}")
        except ValueError as e:
            assert want in str(e), e
    return "pandas %s" % pandas.__version__


@case
def rank_limits():
    d = workdir("ranks")
    for shape in ((5,), (2, 3, 4, 5, 6)):
        try:
            oialr.TrajectoryWriter(os.path.join(d, "bad.h5"), {"x": shape})
            raise AssertionError(f"shape {shape} accepted")
        except ValueError as e:
            assert "rank 2..4" in str(e), e
    assert not os.path.exists(os.path.join(d, "bad.h5")) and not os.listdir(d)
    model = FakeModel({"c3.weight": (4, 2, 3, 3, 3), "bias": (4,), "fc.weight": (3, 4)})
    with warnings.catch_warnings(record=True) as wl:
        warnings.simplefilter("always")
        with oialr.Recorder(model, os.path.join(d, "r.h5"), every=1, layers="c3*,fc,fc.weight,bias") as rec:
            assert rec.layer_names == ["c3.weight", "fc.weight"]
            rec.step()
    msgs = [str(w.message) for w in wl]
    assert any("'fc' matches no weight matrix (did you mean 'fc.weight'?)" in m for m in msgs), msgs
    assert any("'bias' matches no weight matrix" in m for m in msgs), msgs
    with h5py.File(os.path.join(d, "r.h5"), "r") as f:
        g = f["layers/c3.weight"]
        assert g["weight"].shape == (2, 4, 54) and g.attrs["full_shape"].tolist() == [4, 2, 3, 3, 3]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oialr.Recorder(model, os.path.join(d, "none.h5"), layers="nothing*")
        raise AssertionError("an empty selection was accepted")
    except ValueError as e:
        assert "c3.weight, fc.weight" in str(e), e
    assert not os.path.exists(os.path.join(d, "none.h5"))


@case
def make_install_python():
    """make install-python (part of make install) puts the module where
    Debian's python3 looks, DESTDIR-aware (PREFIX=/usr/local; /usr maps to
    /usr/lib/python3/dist-packages by the same rule in the Makefile)."""
    import site
    d = workdir("install")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    for prefix in ("/usr/local",):
        dest = os.path.join(d, prefix.strip("/").replace("/", "_"))
        r = subprocess.run(["make", "-s", "--no-print-directory", "-C", SRC, "install-python", "DESTDIR=" + dest,
                            "PREFIX=" + prefix, "PYTHON=" + PY], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        m = re.search(r"oialr is in (\S+)/oialr ", r.stdout)
        assert m, r.stdout
        sitedir = m.group(1)[len(dest):]
        assert sitedir in site.getsitepackages(), (sitedir, site.getsitepackages())
        assert sorted(os.listdir(m.group(1) + "/oialr")) == sorted(
            f for f in os.listdir(os.path.join(SRC, "tools", "python", "oialr")) if f.endswith(".py"))
        r = subprocess.run([PY, "-c", "import oialr, sys; print(oialr.__file__)"], capture_output=True, text=True,
                           cwd="/", env=dict(os.environ, PYTHONPATH=m.group(1)))
        assert r.returncode == 0 and r.stdout.startswith(m.group(1)), (r.stdout, r.stderr)
    return "site dirs " + ", ".join(site.getsitepackages()[:2])


@case
def version_matches_cli():
    r = subprocess.run([OIALR, "--version"], capture_output=True, text=True)
    assert r.stdout.split() == ["oialr", oialr.__version__], (r.stdout, oialr.__version__)


def main():
    os.makedirs(WORK, exist_ok=True)
    only = os.environ.get("OIALR_PY_CASE")
    failed = 0
    for fn in CASES:
        if only and fn.__name__ != only:
            continue
        t0 = time.monotonic()
        try:
            note = fn()
            print(f"ok {fn.__name__} ({time.monotonic() - t0:.1f} s{'; ' + note if note else ''})", flush=True)
        except Exception as e:
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
            print(textwrap.indent(traceback.format_exc(), "    "), flush=True)
    print(f"cases {len(CASES)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
