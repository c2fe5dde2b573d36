#!/usr/bin/env bash
# with-db.sh CMD [ARGS...] — run CMD with DATABASE_URL pointing at a database.
#
# * DATABASE_URL already set (non-empty): CMD runs with it unchanged, nothing
#   is started (CI or a developer may bring their own server).
# * Otherwise the project-local cluster (scripts/pg.sh) is started if needed,
#   database $SHMS_DB_NAME (default: shms) is created if missing, and
#   DATABASE_URL=postgres://postgres@127.0.0.1:PORT/shms is exported.
#   When CMD ends (normally, with an error, or on INT/TERM/HUP) a cluster that
#   was not running before is stopped again — but only once no other
#   with-db.sh invocation of this checkout is still using it (so `make test`
#   finishing does not pull the database from under a running `make run`).
#   SHMS_KEEP_DB=1 leaves it running.
#
# The exit status is CMD's (128+N if it died of signal N).
# SHMS_PG_FAST=1 is passed on to pg.sh (non-durable cluster for tests).

# shellcheck disable=SC2317 # the functions below are only called from traps
set -euo pipefail

SCRIPT_DIR=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
PG=$SCRIPT_DIR/pg.sh

if (($# == 0)); then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

if [[ -n ${DATABASE_URL:-} ]]; then
  # Nothing to clean up afterwards: let CMD take over this process.
  exec "$@"
fi

DB_NAME=${SHMS_DB_NAME:-shms}
child=

# Runs on every exit path. A cluster we auto-started is stopped by
# `pg.sh release` once no other user of it remains.
cleanup() {
  local status=$?
  trap - EXIT
  # A second Ctrl-C must not abort the shutdown half-way (pg.sh and pg_ctl
  # inherit the ignored signals).
  trap '' INT TERM HUP
  "$PG" release "$$" || echo "with-db.sh: warning: could not release the database cluster" >&2
  exit "$status"
}
trap cleanup EXIT

# Are we in the terminal's foreground process group? Then a Ctrl-C SIGINT
# was already delivered by the terminal to CMD as well (it runs in our process
# group), and forwarding it would make CMD see two interrupts (many programs
# treat a second Ctrl-C as "abort the graceful shutdown now").
in_foreground_of_tty() {
  local stat
  local -a f
  stat=$(cat "/proc/$$/stat" 2>/dev/null) || return 1
  read -ra f <<<"${stat##*) }" # fields 3.. : state ppid pgrp session tty tpgid
  [[ ${f[5]} != -1 && ${f[5]} == "${f[2]}" ]]
}

on_signal() {
  local sig=$1 code=$2
  if [[ -z $child ]]; then
    # Still setting up the database: just stop (cleanup releases it).
    exit $((128 + code))
  fi
  if [[ $sig == INT ]] && in_foreground_of_tty; then
    return 0
  fi
  kill -s "$sig" "$child" 2>/dev/null || true
}
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP

base_url=$("$PG" acquire "$$")
"$PG" ensure-db "$DB_NAME"
export DATABASE_URL=$base_url/$DB_NAME

# CMD runs in the background so that this shell can react to signals while
# waiting (bash defers traps until a foreground command finishes). Two bash
# rules for background jobs need undoing: without job control they ignore
# SIGINT/SIGQUIT (hence `trap -` in the subshell before exec), and their stdin
# is /dev/null unless redirected explicitly (hence `<&0`, so an interactive
# psql or a server reading stdin keeps working).
(
  trap - INT QUIT
  exec "$@"
) <&0 &
child=$!

# `wait` returns 128+N both when CMD died of signal N and when one of our
# traps merely interrupted the wait; keep waiting while CMD is still alive.
# (Loop on kill -0, not on wait's status: for a child that is already gone,
# bash 5.2 sometimes keeps returning odd statuses, which would spin forever.)
while :; do
  status=0
  wait "$child" || status=$?
  if ((status > 128)) && kill -0 "$child" 2>/dev/null; then
    continue
  fi
  break
done
# If CMD finished while our trap ran (e.g. a server exiting 0 right after a
# Ctrl-C), the interrupted wait reported 128+N instead of CMD's own status;
# bash still has the real one, so ask once more.
if ((status > 128)); then
  again=0
  wait "$child" 2>/dev/null || again=$?
  if ((again >= 0 && again <= 255 && again != 127)); then
    status=$again
  fi
fi
exit "$status"
