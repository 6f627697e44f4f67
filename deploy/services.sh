#!/usr/bin/env bash
# Start, stop and report the real services Rayline runs against on this machine:
#   postgres  Debian's postgresql, own data dir, own port, loopback only
#   s3        an S3 server on loopback (versitygw by default; MinIO when RAYLINE_S3_SERVER=minio)
#   docker    Debian's docker.io engine, own socket and data root, --bridge=none
#
#   deploy/services.sh install                 install what is missing (apt, go install)
#   deploy/services.sh up|down|status [NAME..] all services, or the named ones
#   deploy/services.sh start|stop NAME         same as up/down for one service
#
#   deploy/services.sh env-file                the services.env to `source` (path only)
#
# Every start is idempotent and waits until the service answers; `down` stops only
# what this script started (it reads its own pid files). State lives in a directory
# only its owner can use (deploy/state_dir.sh; $RAYLINE_SERVICES_DIR overrides it).
# Credentials are generated on first start, kept mode 600 in $STATE/credentials, and
# exported with the addresses in $STATE/services.env for tests and tools
# (`source "$(deploy/services.sh env-file)"`).
set -euo pipefail

# shellcheck source=deploy/state_dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/state_dir.sh"
STATE="$(services_dir)"
close_inherited_fds
CACHE="${RAYLINE_CACHE_DIR:-$HOME/.cache/rayline}"
BIN="$CACHE/bin"
PG_PORT="${RAYLINE_PG_PORT:-55432}"
S3_PORT="${RAYLINE_S3_PORT:-59000}"
S3_SERVER="${RAYLINE_S3_SERVER:-versitygw}"
VERSITYGW_MODULE="github.com/versity/versitygw/cmd/versitygw@v1.8.0"
# The brief's MinIO release; the Go module proxy reachable here refuses it (403), so
# versitygw (Apache-2.0, also a real S3 server) is the default on these machines.
MINIO_MODULE="github.com/minio/minio@RELEASE.2025-10-15T17-29-55Z"
ALL_SERVICES=(postgres s3 docker)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not answer in time (see logs under $STATE)"
    sleep 0.3
  done
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------- install
apt_install() { # apt_install PKG...: install the Debian packages that are missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

s3_binary() { [[ $S3_SERVER == minio ]] && echo "$BIN/minio" || echo "$BIN/versitygw"; }

install_s3() {
  [[ -x $(s3_binary) ]] && return 0
  command -v go >/dev/null || apt_install golang-go
  local module=$VERSITYGW_MODULE
  [[ $S3_SERVER == minio ]] && module=$MINIO_MODULE
  log "building $module into $BIN (cached for later runs)"
  mkdir -p "$BIN"
  GOBIN="$BIN" go install "$module"
}

install_all() {
  apt_install postgresql docker.io containerd runc iproute2 curl
  # The serving base image's root file system (`rayline images build-base`), and
  # the load generator of benchmarks/serving.py.
  apt_install debootstrap wrk
  install_s3
}

# ---------------------------------------------------------------- credentials
credentials() {
  local file="$STATE/credentials"
  if [[ ! -f $file ]]; then
    private_dir "$STATE" || exit 1
    umask 077
    {
      echo "PG_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "S3_ACCESS_KEY=rayline$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "S3_SECRET_KEY=$(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$file"
  fi
  # shellcheck disable=SC1090
  source "$file"
}

write_env() {
  credentials
  umask 077
  cat >"$STATE/services.env" <<EOF
export RAYLINE_SERVICES_DIR=${STATE}
export RAYLINE_PG_URL=postgresql+psycopg://rayline:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/rayline
export RAYLINE_S3_ENDPOINT_URL=http://127.0.0.1:${S3_PORT}
export RAYLINE_S3_ACCESS_KEY_ID=${S3_ACCESS_KEY}
export RAYLINE_S3_SECRET_ACCESS_KEY=${S3_SECRET_KEY}
export DOCKER_HOST=unix://${STATE}/docker/docker.sock
EOF
}

# ---------------------------------------------------------------- postgres
PG_BIN=""
pg_bin() {
  [[ -n $PG_BIN ]] && return 0
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n $PG_BIN ]] || die "postgresql is not installed: run deploy/services.sh install"
}
as_postgres() { runuser -u postgres -- "$@"; }
# Postgres runs as user postgres, which cannot enter the private state dir: its files
# live in a directory of its own under its home (or where an older install put them).
pg_dir() {
  if [[ -f $STATE/postgres/data/PG_VERSION ]]; then
    echo "$STATE/postgres"
  else
    echo "${RAYLINE_PG_DIR:-$(getent passwd postgres | cut -d: -f6)/rayline-$PG_PORT}"
  fi
}
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

up_postgres() {
  pg_bin; credentials
  local dir; dir=$(pg_dir)
  mkdir -p -m 700 "$dir" "$dir/run"
  chown postgres:postgres "$dir" "$dir/run"
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    log "initialising Postgres data dir $dir/data"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 -E UTF8 >/dev/null
  fi
  if ! pg_ready; then
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir/run -c max_connections=200" >/dev/null
  fi
  wait_for 60 "Postgres" pg_ready
  # Role and database: created once, password kept in step with the credentials file.
  # The password reaches psql on its stdin (printf is a builtin): never on a command
  # line, which every user sees in `ps`.
  {
    printf '%s\n' "\\set pw '$PG_PASSWORD'"
    cat <<'SQL'
SELECT 'CREATE ROLE rayline LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rayline')\gexec
ALTER ROLE rayline PASSWORD :'pw';
SELECT 'CREATE DATABASE rayline OWNER rayline' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'rayline')\gexec
SQL
  } | as_postgres "$PG_BIN/psql" -q -h "$dir/run" -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 >/dev/null
  log "postgres ready on 127.0.0.1:$PG_PORT"
}

down_postgres() {
  pg_bin
  local data; data="$(pg_dir)/data"
  if [[ -f $data/postmaster.pid ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    log "postgres stopped"
  fi
}

status_postgres() { pg_bin; pg_ready && echo "postgres: up (127.0.0.1:$PG_PORT)" || echo "postgres: down"; }

# ---------------------------------------------------------------- s3
s3_ready() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; }

up_s3() {
  install_s3; credentials
  local dir="$STATE/s3" pidfile="$STATE/s3/server.pid"
  mkdir -p "$dir/data"
  if ! pid_alive "$pidfile"; then
    s3_ready && die "port $S3_PORT is taken by a process this script did not start"
    # Credentials go through the environment, never the command line (visible in ps).
    if [[ $S3_SERVER == minio ]]; then
      MINIO_ROOT_USER=$S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$S3_SECRET_KEY setsid "$(s3_binary)" \
        server --address "127.0.0.1:$S3_PORT" --console-address "127.0.0.1:$((S3_PORT + 1))" \
        "$dir/data" >>"$dir/server.log" 2>&1 </dev/null &
    else
      ROOT_ACCESS_KEY_ID=$S3_ACCESS_KEY ROOT_SECRET_ACCESS_KEY=$S3_SECRET_KEY setsid "$(s3_binary)" \
        --port "127.0.0.1:$S3_PORT" --quiet posix "$dir/data" >>"$dir/server.log" 2>&1 </dev/null &
    fi
    echo $! >"$pidfile"
  fi
  wait_for 60 "S3 server ($S3_SERVER)" s3_ready
  log "s3 ($S3_SERVER) ready on 127.0.0.1:$S3_PORT"
}

stop_pidfile() { # stop_pidfile PIDFILE NAME: TERM, wait, then KILL what we started
  local pidfile=$1 name=$2 pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  log "$name stopped"
}

down_s3() { stop_pidfile "$STATE/s3/server.pid" "s3"; }
status_s3() { pid_alive "$STATE/s3/server.pid" && s3_ready && echo "s3: up ($S3_SERVER, 127.0.0.1:$S3_PORT)" || echo "s3: down"; }

# ---------------------------------------------------------------- docker
docker_ready() { docker -H "unix://$STATE/docker/docker.sock" info; }

up_docker() {
  local dir="$STATE/docker"
  command -v dockerd >/dev/null || die "docker.io is not installed: run deploy/services.sh install"
  mkdir -p "$dir"
  if ! pid_alive "$dir/dockerd.pid"; then
    rm -f "$dir/docker.sock"
    # Own socket, data root and exec root so we never touch a system engine;
    # no bridge and no iptables: containers use --network host on loopback.
    setsid dockerd --host "unix://$dir/docker.sock" --data-root "$dir/data" \
      --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" --bridge=none \
      --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
      >>"$dir/dockerd.log" 2>&1 </dev/null &
    wait_for 90 "Docker engine" test -S "$dir/docker.sock"
  fi
  wait_for 90 "Docker engine" docker_ready
  log "docker ready on unix://$dir/docker.sock"
}

down_docker() { stop_pidfile "$STATE/docker/dockerd.pid" "docker"; }
status_docker() { pid_alive "$STATE/docker/dockerd.pid" && docker_ready >/dev/null 2>&1 && echo "docker: up (unix://$STATE/docker/docker.sock)" || echo "docker: down"; }

# ---------------------------------------------------------------- main
main() {
  local cmd=${1:-status}; shift || true
  local names=("$@")
  ((${#names[@]} == 0)) && names=("${ALL_SERVICES[@]}")
  for n in "${names[@]}"; do
    [[ " ${ALL_SERVICES[*]} " == *" $n "* ]] || die "unknown service '$n' (known: ${ALL_SERVICES[*]})"
  done
  case $cmd in
    install) install_all ;;
    env-file)
      [[ -e $STATE ]] && { check_private_dir "$STATE" || exit 1; }
      echo "$STATE/services.env" ;;
    up | start)
      [[ $EUID -eq 0 ]] || die "run as root: Postgres runs as user postgres and dockerd needs root"
      private_dir "$STATE" || exit 1
      write_env
      for n in "${names[@]}"; do "up_$n"; done
      log "environment: source $STATE/services.env" ;;
    down | stop) for ((i = ${#names[@]} - 1; i >= 0; i--)); do "down_${names[i]}"; done ;;
    status) for n in "${names[@]}"; do "status_$n"; done ;;
    *) die "unknown command '$cmd' (install | up | down | start | stop | status | env-file)" ;;
  esac
}

main "$@"
