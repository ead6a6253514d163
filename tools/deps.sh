#!/bin/sh
# deps.sh — find what oialr needs; install what is missing with apt-get when
# running as root, otherwise print the exact command and stop.
# Quiet and quick when everything is there. Used by `make demo|check|bench`.
#   OIALR_DEPS_EXTRA="python3-torch"  adds packages (make bench does this;
#   make valgrind adds valgrind; make check and check-plain add
#   python3-torch and python3-pandas (tests/check_python) and chromium
#   (tests/check_report); for users pandas is optional: dataframe() only)
set -u
PYTHON=${PYTHON:-/usr/bin/python3}
missing=""
need() { missing="$missing $1"; }

command -v cc >/dev/null 2>&1 || need gcc
command -v pkg-config >/dev/null 2>&1 || need pkg-config
if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists openblas || need libopenblas-dev
    pkg-config --exists lapacke || need liblapacke-dev
    pkg-config --exists hdf5 || need libhdf5-dev
    pkg-config --exists zlib || need zlib1g-dev
    pkg-config --exists check || need check
    pkg-config --exists ompi-c || need libopenmpi-dev
else
    need "libopenblas-dev liblapacke-dev libhdf5-dev zlib1g-dev check"
fi
command -v h5dump >/dev/null 2>&1 || need hdf5-tools
command -v h5clear >/dev/null 2>&1 || need hdf5-tools
command -v gnuplot >/dev/null 2>&1 || need gnuplot-nox
command -v tmux >/dev/null 2>&1 || need tmux # tests/check_watch.c drives oialr watch in it
command -v mpirun >/dev/null 2>&1 || need openmpi-bin
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need dataset-fashion-mnist
if [ -x "$PYTHON" ]; then
    "$PYTHON" -c 'import numpy' >/dev/null 2>&1 || need python3-numpy
    "$PYTHON" -c 'import h5py' >/dev/null 2>&1 || need python3-h5py
else
    need "python3 python3-numpy python3-h5py"
fi
for extra in ${OIALR_DEPS_EXTRA:-}; do
    case "$extra" in
    python3-torch) "$PYTHON" -c 'import torch' >/dev/null 2>&1 || need python3-torch ;;
    valgrind) command -v valgrind >/dev/null 2>&1 || need valgrind ;;
    chromium) command -v chromium >/dev/null 2>&1 || need chromium ;;
    *) dpkg -s "$extra" >/dev/null 2>&1 || need "$extra" ;;
    esac
done

[ -z "$missing" ] && exit 0
# de-duplicate, keep order
pkgs=$(echo $missing | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing:$pkgs"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends $pkgs >/tmp/oialr-apt.log 2>&1; then
        echo "deps: apt-get install failed; updating package lists and retrying"
        apt-get update -q >>/tmp/oialr-apt.log 2>&1
        if ! apt-get install -y -q --no-install-recommends $pkgs >>/tmp/oialr-apt.log 2>&1; then
            echo "deps: apt-get install failed; see /tmp/oialr-apt.log" >&2
            tail -5 /tmp/oialr-apt.log >&2
            exit 1
        fi
    fi
    echo "deps: done"
    exit 0
fi
echo "deps: missing packages:$pkgs" >&2
echo "deps: install them with:" >&2
echo "    sudo apt-get install -y $pkgs" >&2
exit 1
