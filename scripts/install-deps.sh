#!/usr/bin/env bash
# Install the Debian packages netboot's daemon (run) or test suite (test) needs. Idempotent; root only.
# Services that packages would start (tftpd-hpa, nginx...) are kept from starting: the tests run their own
# copies inside network namespaces, never on the host.
set -euo pipefail

what=${1:-test}
# gcc and the Python headers build the TFTP download fast path (netboot/servers/_tftp_fast.c)
run_pkgs=(ipxe iproute2 debian-installer-12-netboot-amd64 python3-venv python3-dev gcc libc6-dev)
test_pkgs=(
  "${run_pkgs[@]}"
  qemu-system-x86 qemu-utils ipxe-qemu ovmf            # firmware end-to-end tests
  isc-dhcp-client udhcpc busybox kea-admin dnsmasq-base # real DHCP peers (kea-admin ships perfdhcp)
  tftp-hpa atftp curl tftpd-hpa nginx-light             # real TFTP/HTTP peers and benchmark references
  tcpdump procps psmisc
  debconf-utils cloud-init grub-common                  # answer-file and grub.cfg validators (grub-script-check)
  vagrant vagrant-libvirt                               # `vagrant validate` of the Vagrantfile (tests/lab)
  chromium                                              # browser tests of the web UI (tests/web)
)
case "$what" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
guard=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
fi
trap '[ $guard = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
