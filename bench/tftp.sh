#!/bin/sh
# TFTP throughput: netboot vs tftpd-hpa vs atftpd on 127.0.0.1, same client (atftp), one run.
#
#   bench/tftp.sh [--reps N] [--sizes 4,64] [--concurrent-sizes 4] [--blksizes 512,1468,8192]
#                 [--windows 1,4,8] [--clients 20] [--budget SECONDS] ...   (see bench/tftp/bench.py -h)
#
# Needs: tftpd-hpa (in.tftpd) and atftp (client) installed, run as root (tftpd-hpa and atftpd drop to
# unprivileged users). atftpd conflicts with tftpd-hpa in apt, so it is fetched with `apt-get download`
# and unpacked into the work directory, never installed. Servers listen on 127.0.0.1 only, ports
# BASE+1..BASE+6 (default 16901-16906). Work directory: $BENCH_DIR or /tmp/nbt-bench.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
WORK=${BENCH_DIR:-/tmp/nbt-bench}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
mkdir -p "$WORK"

ATFTPD="$WORK/atftpd/usr/sbin/atftpd"
if [ ! -x "$ATFTPD" ]; then
    (cd "$WORK" && rm -f atftpd_*.deb && apt-get download atftpd >/dev/null)
    dpkg-deb -x "$WORK"/atftpd_*.deb "$WORK/atftpd"
fi
for tool in /usr/sbin/in.tftpd atftp; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install tftpd-hpa atftp)" >&2; exit 1; }
done

BENCH_CMD="bench/tftp.sh $*" exec "$PYTHON" "$HERE/tftp/bench.py" --work "$WORK" --atftpd "$ATFTPD" --python "$PYTHON" "$@"
