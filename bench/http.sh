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
[ "$(id -u)" = 0 ] || { echo "bench/http.sh: run as root (it makes network namespaces)" >&2; exit 1; }
missing=""
for pkg in wrk nginx-light curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    # policy-rc.d 101: the packages' services are not started on install (one already there is kept)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
fi
"$PYTHON" "$HERE/http/bench.py" "$@"
