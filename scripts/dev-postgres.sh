#!/usr/bin/env bash
# dev-postgres.sh — a real PostgreSQL 17 + pgvector 0.8 server on 127.0.0.1,
# for tests and CI, on a Debian bookworm machine (run as root).
#
# Bookworm has no pgvector package, so the server runs from a Debian trixie
# chroot built with debootstrap (about 40 s the first time, then reused).
#
# Usage:
#   scripts/dev-postgres.sh start          build chroot if needed, initdb if needed,
#                                          start the server (idempotent); prints URL last
#   scripts/dev-postgres.sh stop           stop the server (and the replica) if running
#   scripts/dev-postgres.sh status         exit 0 "running <url>", or exit 1 "stopped"
#   scripts/dev-postgres.sh url            print the URL
#   scripts/dev-postgres.sh psql [args]    run psql (from the chroot) against the server
#   scripts/dev-postgres.sh start-replica  start a streaming replica (pg_basebackup -R);
#                                          prints its URL last
#   scripts/dev-postgres.sh stop-replica   stop the replica if running
#   scripts/dev-postgres.sh replica-url    print the replica URL
#
# Private instances (for tests that stop or crash a server; never the shared one above):
#   scripts/dev-postgres.sh start-instance NAME PORT [PRIMARY_PORT]
#                                          start instance NAME on 127.0.0.1:PORT, data in
#                                          /var/lib/rag-kb/instances/NAME in the chroot (initdb on first start, or with
#                                          PRIMARY_PORT a streaming replica of that server via
#                                          pg_basebackup -R); an existing data dir is reused;
#                                          prints its URL last
#   scripts/dev-postgres.sh stop-instance NAME [fast|immediate]
#                                          stop it (immediate = crash: no checkpoint, recovery
#                                          at the next start); its data is kept
#   scripts/dev-postgres.sh remove-instance NAME   stop it (immediate) and delete its data
#   scripts/dev-postgres.sh remove-instances       the same for every private instance (CI cleanup)
#   scripts/dev-postgres.sh instance-url NAME      print its URL
#
# Environment:
#   DEV_PG_ROOT          chroot dir        (default /var/tmp/rag-kb-pg-trixie)
#   DEV_PG_PORT          primary port      (default 54329)
#   DEV_PG_REPLICA_PORT  replica port      (default 54330)
#   DEV_PG_MIRROR        Debian mirror     (default http://deb.debian.org/debian)
#
# Only the final URL goes to stdout; every other message goes to stderr.
# Server logs: $DEV_PG_ROOT/var/lib/rag-kb/{primary,replica}.log and
#              $DEV_PG_ROOT/var/lib/rag-kb/instances/NAME/server.log
set -euo pipefail

ROOT="${DEV_PG_ROOT:-/var/tmp/rag-kb-pg-trixie}"
PORT="${DEV_PG_PORT:-54329}"
REPLICA_PORT="${DEV_PG_REPLICA_PORT:-54330}"
MIRROR="${DEV_PG_MIRROR:-http://deb.debian.org/debian}"
SUITE=trixie
PG_MAJOR=17
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"

# Paths inside the chroot.
BASE=/var/lib/rag-kb
DATA="$BASE/data"
REPLICA_DATA="$BASE/replica"
LOG="$BASE/primary.log"
REPLICA_LOG="$BASE/replica.log"
PROC_MARKER="$BASE/.proc-mounted-by-dev-postgres"
INSTANCES="$BASE/instances"
SOCKDIR=/tmp
START_TIMEOUT=60

URL="postgresql://postgres@127.0.0.1:${PORT}/postgres"
REPLICA_URL="postgresql://postgres@127.0.0.1:${REPLICA_PORT}/postgres"

log() { printf 'dev-postgres: %s\n' "$*" >&2; }
die() { printf 'dev-postgres: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (needs chroot and mount)"
}

have_chroot() { [ -x "$ROOT$PG_BIN/postgres" ] && [ -x "$ROOT$PG_BIN/pg_ctl" ]; }

# Serialise concurrent invocations (e.g. parallel test runners calling start).
# The fd is closed for every child that may outlive us (see run_pg).
take_lock() {
  mkdir -p "$(dirname "$ROOT")"
  exec 9>"$ROOT.lock"
  if ! flock -w 600 9; then die "could not lock $ROOT.lock"; fi
}

pg_ids() {
  # uid:gid of postgres *inside* the chroot (it may differ from the host's).
  local line
  line="$(grep '^postgres:' "$ROOT/etc/passwd" || true)"
  [ -n "$line" ] || die "no postgres user in $ROOT/etc/passwd (broken chroot? remove $ROOT)"
  PG_UID="$(printf '%s' "$line" | cut -d: -f3)"
  PG_GID="$(printf '%s' "$line" | cut -d: -f4)"
}

# Run a command inside the chroot as postgres, with a clean environment.
# fd 9 (the lock) is closed so a daemonised postmaster never holds it.
run_pg() {
  pg_ids
  chroot --userspec="$PG_UID:$PG_GID" --groups="$PG_GID" "$ROOT" \
    /usr/bin/env -i HOME=/var/lib/postgresql \
      PATH="$PG_BIN:/usr/local/bin:/usr/bin:/bin" \
      LANG=C.UTF-8 LC_ALL=C.UTF-8 PGHOST=127.0.0.1 PGUSER=postgres "$@" 9>&-
}

build_chroot() {
  if have_chroot; then return 0; fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (apt-get)"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >&2
  fi
  local tmp="$ROOT.building.$$"
  # Leftovers of an interrupted build (their /proc may still be mounted).
  local d
  for d in "$ROOT".building.*; do
    [ -e "$d" ] || continue
    if mountpoint -q "$d/proc" 2>/dev/null; then umount "$d/proc" || true; fi
    rm -rf --one-file-system "$d"
  done
  if [ -e "$ROOT" ]; then
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" || true; fi
    log "$ROOT exists but has no postgres binaries; rebuilding it"
    rm -rf --one-file-system "$ROOT"
  fi
  log "building Debian $SUITE chroot with postgresql-$PG_MAJOR + pgvector in $ROOT (about a minute)"
  local t0=$SECONDS
  if ! debootstrap --variant=minbase \
      --include="postgresql-$PG_MAJOR,postgresql-$PG_MAJOR-pgvector" \
      "$SUITE" "$tmp" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1; then
    tail -n 30 "$ROOT.debootstrap.log" >&2 || true
    if mountpoint -q "$tmp/proc" 2>/dev/null; then umount "$tmp/proc" || true; fi
    die "debootstrap failed (full log: $ROOT.debootstrap.log)"
  fi
  # debootstrap may leave its own /proc (or /sys) mounts behind.
  for d in proc sys; do
    if mountpoint -q "$tmp/$d" 2>/dev/null; then umount "$tmp/$d" || true; fi
  done
  rm -rf "$tmp/var/cache/apt/archives/"*.deb
  mv "$tmp" "$ROOT"
  have_chroot || die "chroot built but $ROOT$PG_BIN/postgres is missing"
  log "chroot built in $((SECONDS - t0)) s"
}

mount_proc() {
  if ! mountpoint -q "$ROOT/proc"; then
    mkdir -p "$ROOT/proc"
    mount -t proc proc "$ROOT/proc"
    mkdir -p "$ROOT$BASE"
    touch "$ROOT$PROC_MARKER"
  fi
  # POSIX shared memory lives in /dev/shm; make sure the directory exists.
  mkdir -p "$ROOT/dev/shm"
  chmod 1777 "$ROOT/dev/shm" "$ROOT/tmp"
}

umount_proc_if_ours() {
  if [ -e "$ROOT$PROC_MARKER" ]; then
    if is_running "$DATA" || is_running "$REPLICA_DATA" || any_instance_running; then
      log "not unmounting $ROOT/proc: a server is still running"
      return 0
    fi
    if mountpoint -q "$ROOT/proc"; then umount "$ROOT/proc"; fi
    rm -f "$ROOT$PROC_MARKER"
  fi
}

# is_running DATADIR  (path inside the chroot)
is_running() {
  local dir="$1"
  have_chroot || return 1
  [ -f "$ROOT$dir/postmaster.pid" ] || return 1
  local pid
  pid="$(head -n 1 "$ROOT$dir/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Make sure that pid really is a postgres of ours (not a recycled pid).
  [ "$(readlink "/proc/$pid/root" 2>/dev/null || true)" = "$(readlink -f "$ROOT")" ] || return 1
  return 0
}

pick_locale() {
  if run_pg locale -a 2>/dev/null | grep -qixE 'C\.utf-?8'; then
    echo C.UTF-8
  else
    echo C
  fi
}

HBA_REPL_LINE='host    replication     all             127.0.0.1/32            trust'

ensure_hba_replication() {
  local hba="$ROOT$DATA/pg_hba.conf"
  if ! grep -qE '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    log "adding replication line to pg_hba.conf"
    printf '%s\n' "$HBA_REPL_LINE" >>"$hba"
    return 1   # changed
  fi
  return 0
}

# Settings every cluster of ours must have (a replica copies them too).
write_conf() {
  local dir="$1"
  local conf="$ROOT$dir/postgresql.conf"
  if ! grep -q '^# rag-kb dev-postgres settings' "$conf"; then
    cat >>"$conf" <<EOF

# rag-kb dev-postgres settings (scripts/dev-postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKDIR'
max_connections = 300
wal_level = replica
max_wal_senders = 10
fsync = on
logging_collector = off
EOF
  fi
}

init_cluster() {
  if [ -f "$ROOT$DATA/PG_VERSION" ]; then return 0; fi
  pg_ids
  local loc
  loc="$(pick_locale)"
  log "initdb $DATA (locale $loc)"
  rm -rf "${ROOT:?}$DATA"
  mkdir -p "$ROOT$BASE"
  chown "$PG_UID:$PG_GID" "$ROOT$BASE"
  run_pg initdb -D "$DATA" -A trust -U postgres --encoding=UTF8 --locale="$loc" >&2
  printf '%s\n' "$HBA_REPL_LINE" >>"$ROOT$DATA/pg_hba.conf"
  write_conf "$DATA"
}

# wait_ready PORT LOGFILE NAME
wait_ready() {
  local port="$1" logf="$2" name="$3" i
  for ((i = 0; i < START_TIMEOUT * 2; i++)); do
    if run_pg pg_isready -q -h 127.0.0.1 -p "$port" -U postgres; then return 0; fi
    sleep 0.5
  done
  log "$name did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT}s; tail of $ROOT$logf:"
  tail -n 40 "$ROOT$logf" >&2 || true
  exit 1
}

# Close every fd above 2 in the current (sub)shell, so that the daemonised
# postmaster holds neither our lock nor any pipe inherited from the caller
# (a CI runner waiting for its pipes to close would otherwise hang).
close_extra_fds() {
  local f n
  for f in /proc/$BASHPID/fd/*; do
    n="${f##*/}"
    if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 2 ]; then
      eval "exec $n>&-" 2>/dev/null || true
    fi
  done
}

# start_server DATADIR PORT LOGFILE NAME
start_server() {
  local dir="$1" port="$2" logf="$3" name="$4"
  # setsid: the postmaster gets its own session, so it survives the caller's
  # process group being killed (CI job runners, shells that exit).
  # -o: port and loopback-only listening are forced on the command line too.
  if ! (close_extra_fds; exec setsid -w chroot --userspec="$PG_UID:$PG_GID" --groups="$PG_GID" "$ROOT" \
      /usr/bin/env -i HOME=/var/lib/postgresql PATH="$PG_BIN:/usr/bin:/bin" \
        LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        pg_ctl start -D "$dir" -l "$logf" -w -t "$START_TIMEOUT" \
          -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCKDIR -c max_connections=300" \
      </dev/null >&2); then
    log "pg_ctl could not start $name; tail of $ROOT$logf:"
    tail -n 40 "$ROOT$logf" >&2 || true
    exit 1
  fi
  wait_ready "$port" "$logf" "$name"
}

cmd_start() {
  require_root
  take_lock
  build_chroot
  pg_ids
  mount_proc
  init_cluster
  write_conf "$DATA"
  if is_running "$DATA"; then
    if ! ensure_hba_replication; then run_pg pg_ctl reload -D "$DATA" >&2; fi
    wait_ready "$PORT" "$LOG" "primary"
    log "already running on 127.0.0.1:$PORT"
  else
    ensure_hba_replication || true
    log "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$PORT (log: $ROOT$LOG)"
    start_server "$DATA" "$PORT" "$LOG" "primary"
    log "started"
  fi
  echo "$URL"
}

stop_one() {
  local dir="$1" name="$2"
  if is_running "$dir"; then
    log "stopping $name"
    run_pg pg_ctl stop -D "$dir" -m fast -w -t 60 >&2
  else
    log "$name not running"
  fi
}

cmd_stop() {
  require_root
  if ! have_chroot; then log "not running (no chroot at $ROOT)"; return 0; fi
  take_lock
  stop_one "$REPLICA_DATA" "replica"
  stop_one "$DATA" "primary"
  umount_proc_if_ours
}

cmd_status() {
  if is_running "$DATA"; then
    echo "running $URL"
    return 0
  fi
  echo "stopped"
  return 1
}

cmd_psql() {
  require_root
  have_chroot || die "no chroot at $ROOT; run: $0 start"
  is_running "$DATA" || die "server is not running; run: $0 start"
  pg_ids
  exec chroot --userspec="$PG_UID:$PG_GID" --groups="$PG_GID" "$ROOT" \
    /usr/bin/env -i HOME=/var/lib/postgresql PATH="$PG_BIN:/usr/bin:/bin" \
      LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM="${TERM:-dumb}" \
      psql -h 127.0.0.1 -p "${DEV_PG_PSQL_PORT:-$PORT}" -U postgres -d postgres "$@"
}

cmd_start_replica() {
  require_root
  take_lock
  have_chroot && is_running "$DATA" || die "primary is not running; run: $0 start"
  pg_ids
  mount_proc
  if is_running "$REPLICA_DATA"; then
    wait_ready "$REPLICA_PORT" "$REPLICA_LOG" "replica"
    log "replica already running on 127.0.0.1:$REPLICA_PORT"
    echo "$REPLICA_URL"
    return 0
  fi
  if ! ensure_hba_replication; then run_pg pg_ctl reload -D "$DATA" >&2; fi
  # Always take a fresh base backup: an old copy may be from another cluster or
  # miss WAL the primary has since recycled (no replication slot is kept).
  rm -rf "${ROOT:?}$REPLICA_DATA"
  log "pg_basebackup from 127.0.0.1:$PORT into $REPLICA_DATA"
  run_pg pg_basebackup -h 127.0.0.1 -p "$PORT" -U postgres -D "$REPLICA_DATA" \
    -R -X stream -c fast >&2
  log "starting replica on 127.0.0.1:$REPLICA_PORT (log: $ROOT$REPLICA_LOG)"
  start_server "$REPLICA_DATA" "$REPLICA_PORT" "$REPLICA_LOG" "replica"
  local i rec=""
  for ((i = 0; i < START_TIMEOUT * 2; i++)); do
    rec="$(run_pg psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -XAtqc 'SELECT pg_is_in_recovery()' 2>/dev/null || true)"
    [ "$rec" = "t" ] && break
    sleep 0.5
  done
  if [ "$rec" != "t" ]; then
    log "replica on port $REPLICA_PORT is not in recovery (pg_is_in_recovery=$rec); tail of $ROOT$REPLICA_LOG:"
    tail -n 40 "$ROOT$REPLICA_LOG" >&2 || true
    exit 1
  fi
  log "replica started, in recovery, streaming from 127.0.0.1:$PORT"
  echo "$REPLICA_URL"
}

cmd_stop_replica() {
  require_root
  if ! have_chroot; then log "replica not running"; return 0; fi
  take_lock
  stop_one "$REPLICA_DATA" "replica"
}

# ---- private instances ------------------------------------------------------

check_instance_name() {
  [[ "${1:-}" =~ ^[A-Za-z0-9_-]{1,48}$ ]] || die "instance name must be 1-48 letters, digits, '-' or '_' (got '${1:-}')"
}

check_instance_port() {
  local p="${1:-}"
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1024 ] && [ "$p" -le 65535 ] || die "port must be 1024-65535 (got '$p')"
  # The shared server and its replica are never touched through the instance commands.
  [ "$p" != "$PORT" ] && [ "$p" != "$REPLICA_PORT" ] || die "port $p belongs to the shared server; pick another"
}

any_instance_running() {
  local d
  for d in "$ROOT$INSTANCES"/*/; do
    [ -d "$d" ] || continue
    if is_running "${d#"$ROOT"}data"; then return 0; fi
  done
  return 1
}

instance_url() {
  local name="$1" port
  port="$(cat "$ROOT$INSTANCES/$name/port" 2>/dev/null || true)"
  [ -n "$port" ] || die "no instance named $name"
  echo "postgresql://postgres@127.0.0.1:${port}/postgres"
}

cmd_start_instance() {
  local name="${1:-}" port="${2:-}" primary_port="${3:-}"
  check_instance_name "$name"
  check_instance_port "$port"
  [ -z "$primary_port" ] || [[ "$primary_port" =~ ^[0-9]+$ ]] || die "PRIMARY_PORT must be a port number"
  require_root
  take_lock
  build_chroot
  pg_ids
  mount_proc
  local dir="$INSTANCES/$name"
  local data="$dir/data" logf="$dir/server.log"
  mkdir -p "$ROOT$dir"
  chown "$PG_UID:$PG_GID" "$ROOT$INSTANCES" "$ROOT$dir"
  if is_running "$data"; then
    wait_ready "$(cat "$ROOT$dir/port")" "$logf" "instance $name"
    log "instance $name already running"
    instance_url "$name"
    return 0
  fi
  if [ ! -f "$ROOT$data/PG_VERSION" ]; then
    rm -rf "${ROOT:?}$data"
    if [ -n "$primary_port" ]; then
      log "pg_basebackup from 127.0.0.1:$primary_port into $data"
      run_pg pg_basebackup -h 127.0.0.1 -p "$primary_port" -U postgres -D "$data" -R -X stream -c fast >&2
    else
      local loc
      loc="$(pick_locale)"
      log "initdb $data (locale $loc)"
      run_pg initdb -D "$data" -A trust -U postgres --encoding=UTF8 --locale="$loc" >&2
      printf '%s\n' "$HBA_REPL_LINE" >>"$ROOT$data/pg_hba.conf"
      write_conf "$data"
    fi
  fi
  echo "$port" >"$ROOT$dir/port"
  log "starting instance $name on 127.0.0.1:$port (log: $ROOT$logf)"
  start_server "$data" "$port" "$logf" "instance $name"
  instance_url "$name"
}

cmd_stop_instance() {
  local name="${1:-}" mode="${2:-fast}"
  check_instance_name "$name"
  [ "$mode" = fast ] || [ "$mode" = immediate ] || die "stop mode must be fast or immediate (got '$mode')"
  require_root
  if ! have_chroot; then log "instance $name not running"; return 0; fi
  take_lock
  local data="$INSTANCES/$name/data"
  if is_running "$data"; then
    log "stopping instance $name ($mode)"
    run_pg pg_ctl stop -D "$data" -m "$mode" -w -t 60 >&2
  else
    log "instance $name not running"
  fi
}

cmd_remove_instance() {
  local name="${1:-}"
  check_instance_name "$name"
  require_root
  if ! have_chroot; then return 0; fi
  take_lock
  local dir="$INSTANCES/$name"
  if is_running "$dir/data"; then run_pg pg_ctl stop -D "$dir/data" -m immediate -w -t 60 >&2; fi
  rm -rf "${ROOT:?}$dir"
  log "instance $name removed"
}

cmd_remove_instances() {
  require_root
  if ! have_chroot; then return 0; fi
  take_lock
  local d
  for d in "$ROOT$INSTANCES"/*/; do
    [ -d "$d" ] || continue
    d="${d%/}"
    if is_running "${d#"$ROOT"}/data"; then run_pg pg_ctl stop -D "${d#"$ROOT"}/data" -m immediate -w -t 60 >&2; fi
    rm -rf "$d"
    log "instance ${d##*/} removed"
  done
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) echo "$URL" ;;
    replica-url) echo "$REPLICA_URL" ;;
    psql) cmd_psql "$@" ;;
    start-replica) cmd_start_replica ;;
    stop-replica) cmd_stop_replica ;;
    start-instance) cmd_start_instance "$@" ;;
    stop-instance) cmd_stop_instance "$@" ;;
    remove-instance) cmd_remove_instance "$@" ;;
    remove-instances) cmd_remove_instances ;;
    instance-url) check_instance_name "${1:-}"; instance_url "$1" ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
