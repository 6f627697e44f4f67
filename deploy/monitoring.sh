#!/usr/bin/env bash
# Install, start, stop and report Rayline's Prometheus server (Debian's `prometheus`
# package, which brings `promtool`), on loopback with its own config, rules, data dir
# and port:
#
#   deploy/monitoring.sh install          install the package when missing (apt)
#   deploy/monitoring.sh up               render the config, check it, start (or reload)
#                                         Prometheus and wait until it is ready
#   deploy/monitoring.sh down             stop the Prometheus this script started
#   deploy/monitoring.sh status           up or down, and the URL
#
# Settings (environment):
#   RAYLINE_MONITORING_DIR              state: config, data, log, pid (default $RAYLINE_HOME/monitoring)
#   RAYLINE_PROMETHEUS_PORT             listen port on 127.0.0.1 (default 59090)
#   RAYLINE_PROMETHEUS_SD_DIR           file_sd dir written by the Cluster Manager
#                                       (default $RAYLINE_HOME/prometheus/targets, as the manager)
#   RAYLINE_PROMETHEUS_TOKEN_FILE       the manager's API token (default $RAYLINE_HOME/api-token;
#                                       when RAYLINE_API_TOKEN is set it is copied, mode 600)
#   RAYLINE_PROMETHEUS_SCRAPE_INTERVAL  scrape and rule evaluation interval (default 15s)
#   RAYLINE_PROMETHEUS_RETENTION        TSDB retention (default 15d)
#
# `up` is idempotent: a running server gets the re-rendered config through a reload.
# `down` stops only the process whose pid this script recorded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/state_dir.sh
source "$HERE/state_dir.sh"
close_inherited_fds  # a caller's flock must not live on in Prometheus
HOME_DIR="${RAYLINE_HOME:-$HOME/.rayline}"
STATE="${RAYLINE_MONITORING_DIR:-$HOME_DIR/monitoring}"
PORT="${RAYLINE_PROMETHEUS_PORT:-59090}"
SD_DIR="${RAYLINE_PROMETHEUS_SD_DIR:-$HOME_DIR/prometheus/targets}"
TOKEN_FILE="${RAYLINE_PROMETHEUS_TOKEN_FILE:-$HOME_DIR/api-token}"
INTERVAL="${RAYLINE_PROMETHEUS_SCRAPE_INTERVAL:-15s}"
RETENTION="${RAYLINE_PROMETHEUS_RETENTION:-15d}"
RULES_DIR="$HERE/prometheus/rules"
PIDFILE="$STATE/prometheus.pid"
URL="http://127.0.0.1:$PORT"

log() { printf '[monitoring] %s\n' "$*" >&2; }
die() { printf '[monitoring] error: %s\n' "$*" >&2; exit 1; }

pid_alive() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { curl -sf -o /dev/null "$URL/-/ready"; }
answers() { curl -s -o /dev/null "$URL/"; }

install() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
  [[ $EUID -eq 0 ]] || die "prometheus is not installed; run as root: apt-get install prometheus"
  log "installing Debian package: prometheus"
  apt-get update -qq
  # The package's own service (port 9090) may start too; ours uses its own port.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
}

render() {
  mkdir -p "$STATE/data" "$SD_DIR"
  if [[ -n ${RAYLINE_API_TOKEN:-} && -z ${RAYLINE_PROMETHEUS_TOKEN_FILE:-} ]]; then
    TOKEN_FILE="$STATE/manager-token"
    (umask 077; printf '%s' "$RAYLINE_API_TOKEN" >"$TOKEN_FILE")
  fi
  # A missing token file is not fatal: the manager creates it on first start and
  # Prometheus reads it on every scrape.
  local tmp="$STATE/.prometheus.yml.tmp"
  sed -e "s|@SCRAPE_INTERVAL@|$INTERVAL|g" -e "s|@SD_DIR@|$SD_DIR|g" \
    -e "s|@RULES_DIR@|$RULES_DIR|g" -e "s|@TOKEN_FILE@|$TOKEN_FILE|g" \
    "$HERE/prometheus/prometheus.yml" >"$tmp"
  promtool check rules "$RULES_DIR"/*.yml >/dev/null || die "promtool check rules failed"
  mv "$tmp" "$STATE/prometheus.yml"
}

up() {
  install
  render
  if pid_alive; then
    # SIGHUP, not the HTTP /-/reload: --web.enable-lifecycle would let any local
    # process reload or shut Prometheus down.
    kill -HUP "$(cat "$PIDFILE")" || die "Prometheus did not accept the reload (SIGHUP)"
    log "prometheus (pid $(cat "$PIDFILE")) reloaded its config"
  else
    answers && die "port $PORT is taken by a process this script did not start"
    setsid prometheus --config.file="$STATE/prometheus.yml" \
      --storage.tsdb.path="$STATE/data" --storage.tsdb.retention.time="$RETENTION" \
      --web.listen-address="127.0.0.1:$PORT" \
      >>"$STATE/prometheus.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  local deadline=$((SECONDS + 60))
  until ready; do
    pid_alive || die "prometheus exited; last lines of $STATE/prometheus.log:
$(tail -n 20 "$STATE/prometheus.log")"
    ((SECONDS < deadline)) || die "prometheus did not become ready in 60s (see $STATE/prometheus.log)"
    sleep 0.3
  done
  log "prometheus ready on $URL (targets from $SD_DIR)"
}

down() {
  pid_alive || { rm -f "$PIDFILE"; log "prometheus is not running"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "prometheus stopped"
}

status() {
  if pid_alive && ready; then
    echo "prometheus: up ($URL, pid $(cat "$PIDFILE"), targets from $SD_DIR)"
  else
    echo "prometheus: down"
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
