# Sourced by deploy/*.sh: where the services keep their state (credentials,
# services.env, pid files, sockets), and the check that nobody else can change it.
#
# Default: $XDG_STATE_HOME/rayline/services (~/.local/state/rayline/services), made
# mode 700. An install made before that default kept its state in the world-writable
# /var/tmp; it is used while it exists, belongs to this user and nobody else may
# write to it (its Postgres data and images stay where they are).
LEGACY_SERVICES_DIR=/var/tmp/rayline-services

services_dir() {
  if [[ -n ${RAYLINE_SERVICES_DIR:-} ]]; then
    echo "$RAYLINE_SERVICES_DIR"
    return
  fi
  local default="${XDG_STATE_HOME:-$HOME/.local/state}/rayline/services"
  if [[ ! -e $default && -d $LEGACY_SERVICES_DIR && ! -L $LEGACY_SERVICES_DIR && -O $LEGACY_SERVICES_DIR ]]; then
    echo "$LEGACY_SERVICES_DIR"
    return
  fi
  echo "$default"
}

# check_private_dir DIR: fail, saying why, when another user owns DIR or may write to it.
check_private_dir() {
  local dir=$1 mode
  local fix="remove it, or set RAYLINE_SERVICES_DIR to a directory of your own"
  if [[ -L $dir || ! -d $dir ]]; then
    printf 'error: %s is not a directory (a link?): %s\n' "$dir" "$fix" >&2
    return 1
  fi
  if [[ ! -O $dir ]]; then
    printf 'error: %s belongs to %s, not to %s: another user could read the credentials or replace services.env there; %s\n' \
      "$dir" "$(stat -c %U "$dir")" "$(id -un)" "$fix" >&2
    return 1
  fi
  mode=$(stat -c %a "$dir")
  if (((8#$mode & 8#022) != 0)); then
    printf 'error: %s is writable by group or others (mode %s): they could replace what is kept there; chmod 700 it or %s\n' \
      "$dir" "$mode" "$fix" >&2
    return 1
  fi
}

# private_dir DIR: make DIR mode 700 (parents as needed), or check the one that exists.
private_dir() {
  local dir=$1
  if [[ ! -e $dir && ! -L $dir ]]; then
    mkdir -p "$(dirname "$dir")"
    mkdir -m 700 "$dir"
  fi
  check_private_dir "$dir"
}

# close_inherited_fds: close every descriptor above 2 this script inherited, so the
# daemons it starts do not keep them. A caller's `flock LOCK deploy/services.sh up`
# would otherwise stay locked for as long as Postgres or dockerd runs. Bash reads the
# script itself through 255, which stays open.
close_inherited_fds() {
  local fd n
  for fd in /proc/$$/fd/*; do
    n=${fd##*/}
    if ((n > 2 && n != 255)); then
      eval "exec $n>&-" 2>/dev/null || true
    fi
  done
}
