#!/bin/sh
# HTTP: netboot vs nginx serving the same bytes, in one run, in private network namespaces; prints ratios.
#
#   bench/http.sh [--seconds 10] [--connections 50] [--parallel 100] [--big-parallel 8] [--reps 3]
#                 [--out FILE.md]                                   (see bench/http/bench.py -h)
#
# Root only (it makes namespaces). Installs wrk and nginx-light if missing; nginx runs only inside the
# benchmark's namespace, from its own configuration, and is stopped at the end (the package's own service
# is kept from starting). Needs the checkout's .venv (make venv) and debian-installer-12-netboot-amd64.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
. "$HERE/lib.sh"
require_root bench/http.sh
install_missing wrk nginx-light curl
"$PYTHON" "$HERE/http/bench.py" "$@"
