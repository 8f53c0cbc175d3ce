#!/bin/sh
# Boot storm: N simulated UEFI PXE machines booting at once (DHCP, TFTP ipxe.efi, boot.ipxe, kernel,
# initrd, answer file, /done) against netboot alone and against dnsmasq (DHCP + TFTP) + nginx serving the
# same rendered files; total time, p50/p99 time to the answer file, errors, the machines' CPU; one run.
#
#   bench/storm.sh [--clients 50,200,500] [--procs 2] [--reps 1] [--out FILE.md] [--chart FILE.png]
#                                                                   (see bench/storm/storm.py -h)
#
# Root only. Installs dnsmasq-base, nginx-light, ipxe, the Debian installer's netboot files and
# matplotlib (into the venv) if missing, without starting any service (everything runs in the benchmark's own
# namespaces).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
. "$HERE/lib.sh"
require_root bench/storm.sh
install_missing dnsmasq-base nginx-light curl ipxe debian-installer-12-netboot-amd64
"$PYTHON" -c "import matplotlib" 2>/dev/null || "$PYTHON" -m pip install -q matplotlib
"$PYTHON" "$HERE/storm/storm.py" "$@"
