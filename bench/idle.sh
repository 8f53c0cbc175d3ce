#!/bin/sh
# Start-up and idle memory of `netboot serve` (ProxyDHCP, TFTP and HTTP) in a private namespace: time to
# its ready line and VmRSS after a few idle seconds, over several starts.
#
#   bench/idle.sh [--reps 5] [--idle 5]                               (see bench/idle.py -h)
#
# Root only (it makes a network namespace).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
. "$HERE/lib.sh"
require_root bench/idle.sh
"$PYTHON" "$HERE/idle.py" "$@"
