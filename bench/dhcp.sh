#!/bin/sh
# DHCP: the rate netboot sustains (full mode with its durable store; proxy mode with unknown PXE clients)
# beside Kea 2.2 (memfile) and dnsmasq, under one perfdhcp ladder each, in private namespaces; one run.
#
#   bench/dhcp.sh [--servers netboot-full,kea,dnsmasq,netboot-proxy,netboot-proxy-mixed]
#                 [--rates 500,1000,...]
#                 [--seconds 6] [--clients 10000] [--max-drop 0.001] [--out FILE.md]
#                                                                   (see bench/dhcp/ladder.py -h)
#
# Root only. Installs kea-dhcp4-server if missing, without starting its service (Kea runs only inside the
# benchmark's namespace, from its own configuration). perfdhcp comes with kea-admin (make test has it).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
. "$HERE/lib.sh"
require_root bench/dhcp.sh
install_missing kea-dhcp4-server kea-admin dnsmasq-base
"$PYTHON" "$HERE/dhcp/ladder.py" "$@"
