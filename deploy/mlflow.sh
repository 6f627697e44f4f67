#!/usr/bin/env bash
# Install, start, stop and report Rayline's MLflow tracking server (the pinned `mlflow`
# of the project's virtualenv): bound to 127.0.0.1, backend store in its own database
# on our Postgres, artifacts proxied to our S3 server.
#
#   deploy/mlflow.sh install          make sure the virtualenv has mlflow (uv sync)
#   deploy/mlflow.sh up               create the database and bucket when missing, start
#                                     the server (idempotent) and wait until it answers
#   deploy/mlflow.sh down             stop the server this script started (its pid file)
#   deploy/mlflow.sh status           up or down, and the URL
#
# Settings (environment; `source "$(deploy/services.sh env-file)"` gives the first four):
#   RAYLINE_PG_URL                 Postgres of Rayline (its credentials reach MLflow by env only)
#   RAYLINE_S3_ENDPOINT_URL, RAYLINE_S3_ACCESS_KEY_ID, RAYLINE_S3_SECRET_ACCESS_KEY
#   RAYLINE_MLFLOW_PORT            listen port on 127.0.0.1 (default 55500)
#   RAYLINE_MLFLOW_DATABASE        database of the backend store (default mlflow)
#   RAYLINE_MLFLOW_ARTIFACTS       artifact destination (default s3://rayline/mlflow)
#   RAYLINE_MLFLOW_DIR             state: pid, log, env file (default $RAYLINE_SERVICES_DIR/mlflow)
#   RAYLINE_MLFLOW_WORKERS         server worker processes (default 2)
#
# `up` writes $RAYLINE_MLFLOW_DIR/mlflow.env with RAYLINE_MLFLOW_TRACKING_URI. Passwords
# never appear on a command line: the server reads its store URI and S3 keys from its
# environment (MLFLOW_BACKEND_STORE_URI, AWS_*), which only its user can read.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
# shellcheck source=deploy/state_dir.sh
source "$HERE/state_dir.sh"
SERVICES="$(services_dir)"
close_inherited_fds
STATE="${RAYLINE_MLFLOW_DIR:-$SERVICES/mlflow}"
PORT="${RAYLINE_MLFLOW_PORT:-55500}"
DATABASE="${RAYLINE_MLFLOW_DATABASE:-mlflow}"
ARTIFACTS="${RAYLINE_MLFLOW_ARTIFACTS:-s3://rayline/mlflow}"
WORKERS="${RAYLINE_MLFLOW_WORKERS:-2}"
PYTHON="${RAYLINE_MLFLOW_PYTHON:-$REPO/.venv/bin/python}"
PIDFILE="$STATE/mlflow.pid"
URL="http://127.0.0.1:$PORT"

log() { printf '[mlflow] %s\n' "$*" >&2; }
die() { printf '[mlflow] error: %s\n' "$*" >&2; exit 1; }

pid_alive() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
answers() { curl -sf -o /dev/null --max-time 5 "$URL/health"; }

install() {
  "$PYTHON" -c 'import mlflow' 2>/dev/null && return 0
  log "the virtualenv lacks mlflow: uv sync --frozen"
  (cd "$REPO" && uv sync --frozen --inexact)
}

# The database and the bucket, created when missing (Python: the same drivers Rayline uses).
prepare() {
  [[ -n ${RAYLINE_PG_URL:-} ]] || die "RAYLINE_PG_URL is not set: source $SERVICES/services.env"
  [[ -n ${RAYLINE_S3_ENDPOINT_URL:-} ]] || die "RAYLINE_S3_ENDPOINT_URL is not set: source $SERVICES/services.env"
  RAYLINE_MLFLOW_DATABASE="$DATABASE" RAYLINE_MLFLOW_ARTIFACTS="$ARTIFACTS" \
    "$PYTHON" -m rayline.tracking.server_setup
}

up() {
  install
  private_dir "$STATE" || exit 1
  if ! pid_alive; then
    answers && die "port $PORT answers but this script did not start that server"
    prepare
    local store
    store=$(RAYLINE_MLFLOW_DATABASE="$DATABASE" "$PYTHON" -m rayline.tracking.server_setup --print-store-uri)
    # setsid: the server and its uvicorn workers form one process group, stopped together.
    (
      umask 077
      export MLFLOW_BACKEND_STORE_URI="$store"
      export MLFLOW_S3_ENDPOINT_URL="$RAYLINE_S3_ENDPOINT_URL"
      export AWS_ACCESS_KEY_ID="${RAYLINE_S3_ACCESS_KEY_ID:-}"
      export AWS_SECRET_ACCESS_KEY="${RAYLINE_S3_SECRET_ACCESS_KEY:-}"
      export AWS_DEFAULT_REGION="${RAYLINE_S3_REGION:-us-east-1}"
      # No background job runner (GenAI evaluation jobs): nothing of Rayline uses it.
      export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
      cd "$STATE"
      exec setsid "$PYTHON" -m mlflow server --host 127.0.0.1 --port "$PORT" \
        --workers "$WORKERS" --artifacts-destination "$ARTIFACTS" \
        >>"$STATE/mlflow.log" 2>&1 </dev/null
    ) &
    echo $! >"$PIDFILE"
  fi
  local deadline=$((SECONDS + 120))
  until answers; do
    pid_alive || die "the MLflow server exited; last lines of $STATE/mlflow.log:
$(tail -n 20 "$STATE/mlflow.log")"
    ((SECONDS < deadline)) || die "the MLflow server did not answer in 120s (see $STATE/mlflow.log)"
    sleep 0.3
  done
  (umask 077; echo "export RAYLINE_MLFLOW_TRACKING_URI=$URL" >"$STATE/mlflow.env")
  log "mlflow ready on $URL (store: database $DATABASE, artifacts: $ARTIFACTS)"
}

down() {
  pid_alive || { rm -f "$PIDFILE"; log "mlflow is not running"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  # The whole process group setsid made: the server and its workers.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "mlflow stopped"
}

status() {
  if pid_alive && answers; then
    echo "mlflow: up ($URL, pid $(cat "$PIDFILE"))"
  else
    echo "mlflow: down"
    return 3
  fi
}

case ${1:-status} in
  install) install ;;
  up | start) up ;;
  down | stop) down ;;
  status) status ;;
  *) die "unknown command '${1}' (install | up | down | status)" ;;
esac
