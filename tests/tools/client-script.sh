#!/bin/sh
# Address script for dhclient (-sf) and udhcpc (-s) in test namespaces: set or drop the address on the
# interface, nothing else (no resolv.conf, no routes: the test network has no way out).
# udhcpc: $1 = deconfig|bound|renew, $ip $subnet $interface. dhclient: $reason, $new_ip_address...
case "${1:-}:${reason:-}" in
  bound:*|renew:*)
    ip addr flush dev "$interface" && ip addr add "$ip/$subnet" dev "$interface" ;;
  deconfig:*)
    ip addr flush dev "$interface" ;;
  *:BOUND|*:RENEW|*:REBIND|*:REBOOT)
    ip addr flush dev "$interface" && ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  *:EXPIRE|*:FAIL|*:RELEASE|*:STOP)
    ip addr flush dev "$interface" ;;
esac
echo "client-script: ${1:-}${reason:-} ${ip:-}${new_ip_address:-}" >&2
exit 0
