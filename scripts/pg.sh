#!/usr/bin/env bash
# pg.sh — a project-local PostgreSQL cluster for SHMS development and tests.
#
# Usage: scripts/pg.sh start | stop | status | url | ensure-db NAME | destroy
#        scripts/pg.sh acquire PID | release PID     (used by with-db.sh)
#
#   start       ensure the cluster runs; print ONLY its base URL on stdout
#               (postgres://postgres@127.0.0.1:PORT). Idempotent.
#   stop        fast shutdown if running; no error if not.
#   status      exit 0 if running, 1 if not.
#   url         print the base URL if running, exit 1 if not.
#   ensure-db   create database NAME if missing (cluster must be running).
#   destroy     stop and delete the whole cluster directory.
#   restart [S] fast shutdown, S seconds down (default 0), start again on the same
#               port with the same options (the database outage of `make stress`).
#   acquire     like start, but registers PID as a user of the cluster; if this
#               call had to start the cluster, it is marked "auto-started".
#   release     unregister PID; an auto-started cluster is stopped once its
#               last registered user is gone (unless SHMS_KEEP_DB=1).
#
# Why a private cluster: tests create and drop many databases and need a
# superuser; we must not depend on (or collide with) whatever PostgreSQL the
# machine already runs on 5432, and several checkouts of this repository
# (a developer's and CI's clean clone) may run on the same machine at once,
# so each checkout gets its own data directory and its own port.
#
# Layout (all under the state dir, normally <repo>/.pg, git-ignored):
#   data/  cluster    run/  unix socket    log  server log    port  last port
#   lock   flock(1) lock serialising start/stop/acquire/release of this checkout
#   leases/<pid>, autostarted   bookkeeping for with-db.sh
#
# Environment:
#   SHMS_PG_FAST=1      start with fsync/synchronous_commit/full_page_writes off
#                       (tests only: a crash of the machine can corrupt the
#                       cluster). Only applies when this call starts the server.
#   SHMS_PG_BINDIR      directory with initdb/pg_ctl/postgres (skips discovery).
#   SHMS_PG_PORT_BASE   first port to try (default 54329).
#   SHMS_PG_START_TIMEOUT seconds to wait for readiness (default 30).
#   SHMS_KEEP_DB=1      `release` leaves an auto-started cluster running.
#
# Diagnostics go to stderr so that `$(scripts/pg.sh start)` is just the URL.
set -euo pipefail

SCRIPT_DIR=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -P -- "$SCRIPT_DIR/.." && pwd)

# libpq/pg_ctl honour PG* variables (PGHOST, PGPORT, PGDATABASE, PGOPTIONS,
# PGDATA, ...). A developer's shell may point them at another server; we
# always pass explicit connection parameters, so drop them all.
for _v in $(compgen -v PG || true); do unset "$_v"; done
unset _v

PORT_BASE=${SHMS_PG_PORT_BASE:-54329}
PORT_SCAN=200
START_TIMEOUT=${SHMS_PG_START_TIMEOUT:-30}
PG_OS_USER=postgres # OS account that owns the cluster when we run as root
PG_DB_USER=postgres # database superuser created by initdb

log() { printf 'pg.sh: %s\n' "$*" >&2; }
die() { printf 'pg.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $(id -u) -eq 0 ]]; }

# Run a command as the OS user owning the cluster. initdb and postgres refuse
# to run as root, so as root we switch to `postgres`; otherwise the current
# user owns the cluster. `cd /` because the caller's cwd may not be readable
# by that user (initdb and postgres complain about it).
as_pg() {
  if ! is_root; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
    (cd / && su "$PG_OS_USER" -s /bin/sh -c 'exec "$0" "$@"' -- "$@")
  fi
}

short_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    printf '%s' "$1" | sha256sum | cut -c1-10
  else
    printf '%s' "$1" | cksum | cut -d' ' -f1
  fi
}

# ---------------------------------------------------------------------------
# Where the cluster lives.
# ---------------------------------------------------------------------------

PRIMARY_DIR=$REPO_ROOT/.pg
FALLBACK_DIR=${TMPDIR:-/tmp}/shms-pg-$(short_hash "$REPO_ROOT")

set_paths() {
  STATE_DIR=$1
  DATA_DIR=$STATE_DIR/data
  RUN_DIR=$STATE_DIR/run
  LOG_FILE=$STATE_DIR/log
  PORT_FILE=$STATE_DIR/port
  LEASE_DIR=$STATE_DIR/leases
  AUTO_MARK=$STATE_DIR/autostarted
  # A unix socket path is limited to ~107 bytes; a deeply nested checkout
  # would make postgres fail to create its socket, so move the socket to a
  # short path in that case (clients here use TCP anyway).
  if (( ${#RUN_DIR} + 16 > 100 )); then
    RUN_DIR=/tmp/shms-pg-$(short_hash "$REPO_ROOT").run
  fi
}

# Can the cluster owner create files in DIR (creating and handing it over if
# we are root)? Tests with the owner's own permissions, which also checks that
# every parent directory is traversable for it (e.g. a checkout under /root is
# not, for `postgres`).
prepare_dir() {
  local dir=$1 created=0
  if [[ -L $dir ]]; then
    log "refusing to use $dir: it is a symlink"
    return 1
  fi
  if [[ ! -d $dir ]]; then
    mkdir -p -- "$dir" 2>/dev/null || return 1
    created=1
  fi
  if is_root; then
    # Only take over a directory that is ours: root-owned (we just made it, or
    # an earlier run did) or already owned by the cluster owner.
    local owner
    owner=$(stat -c %U -- "$dir")
    if [[ $owner != root && $owner != "$PG_OS_USER" ]]; then
      log "refusing to use $dir: owned by $owner"
      return 1
    fi
    chown "$PG_OS_USER:" -- "$dir"
    chmod 0700 -- "$dir"
  fi
  if as_pg test -w "$dir" -a -x "$dir"; then
    return 0
  fi
  if ((created)); then rmdir -- "$dir" 2>/dev/null || true; fi
  return 1
}

# For start-like commands: pick (and create) the state dir.
# An existing fallback cluster keeps being used (same rule as
# locate_state_dir, so that `url` finds what `start` started).
setup_state_dir() {
  ensure_pg_os_user
  if ! fallback_in_use && prepare_dir "$PRIMARY_DIR"; then
    set_paths "$PRIMARY_DIR"
  elif prepare_dir "$FALLBACK_DIR"; then
    fallback_in_use ||
      log "$PG_OS_USER cannot write under $REPO_ROOT; using $FALLBACK_DIR"
    set_paths "$FALLBACK_DIR"
  else
    die "no usable directory for the cluster (tried $PRIMARY_DIR and $FALLBACK_DIR)"
  fi
  mkdir -p -- "$LEASE_DIR"
  if [[ $RUN_DIR == "$STATE_DIR"/* ]]; then
    mkdir -p -- "$RUN_DIR"
    if is_root; then chown "$PG_OS_USER:" -- "$RUN_DIR"; fi
  else
    prepare_dir "$RUN_DIR" || die "cannot use $RUN_DIR for the server socket"
  fi
}

fallback_in_use() { [[ -d $FALLBACK_DIR/data && ! -d $PRIMARY_DIR/data ]]; }

# For read-only commands: find an existing state dir without creating one.
locate_state_dir() {
  if fallback_in_use; then
    set_paths "$FALLBACK_DIR"
  else
    set_paths "$PRIMARY_DIR"
  fi
}

# Serialise commands that change the cluster's state for this checkout, so
# e.g. `make run` and `make test` started together don't both run initdb or
# pick ports at the same time. The lock is dropped when this script exits.
take_lock() {
  if ! command -v flock >/dev/null 2>&1; then
    return 0 # best effort: util-linux is missing (e.g. macOS)
  fi
  [[ -d $STATE_DIR ]] || return 0
  exec 9>>"$STATE_DIR/lock"
  flock -w 120 9 || die "timed out waiting for $STATE_DIR/lock"
}

# ---------------------------------------------------------------------------
# PostgreSQL binaries.
# ---------------------------------------------------------------------------

ensure_pg_os_user() {
  is_root || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_OS_USER"
  local group=(--user-group)
  if getent group "$PG_OS_USER" >/dev/null 2>&1; then group=(--gid "$PG_OS_USER"); fi
  useradd --system --home-dir /var/lib/postgresql --no-create-home \
    --shell /bin/bash "${group[@]}" "$PG_OS_USER" >&2
}

find_bindir() {
  local d
  if [[ -n ${SHMS_PG_BINDIR:-} ]]; then
    [[ -x $SHMS_PG_BINDIR/initdb ]] || die "SHMS_PG_BINDIR=$SHMS_PG_BINDIR has no initdb"
    echo "$SHMS_PG_BINDIR"
    return 0
  fi
  # An existing cluster can only be run by binaries of its major version;
  # prefer those (Debian keeps several versions side by side).
  if [[ -f ${DATA_DIR:-/nonexistent}/PG_VERSION ]]; then
    d=/usr/lib/postgresql/$(<"$DATA_DIR/PG_VERSION")/bin
    if [[ -x $d/initdb ]]; then echo "$d"; return 0; fi
  fi
  if command -v pg_config >/dev/null 2>&1 && d=$(pg_config --bindir 2>/dev/null) &&
    [[ -x $d/initdb ]]; then
    echo "$d"
    return 0
  fi
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  if [[ -x $d/initdb ]]; then echo "$d"; return 0; fi
  if d=$(command -v initdb 2>/dev/null); then
    # Follow symlinks (e.g. /usr/local/bin/initdb) to the real bin dir, where
    # pg_ctl and postgres live too.
    d=$(dirname -- "$(readlink -f -- "$d" 2>/dev/null || echo "$d")")
    echo "$d"
    return 0
  fi
  return 1
}

install_postgres() {
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install PostgreSQL" \
      "and contrib (Debian/Ubuntu: apt-get install postgresql postgresql-contrib)," \
      "set SHMS_PG_BINDIR, or set DATABASE_URL to an existing server."
  fi
  log "PostgreSQL not found; installing it with apt-get"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql postgresql-contrib >&2
}

# Sets BINDIR, PG_CTL, INITDB, PG_ISREADY, PSQL.
resolve_binaries() {
  if ! BINDIR=$(find_bindir); then
    install_postgres
    BINDIR=$(find_bindir) || die "PostgreSQL still not found after installing it"
  fi
  INITDB=$BINDIR/initdb
  PG_CTL=$BINDIR/pg_ctl
  [[ -x $PG_CTL ]] || die "$BINDIR has initdb but no pg_ctl"
  resolve_client
  # Our migrations need btree_gist (exclusion constraints on time ranges).
  local share=
  if [[ -x $BINDIR/pg_config ]]; then share=$("$BINDIR/pg_config" --sharedir 2>/dev/null || true); fi
  if [[ -n $share && ! -f $share/extension/btree_gist.control ]]; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
      log "btree_gist missing; installing postgresql-contrib"
      apt-get update >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-contrib >&2
    else
      log "warning: btree_gist extension not found in $share; migrations will fail" \
        "(install postgresql-contrib)"
    fi
  fi
}

# Client tools: next to the server binaries if present (Debian), else PATH.
# Sets PSQL and PG_ISREADY.
resolve_client() {
  local d
  d=${BINDIR:-$(find_bindir 2>/dev/null || true)}
  PSQL=$d/psql
  [[ -n $d && -x $PSQL ]] || PSQL=$(command -v psql) ||
    die "psql not found (install the PostgreSQL client)"
  PG_ISREADY=$d/pg_isready
  [[ -n $d && -x $PG_ISREADY ]] || PG_ISREADY=$(command -v pg_isready) ||
    die "pg_isready not found (install the PostgreSQL client)"
}

# ---------------------------------------------------------------------------
# Cluster state.
# ---------------------------------------------------------------------------

real_data_dir() { readlink -f -- "$DATA_DIR" 2>/dev/null || echo "$DATA_DIR"; }

# PID of our postmaster, if it is running. postmaster.pid alone is not
# proof: after a crash or a container restart its PID can belong to another
# process (even another postgres), so also require that the process's cwd is
# our data directory (postgres chdirs there).
postmaster_pid() {
  local pid
  [[ -f $DATA_DIR/postmaster.pid ]] || return 1
  pid=$(head -n1 -- "$DATA_DIR/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -d /proc/$pid ]]; then
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$(real_data_dir)" ]] || return 1
  fi
  echo "$pid"
}

is_running() { postmaster_pid >/dev/null; }

# Port of the running postmaster: line 4 of postmaster.pid is authoritative;
# .pg/port is only a copy for humans and for when the pid file is unreadable.
running_port() {
  local port
  port=$(sed -n 4p -- "$DATA_DIR/postmaster.pid" 2>/dev/null) || port=
  [[ $port =~ ^[0-9]+$ ]] || port=$(cat -- "$PORT_FILE" 2>/dev/null) || port=
  [[ $port =~ ^[0-9]+$ ]] || return 1
  echo "$port"
}

base_url() { echo "postgres://$PG_DB_USER@127.0.0.1:$1"; }

# Anything listening on 127.0.0.1:PORT (another checkout's cluster, the
# system PostgreSQL, anything else)?
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local port
  for ((port = $1; port < PORT_BASE + PORT_SCAN; port++)); do
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "no free TCP port in $PORT_BASE..$((PORT_BASE + PORT_SCAN - 1))"
}

# Processes (postmaster children) whose cwd is our data directory.
data_dir_processes() {
  local p real
  real=$(real_data_dir)
  [[ -d /proc/self ]] || return 0
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/cwd" 2>/dev/null) == "$real" ]] && echo "${p#/proc/}"
  done
  return 0
}

# After `kill -9` of the postmaster (or an OOM kill) its backends may live on
# for a moment, still attached to the old shared memory; postgres then
# refuses to start ("pre-existing shared memory block is still in use"), so
# wait for them to exit. A postmaster.pid whose PID now belongs to an
# unrelated live process would make postgres refuse too ("lock file already
# exists"); once no process uses the data directory it is safe to move aside.
clear_stale_state() {
  [[ -f $DATA_DIR/postmaster.pid ]] || return 0
  local i pids
  for ((i = 0; i < 50; i++)); do
    pids=$(data_dir_processes)
    [[ -z $pids ]] && break
    sleep 0.2
  done
  if [[ -n $pids ]]; then
    pids=${pids//$'\n'/ }
    die "leftover server processes still use $DATA_DIR: $pids." \
      "Stop them (kill $pids) and retry."
  fi
  local pid
  pid=$(head -n1 -- "$DATA_DIR/postmaster.pid" 2>/dev/null) || pid=
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    log "stale postmaster.pid (PID $pid is not this cluster's postmaster any more); moving it aside"
    mv -f -- "$DATA_DIR/postmaster.pid" "$DATA_DIR/postmaster.pid.stale"
  fi
  # postgres itself handles a pid file whose PID is dead.
}

pg_ready() {
  "$PG_ISREADY" -q -h 127.0.0.1 -p "$1" -U "$PG_DB_USER" -d postgres -t 3 >/dev/null 2>&1
}

# Wait until the server accepts TCP connections (e.g. an earlier start timed
# out while the cluster was still in crash recovery).
wait_ready() {
  local port=$1 deadline=$((SECONDS + START_TIMEOUT))
  until pg_ready "$port"; do
    if ! is_running; then
      log_tail
      die "server on port $port exited while starting"
    fi
    if ((SECONDS >= deadline)); then
      log_tail
      die "server on port $port not ready after ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 0.2
  done
}

log_tail() {
  if [[ -f $LOG_FILE ]]; then
    log "last lines of $LOG_FILE:"
    tail -n 25 -- "$LOG_FILE" | sed 's/^/    /' >&2
  fi
}

init_cluster() {
  [[ -f $DATA_DIR/PG_VERSION ]] && return 0
  if [[ -e $DATA_DIR ]]; then
    # No PG_VERSION: an initdb that was interrupted. Nothing worth keeping.
    log "removing incomplete cluster directory $DATA_DIR"
    rm -rf -- "$DATA_DIR"
  fi
  # C.UTF-8 gives UTF-8 character classes with byte-order (stable, fast)
  # collation; plain C is the fallback where that locale is not installed.
  local locale=C
  if locale -a 2>/dev/null | grep -Eqix 'c\.utf-?8'; then locale=C.UTF-8; fi
  log "initialising cluster in $DATA_DIR (locale $locale)"
  # trust auth: the server only listens on 127.0.0.1 and a private socket
  # dir; it is a throwaway development/test cluster.
  if ! as_pg "$INITDB" -D "$DATA_DIR" --auth=trust --username="$PG_DB_USER" \
    --encoding=UTF8 --locale="$locale" >&2; then
    rm -rf -- "$DATA_DIR"
    die "initdb failed"
  fi
}

server_options() {
  local port=$1
  # pg_ctl hands -o to a shell: quote the socket path.
  local opts="-p $port -k '$RUN_DIR' -c listen_addresses=127.0.0.1"
  opts+=" -c max_connections=300 -c shared_buffers=256MB"
  if [[ ${SHMS_PG_FAST:-0} == 1 ]]; then
    # Durability off for throwaway test data: much faster CREATE DATABASE and
    # commits. Never for data you care about.
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  echo "$opts"
}

# Start the server (caller holds the lock and checked it is not running).
do_start() {
  resolve_binaries
  init_cluster
  clear_stale_state
  touch -- "$LOG_FILE"
  if is_root; then chown "$PG_OS_USER:" -- "$LOG_FILE"; fi

  local port attempt log_offset
  port=$(pick_port "$PORT_BASE")
  for ((attempt = 1; attempt <= 5; attempt++)); do
    log "starting cluster on 127.0.0.1:$port$([[ ${SHMS_PG_FAST:-0} == 1 ]] && echo ' (fast, non-durable)')"
    log_offset=$(($(stat -c %s -- "$LOG_FILE") + 1))
    # 9>&- : the postmaster must not inherit our lock fd, or it would hold
    # the lock for as long as it runs.
    if as_pg "$PG_CTL" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$START_TIMEOUT" \
      -o "$(server_options "$port")" >&2 9>&-; then
      wait_ready "$port"
      echo "$port" >"$PORT_FILE"
      START_PORT=$port
      return 0
    fi
    # Another process (e.g. a second checkout starting at the same moment)
    # may have taken the port between our check and the bind: try the next.
    if tail -c +"$log_offset" -- "$LOG_FILE" | grep 'could not create any TCP/IP sockets' >/dev/null; then
      log "port $port was taken meanwhile; retrying"
      port=$(pick_port $((port + 1)))
      continue
    fi
    log_tail
    if is_running; then
      die "server not ready after ${START_TIMEOUT}s; it is still starting (log: $LOG_FILE)"
    fi
    die "could not start PostgreSQL (log: $LOG_FILE)"
  done
  die "could not find a port to bind after several attempts"
}

# Ensure running (caller holds the lock); sets START_PORT.
ensure_running() {
  if is_running; then
    START_PORT=$(running_port) || die "cannot tell the port of the running cluster"
    resolve_client
    wait_ready "$START_PORT"
    if [[ ${SHMS_PG_FAST:-0} == 1 ]]; then
      log "reusing running cluster on port $START_PORT (its settings are unchanged)"
    fi
    return 0
  fi
  do_start
}

do_stop() {
  is_running || return 0
  resolve_binaries
  log "stopping cluster in $DATA_DIR"
  # fast: roll back open transactions and disconnect clients (a leftover
  # test or psql session must not block shutdown). Escalate if it hangs.
  if ! as_pg "$PG_CTL" stop -D "$DATA_DIR" -m fast -w -t 60 >&2; then
    log "fast shutdown did not finish; using immediate shutdown"
    as_pg "$PG_CTL" stop -D "$DATA_DIR" -m immediate -w -t 30 >&2
  fi
}

# ---------------------------------------------------------------------------
# Leases (with-db.sh): who is using an auto-started cluster.
# ---------------------------------------------------------------------------

# Process start time (field 22 of /proc/PID/stat) guards against PID reuse.
proc_start_time() {
  local stat
  local -a f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -; return 0; }
  # Field 2 (comm) may contain spaces; fields after the last ')' start at 3.
  read -ra f <<<"${stat##*) }"
  echo "${f[19]:--}"
}

lease_alive() {
  local pid start
  read -r pid start <"$1" 2>/dev/null || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $start == - || $(proc_start_time "$pid") == "$start" ]]
}

live_leases() {
  local f n=0
  for f in "$LEASE_DIR"/*; do
    [[ -f $f ]] || continue
    if lease_alive "$f"; then n=$((n + 1)); else rm -f -- "$f"; fi
  done
  echo "$n"
}

check_pid_arg() {
  [[ ${1:-} =~ ^[0-9]+$ ]] || die "usage: pg.sh $2 PID"
}

# ---------------------------------------------------------------------------
# Commands.
# ---------------------------------------------------------------------------

cmd_start() {
  setup_state_dir
  take_lock
  ensure_running
  # An explicit start means "keep it running": with-db.sh must not stop it.
  rm -f -- "$AUTO_MARK"
  base_url "$START_PORT"
}

cmd_acquire() {
  check_pid_arg "${1:-}" acquire
  setup_state_dir
  take_lock
  # Mark before starting: if we are interrupted half-way, release still
  # knows that the cluster was not started by the user.
  is_running || touch -- "$AUTO_MARK"
  ensure_running
  printf '%s %s\n' "$1" "$(proc_start_time "$1")" >"$LEASE_DIR/$1"
  base_url "$START_PORT"
}

cmd_release() {
  check_pid_arg "${1:-}" release
  locate_state_dir
  [[ -d $STATE_DIR ]] || return 0
  take_lock
  rm -f -- "$LEASE_DIR/$1"
  [[ -f $AUTO_MARK ]] || return 0
  if ! is_running; then
    rm -f -- "$AUTO_MARK"
    return 0
  fi
  local others
  others=$(live_leases)
  if ((others > 0)); then
    log "cluster still used by $others other with-db.sh invocation(s); leaving it running"
    return 0
  fi
  if [[ ${SHMS_KEEP_DB:-0} == 1 ]]; then
    log "SHMS_KEEP_DB=1: leaving cluster running ($(base_url "$(running_port)"))"
    rm -f -- "$AUTO_MARK" # from now on it counts as started by the user
    return 0
  fi
  do_stop
  rm -f -- "$AUTO_MARK"
}

cmd_stop() {
  locate_state_dir
  [[ -d $STATE_DIR ]] || return 0
  take_lock
  if is_running; then do_stop; else log "cluster not running"; fi
  rm -f -- "$AUTO_MARK"
}

cmd_status() {
  locate_state_dir
  if is_running; then
    log "running: $(base_url "$(running_port)") (data: $DATA_DIR)"
    return 0
  fi
  log "not running (data: $DATA_DIR)"
  return 1
}

cmd_url() {
  locate_state_dir
  is_running || die "cluster not running (start it with scripts/pg.sh start)"
  base_url "$(running_port)"
}

cmd_ensure_db() {
  local name=${1:-}
  [[ -n $name ]] || die "usage: pg.sh ensure-db NAME"
  locate_state_dir
  is_running || die "cluster not running (start it with scripts/pg.sh start)"
  take_lock # two concurrent CREATE DATABASE of the same name: one would fail
  resolve_client
  local port
  port=$(running_port)
  # psql variables are not interpolated in -c, hence the here-doc.
  PGCONNECT_TIMEOUT=10 "$PSQL" -X -q -v ON_ERROR_STOP=1 -v dbname="$name" \
    -h 127.0.0.1 -p "$port" -U "$PG_DB_USER" -d postgres >&2 <<'SQL'
SELECT format('CREATE DATABASE %I', :'dbname')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname')
\gexec
SQL
}

cmd_restart() {
  local down=${1:-0}
  [[ $down =~ ^[0-9]+([.][0-9]+)?$ ]] || die "usage: pg.sh restart [SECONDS]"
  locate_state_dir
  is_running || die "cluster not running"
  take_lock
  resolve_binaries
  # pg_ctl start without -o would drop the port and settings: reuse what it ran with
  local port opts
  port=$(running_port)
  opts=$(server_options "$port")
  log "restarting cluster on 127.0.0.1:$port (down ${down}s)"
  as_pg "$PG_CTL" stop -D "$DATA_DIR" -m fast -w -t 60 >&2
  sleep "$down"
  as_pg "$PG_CTL" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$START_TIMEOUT" -o "$opts" >&2 9>&-
  wait_ready "$port"
}

cmd_destroy() {
  locate_state_dir
  if [[ -d $STATE_DIR ]]; then
    take_lock
    do_stop
    log "deleting $STATE_DIR"
    rm -rf -- "$STATE_DIR"
  fi
  [[ $RUN_DIR == "$STATE_DIR"/* ]] || rm -rf -- "$RUN_DIR"
}

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) cmd_url ;;
ensure-db) cmd_ensure_db "${2:-}" ;;
destroy) cmd_destroy ;;
restart) cmd_restart "${2:-}" ;;
acquire) cmd_acquire "${2:-}" ;;
release) cmd_release "${2:-}" ;;
-h | --help | help) usage 0 ;;
*) usage ;;
esac
