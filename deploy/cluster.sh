#!/usr/bin/env bash
# Start N server processes (`manage.py serve`) and HAProxy (deploy/haproxy/ocpp-cluster.cfg) in
# front of them, on this host, in the foreground; Ctrl-C / SIGTERM stops them all.
#
#   deploy/cluster.sh [N]          # N defaults to the number of cores
#
# With the production environment (README, "Production"): DATABASE_URL (PostgreSQL) and
# REDIS_URL are required, all processes share them (commands cross processes through Redis).
#   APP_HOST (127.0.0.1), APP_PORT_BASE (8001)  the processes listen on APP_PORT_BASE..+N-1
#   OCPP_BIND (0.0.0.0:8000), OCPP_TLS_BIND ... where chargers connect (see the .cfg)
# OCPP_TRUSTED_PROXIES and FORWARDED_ALLOW_IPS default to 127.0.0.1 (HAProxy on this host).
# PROMETHEUS_MULTIPROC_DIR (var/prometheus) is emptied and shared by the processes (metrics).
# In production prefer one systemd unit per process and one for HAProxy, with the same values.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-$(nproc)}
if ! [[ "$N" =~ ^[0-9]+$ ]] || (( N < 1 || N > 16 )); then
  echo "N must be 1..16 (the .cfg has 16 server slots)" >&2; exit 2
fi
: "${DATABASE_URL:?set DATABASE_URL (PostgreSQL): every process shares it}"
: "${REDIS_URL:?set REDIS_URL: commands reach chargers on other processes through Redis}"
APP_HOST=${APP_HOST:-127.0.0.1}
APP_PORT_BASE=${APP_PORT_BASE:-8001}
export OCPP_TRUSTED_PROXIES=${OCPP_TRUSTED_PROXIES:-127.0.0.1}
export FORWARDED_ALLOW_IPS=${FORWARDED_ALLOW_IPS:-127.0.0.1}
if [[ -z "${OCPP_BIND:-}" && -z "${OCPP_TLS_BIND:-}" ]]; then
  export OCPP_BIND=0.0.0.0:8000
fi
PY=${PY:-.venv/bin/python}
# Metrics (docs/operations.md): every process of this host writes its values under one directory
# (prometheus_client's multiprocess mode) and any process's GET /metrics adds them all up; a
# Celery worker on this host given the same directory is counted too. Its files are emptied at
# each start: the values of an earlier run's processes would count again.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-var/prometheus}
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
# HAProxy needs two file descriptors per connection and refuses to start when it cannot raise its
# limit to that: by default take what this host's hard limit allows (at most 100,000).
if [[ -z "${OCPP_MAXCONN:-}" ]]; then
  hard=$(ulimit -Hn)
  if [[ "$hard" == unlimited ]] || (( hard > 200100 )); then
    export OCPP_MAXCONN=100000
  else
    export OCPP_MAXCONN=$(( (hard - 100) / 2 ))
  fi
fi

pids=()
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
}
trap stop EXIT INT TERM

for ((i = 1; i <= N; i++)); do
  port=$((APP_PORT_BASE + i - 1))
  "$PY" manage.py serve --host "$APP_HOST" --port "$port" --simulate 0 &
  pids+=($!)
  export "OCPP_APP_$i=$APP_HOST:$port"
done
# HAProxy last, once every process listens (before that its checks would mark them all down).
for ((i = 1; i <= N; i++)); do
  port=$((APP_PORT_BASE + i - 1))
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/$APP_HOST/$port") 2>/dev/null && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "process on port $port exited" >&2; exit 1; }
    sleep 0.1
  done
done
haproxy -db -f deploy/haproxy/ocpp-cluster.cfg &
pids+=($!)
echo "cluster: $N process(es) on $APP_HOST:$APP_PORT_BASE..$((APP_PORT_BASE + N - 1)), HAProxy on ${OCPP_BIND:-} ${OCPP_TLS_BIND:-} (maxconn $OCPP_MAXCONN)" >&2
# Whichever stops first (a process or HAProxy) stops the rest.
wait -n
