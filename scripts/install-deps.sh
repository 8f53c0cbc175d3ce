#!/usr/bin/env bash
# Install the Debian packages netboot's daemon (run) or test suite (test) needs. Idempotent; root only.
# Services that packages would start (tftpd-hpa, nginx...) are kept from starting: the tests run their own
# copies inside network namespaces, never on the host.
set -euo pipefail

what=${1:-test}
# gcc and the Python headers build the TFTP download fast path (netboot/servers/_tftp_fast.c)
run_pkgs=(ipxe iproute2 debian-installer-12-netboot-amd64 python3-venv python3-dev gcc libc6-dev
  grub-efi-amd64-signed                                 # signed GRUB for Secure Boot machines (issue 16)
  mtools)                                               # builds the Secure Boot UEFI HTTP Boot image
# Secure Boot loaders (docs/secure-boot-research.md). grub-efi-amd64-signed has no maintainer scripts.
# shim-signed and shim-helpers-amd64-signed do: their postinst runs grub-install (ESP and NVRAM) when
# the host itself boots UEFI GRUB (/sys/firmware/efi, GRUB_DISTRIBUTOR, /boot/efi/EFI/<id>), and
# shim-signed's preinst aborts when the host's Secure Boot db does not trust Microsoft. On a host
# without /sys/firmware/efi every one of those scripts exits before doing anything, so apt installs them;
# on a UEFI host they are only unpacked (dpkg-deb -x, no scripts) into $shim_cache, never configured.
shim_pkgs=(shim-signed shim-helpers-amd64-signed)
shim_cache=/var/cache/netboot/secureboot            # <this>/usr/lib/shim/{shim,mm,fb}x64.efi.signed
if [ -d /sys/firmware/efi ]; then host_shim=(); else host_shim=("${shim_pkgs[@]}"); fi
run_pkgs+=("${host_shim[@]}")
test_pkgs=(
  "${run_pkgs[@]}"
  qemu-system-x86 qemu-utils ipxe-qemu ovmf            # firmware end-to-end tests
  sbsigntool                                            # sbverify/sbattach: signed and unsigned kernels
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
# UEFI host: the shim packages unpacked (again when apt has a newer one: shim updates carry revocations)
unpack_shim=0
if [ ${#host_shim[@]} -eq 0 ]; then
  for p in "${shim_pkgs[@]}"; do
    want=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [ -n "$want" ] && [ "$(cat "$shim_cache/$p.version" 2>/dev/null)" = "$want" ] || unpack_shim=1
  done
fi
[ ${#missing[@]} -eq 0 ] && [ $unpack_shim = 0 ] && exit 0

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
[ ${#missing[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${missing[@]}"
if [ $unpack_shim = 1 ]; then
  tmp=$(mktemp -d) && chmod 755 "$tmp"
  mkdir -p "$shim_cache"
  for p in "${shim_pkgs[@]}"; do
    (cd "$tmp" && apt-get download -q "$p")
    dpkg-deb -x "$tmp/${p}"_*.deb "$shim_cache"
    dpkg-deb -f "$tmp/${p}"_*.deb Version > "$shim_cache/$p.version"
  done
  rm -rf "$tmp"
  echo "install-deps: unpacked ${shim_pkgs[*]} into $shim_cache (UEFI host: their scripts would run grub-install)"
fi
