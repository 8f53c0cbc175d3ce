#!/bin/sh
# What the HTTP server alone costs: waitress (netboot's today) against granian, each serving 2 KiB from a
# raw WSGI app and from a Flask route, under the same wrk, on 127.0.0.1, one after the other.
#
#   bench/http/servers.sh [SECONDS]        (default 5 s per server and app)
#
# Makes its own virtual environment in $BENCH_DIR (default /tmp/nb-http-servers) with waitress, flask and
# granian, so the project's .venv is not changed. Ports 18001-18004 on 127.0.0.1 only. Needs wrk.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${BENCH_DIR:-/tmp/nb-http-servers}
SECONDS_EACH=${1:-5}
command -v wrk >/dev/null || { echo "missing wrk (apt-get install wrk)" >&2; exit 1; }
[ -x "$WORK/venv/bin/granian" ] || {
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q waitress flask granian
}
V="$WORK/venv/bin"
rate() { wrk -t2 -c50 -d"${SECONDS_EACH}s" "http://127.0.0.1:$1/f" | sed -n 's/^Requests\/sec: *//p'; }
started() { for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$1/f" && return 0; sleep 0.1; done; return 1; }

echo "| server | app | req/s |"
echo "|---|---|---|"
port=18000
for app in raw flask_app; do
    port=$((port + 1))
    PYTHONPATH="$HERE" "$V/python" -c "
import logging, sys, waitress, servers_app
logging.disable(logging.WARNING)  # waitress logs its queue depth under load
waitress.serve(getattr(servers_app, '$app'), host='127.0.0.1', port=$port, threads=16, _quiet=True)" &
    pid=$!
    started $port && echo "| waitress (16 threads) | $app | $(rate $port) |"
    kill $pid; wait $pid 2>/dev/null || true
    port=$((port + 1))
    (cd "$HERE" && exec "$V/granian" --interface wsgi --host 127.0.0.1 --port $port --workers 1 \
        --log-level error "servers_app:$app") &
    pid=$!
    started $port && echo "| granian (1 worker) | $app | $(rate $port) |"
    kill $pid; wait $pid 2>/dev/null || true
done
