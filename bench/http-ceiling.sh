#!/bin/sh
# HTTP server ceiling: what waitress (netboot's transport) and granian cost per request before the app
# does anything, and with netboot's app, beside nginx serving the same bytes; one run, private namespaces.
#
#   bench/http-ceiling.sh [--servers nginx,waitress,waitress-netboot,granian,granian-netboot]
#                         [--seconds 5] [--connections 50]           (see bench/http/ceiling.py -h)
#
# Root only. Installs wrk and nginx-light if missing, and granian into the venv (for this benchmark only:
# netboot does not depend on it).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
. "$HERE/lib.sh"
require_root bench/http-ceiling.sh
install_missing wrk nginx-light curl
"$PYTHON" -c "import granian" 2>/dev/null || "$PYTHON" -m pip install -q granian
"$PYTHON" "$HERE/http/ceiling.py" "$@"
