#!/bin/sh
# DHCP: the rate netboot sustains (full mode with its durable store; proxy mode with unknown PXE clients)
# beside Kea 2.2 (memfile) and dnsmasq, under one perfdhcp ladder each, in private namespaces; one run.
#
#   bench/dhcp.sh [--servers netboot-full,kea,dnsmasq,netboot-proxy] [--rates 500,1000,...]
#                 [--seconds 6] [--clients 10000] [--max-drop 0.001] [--out FILE.md]
#                                                                   (see bench/dhcp/ladder.py -h)
#
# Root only. Installs kea-dhcp4-server if missing, without starting its service (Kea runs only inside the
# benchmark's namespace, from its own configuration). perfdhcp comes with kea-admin (make test has it).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[ "$(id -u)" = 0 ] || { echo "bench/dhcp.sh: run as root (it makes network namespaces)" >&2; exit 1; }
missing=""
for pkg in kea-dhcp4-server kea-admin dnsmasq-base; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    # policy-rc.d 101: the packages' services are not started on install (one already there is kept)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
    # a unit that was enabled stays stopped: systemd is not asked to start it here
    systemctl disable --now kea-dhcp4-server >/dev/null 2>&1 || true
fi
"$PYTHON" "$HERE/dhcp/ladder.py" "$@"
