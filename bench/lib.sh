# Sourced by the bench/*.sh scripts: what they share.

# install_missing PKG...: apt-get install the packages not installed yet, without starting their services
# (policy-rc.d answers 101 while apt runs; one already there is kept). The benchmarks run their servers
# only inside their own namespaces, from their own configuration, never as the packages' services.
install_missing() {
    missing=""
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    [ -n "$missing" ] || return 0
    guard=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
    fi
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null || status=$?
    [ $guard = 1 ] && rm -f /usr/sbin/policy-rc.d
    return "${status:-0}"
}

# require_root NAME: stop unless run as root (the benchmarks make network namespaces)
require_root() {
    [ "$(id -u)" = 0 ] || { echo "$1: run as root (it makes network namespaces)" >&2; exit 1; }
}
