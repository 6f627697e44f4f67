#!/usr/bin/env bash
# Start, stop and report the ZooKeeper server Rayline's managers coordinate through:
# Debian's `zookeeper` package (Java), standalone, own config and data dir, client
# port on loopback, admin server off.
#
#   deploy/zookeeper.sh install          install the Debian package if missing
#   deploy/zookeeper.sh up|down|status   start (idempotent, waits for `ruok`), stop, report
#
# State lives in $RAYLINE_SERVICES_DIR/zookeeper (default: deploy/state_dir.sh);
# the port is $RAYLINE_ZK_PORT (default 52181). `down` stops only the server this
# script started (it reads its own pid file). The address is written to
# $STATE/zookeeper.env as RAYLINE_ZK_ADDRESS; managers use coordination only when
# RAYLINE_ZOOKEEPER_HOSTS is set, so sourcing that file changes nothing by itself.
set -euo pipefail

# shellcheck source=deploy/state_dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/state_dir.sh"
STATE="$(services_dir)"
close_inherited_fds
DIR="$STATE/zookeeper"
PORT="${RAYLINE_ZK_PORT:-52181}"
# Short ticks: sessions may be as short as 2 ticks (1 s), which keeps fail-over fast.
TICK_MS="${RAYLINE_ZK_TICK_MS:-500}"
PIDFILE="$DIR/zookeeper.pid"
CLASSPATH_BASE="/usr/share/java/zookeeper.jar"
# Server log through log4j 1.2 (both Debian jars come with the package's dependencies).
LOG_JARS="/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

log() { printf '[zookeeper] %s\n' "$*" >&2; }
die() { printf '[zookeeper] error: %s\n' "$*" >&2; exit 1; }
pid_alive() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# `ruok` over a plain TCP connection: a healthy server answers `imok`.
ruok() {
  local answer=""
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  printf 'ruok' >&3
  IFS= read -r -t 2 answer <&3 || true
  exec 3<&- 3>&-
  [[ $answer == imok ]]
}

install() {
  if dpkg -s zookeeper >/dev/null 2>&1; then return 0; fi
  log "installing Debian package: zookeeper"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zookeeper >/dev/null
}

write_config() {
  private_dir "$STATE" || exit 1
  mkdir -p "$DIR/data" "$DIR/conf"
  cat >"$DIR/conf/zoo.cfg" <<EOF
tickTime=$TICK_MS
dataDir=$DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
minSessionTimeout=$((TICK_MS * 2))
maxSessionTimeout=60000
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF
  cat >"$DIR/conf/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
EOF
  umask 077
  echo "export RAYLINE_ZK_ADDRESS=127.0.0.1:$PORT" >"$STATE/zookeeper.env"
}

up() {
  [[ -f $CLASSPATH_BASE ]] || die "zookeeper is not installed: run deploy/zookeeper.sh install"
  write_config
  if ! pid_alive; then
    ruok 2>/dev/null && die "port $PORT answers ZooKeeper but this script did not start it"
    setsid java -Xmx256m -cp "$DIR/conf:$CLASSPATH_BASE:$LOG_JARS" \
      -Dzookeeper.log.dir="$DIR" -Dlog4j.configuration="file:$DIR/conf/log4j.properties" \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$DIR/conf/zoo.cfg" \
      >>"$DIR/zookeeper.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  local deadline=$((SECONDS + 60))
  until ruok 2>/dev/null; do
    pid_alive || die "ZooKeeper exited at start-up; see $DIR/zookeeper.log"
    ((SECONDS < deadline)) || die "ZooKeeper did not answer ruok in 60s; see $DIR/zookeeper.log"
    sleep 0.2
  done
  log "zookeeper ready on 127.0.0.1:$PORT"
}

down() {
  pid_alive || { rm -f "$PIDFILE"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  # TERM, give it 10 s to close its sessions and snapshot, then KILL.
  kill -TERM "$pid" 2>/dev/null || true
  timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  log "zookeeper stopped"
}

status() {
  if pid_alive && ruok 2>/dev/null; then
    echo "zookeeper: up (127.0.0.1:$PORT)"
  else
    echo "zookeeper: down"
  fi
}

case ${1:-status} in
  install) install ;;
  up | start) up ;;
  down | stop) down ;;
  status) status ;;
  *) die "unknown command '${1}' (install | up | down | status)" ;;
esac
