#!/usr/bin/env bash
# bench.sh — the database's own limit (pgbench) and the API's rate (shms-load) for the same
# work, on the same generated calendar, in one run; writes docs/performance.md.
#
# Run through `make bench` (release build + DATABASE_URL via with-db.sh). Environment:
#   BENCH_SECONDS (20)      measured seconds per pgbench or API run
#   BENCH_CONNECTIONS (32)  concurrent HTTP connections of the load generator
#   BENCH_OUT (docs/performance.md)  where the report goes
#   SHMS_DB_POOL_SIZE (16)  the server's pool; pgbench runs with this many clients too
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/shms
LOAD=$TARGET/release/shms-load
SECONDS_PER_RUN=${BENCH_SECONDS:-20}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
POOL=${SHMS_DB_POOL_SIZE:-16}
OUT=${BENCH_OUT:-$ROOT/docs/performance.md}
PASSWORD='Bench-Calendar-Pass-42!'
export SHMS_BENCH_PASSWORD=$PASSWORD

: "${DATABASE_URL:?run through make bench, or set DATABASE_URL}"
server_url=${DATABASE_URL%/*}
PGBENCH=$(command -v pgbench || true)
if [[ -z $PGBENCH ]]; then
  PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n1)
fi
[[ -x $PGBENCH ]] || { echo "bench.sh: pgbench not found" >&2; exit 1; }
work=$(mktemp -d -t shms-bench-XXXXXX)
server=
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
# CPU seconds (user+system) used so far by PID ($1, - for none) and by all postgres
# processes: "server postgres" (shms-load measures the API runs itself)
cpu() {
  python3 - "$1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def used(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None, 0.0
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return comm, (int(fields[11]) + int(fields[12])) / tick
server = used(sys.argv[1])[1] if sys.argv[1] != "-" else 0.0
pg = sum(t for c, t in (used(p) for p in os.listdir("/proc") if p.isdigit()) if c == "postgres")
print(f"{server:.2f} {pg:.2f}")
PY
}
json() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }
fresh_db() {
  psql_q "$server_url/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1${2:+ TEMPLATE $2}"
}

echo "--- calendar: 200 doctors x 8 weeks of 30-minute weekday slots, 10,000 patients"
fresh_db shms_bench_tpl
DATABASE_URL=$server_url/shms_bench_tpl "$BIN" migrate >/dev/null
# one argon2id hash from the server's own hasher, shared by every generated account
DATABASE_URL=$server_url/shms_bench_tpl "$BIN" create-admin --email admin@bench.shms.test \
  --password "$PASSWORD" --name Bench >/dev/null
hash=$(psql -X -Atc "SELECT password_hash FROM users WHERE email = 'admin@bench.shms.test'" "$server_url/shms_bench_tpl")
psql_q "$server_url/shms_bench_tpl" -v pwhash="$hash" -f "$ROOT/sql/bench/generate.sql" >/dev/null
first_day=$(psql -X -Atc "SELECT min(starts_at)::date FROM slots" "$server_url/shms_bench_tpl")
slots=$(psql -X -Atc "SELECT count(*) FROM slots" "$server_url/shms_bench_tpl")
echo "first day $first_day, $slots slots"

# pgbench prints "tps = N (without initial connection time)" and the latency average
pgbench_run() { # name clients script [-D ...]
  local name=$1 clients=$2 script=$3
  shift 3
  # backends exit with pgbench and take their CPU counters along: sample inside the run
  (sleep 2 && cpu - >"$work/$name.cpu0" && sleep $((SECONDS_PER_RUN - 4)) && cpu - >"$work/$name.cpu1") &
  local sampler=$!
  "$PGBENCH" -M prepared -n -c "$clients" -j 2 -T "$SECONDS_PER_RUN" "$@" \
    -f "$ROOT/sql/bench/$script" "$server_url/shms_bench_pg" >"$work/$name.out" 2>&1 ||
    { cat "$work/$name.out" >&2; exit 1; }
  grep -q 'number of failed transactions: 0 ' "$work/$name.out" ||
    { echo "bench.sh: $name had failed transactions" >&2; cat "$work/$name.out" >&2; exit 1; }
  wait "$sampler"
  sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$name.out" | xargs printf '%.1f\n' >"$work/$name.tps"
  sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$work/$name.out" >"$work/$name.lat"
  echo "pgbench $name: $(cat "$work/$name.tps") tps, latency average $(cat "$work/$name.lat") ms"
}

echo "--- pgbench (the database's own limit)"
book_vars=(-D i=0 -D doctors=200 -D patients=10000 -D "slots=$slots")
# each booking run on a fresh copy: the clients' slot sequences start from slot 1 again
fresh_db shms_bench_pg shms_bench_tpl
pgbench_run "book-$CONNECTIONS" "$CONNECTIONS" book.sql -D "clients=$CONNECTIONS" "${book_vars[@]}"
fresh_db shms_bench_pg shms_bench_tpl
pgbench_run "book-$POOL" "$POOL" book.sql -D "clients=$POOL" "${book_vars[@]}"
booked_pg=$(psql -X -Atc "SELECT count(*) FROM appointments" "$server_url/shms_bench_pg")
pgbench_run "search-$POOL" "$POOL" search.sql -D days=40 -D "first_day=$first_day"
DATABASE_URL=$server_url/shms_bench_pg "$BIN" check >"$work/check-pg.out"

echo "--- the API (shms-load, $CONNECTIONS connections)"
fresh_db shms_bench_api shms_bench_tpl
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
DATABASE_URL=$server_url/shms_bench_api SHMS_BIND=127.0.0.1:$port SHMS_DB_POOL_SIZE=$POOL \
  SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE=1000000 SHMS_LOGIN_PER_ADDRESS_PER_MINUTE=1000000 \
  RUST_LOG=warn "$BIN" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -fsS "$base/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/health/ready" >/dev/null || { cat "$work/server.log" >&2; exit 1; }
rss_idle=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")

# the cross-doctor search (GET /slots) is new on main; fall back to one doctor's free slots
if [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/slots?specialty=specialty0&limit=1") == 200 ]]; then
  search=search
else
  search=doctor-slots
fi
cal=(--first-day "$first_day" --doctors 200 --patients 10000 --weeks 8)
for scenario in book "$search" login; do
  seconds=$SECONDS_PER_RUN
  # a login is an argon2id hash by design (~19 MiB, 2 passes): 10 s is plenty to see its rate
  [[ $scenario == login ]] && seconds=10
  "$LOAD" --base "$base" bench --scenario "$scenario" --connections "$CONNECTIONS" \
    --duration "$seconds" --server-pid "$server" "${cal[@]}" >"$work/api-$scenario.json"
  echo "api $scenario: $(cat "$work/api-$scenario.json")"
done
booked_api=$(psql -X -Atc "SELECT count(*) FROM appointments" "$server_url/shms_bench_api")
DATABASE_URL=$server_url/shms_bench_api "$BIN" check >"$work/check-api.out"
kill "$server"
wait "$server" 2>/dev/null || true
server=

# For comparison with the allocator's own tuning: the same login and booking runs with
# glibc's mmap threshold pinned (blocks of 128 KiB and more are mmapped and returned on
# free). The shipped server reuses each hashing thread's argon2 memory instead.
MALLOC_MMAP_THRESHOLD_=131072 DATABASE_URL=$server_url/shms_bench_api SHMS_BIND=127.0.0.1:$port \
  SHMS_DB_POOL_SIZE=$POOL SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE=1000000 SHMS_LOGIN_PER_ADDRESS_PER_MINUTE=1000000 \
  RUST_LOG=warn "$BIN" serve >>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -fsS "$base/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
"$LOAD" --base "$base" bench --scenario login --connections "$CONNECTIONS" --duration 10 \
  --server-pid "$server" "${cal[@]}" >"$work/api-login-tuned.json"
"$LOAD" --base "$base" bench --scenario book --connections "$CONNECTIONS" --duration 5 \
  --server-pid "$server" "${cal[@]}" >"$work/api-book-tuned.json" || true
echo "api login (MALLOC_MMAP_THRESHOLD_=131072): $(cat "$work/api-login-tuned.json")"
kill "$server"
wait "$server" 2>/dev/null || true
server=

# ---------------------------------------------------------------------------
# The report.
# ---------------------------------------------------------------------------
pg_book=$(python3 -c "print(max(float('$(cat "$work/book-$POOL.tps")'), float('$(cat "$work/book-$CONNECTIONS.tps")')))")
api_book=$(json "$work/api-book.json" ok_rps)
ratio=$(python3 -c "print(round(100 * $api_book / $pg_book, 1))")
p99_book=$(json "$work/api-book.json" p99_ms)
p99_search=$(json "$work/api-$search.json" p99_ms)
peak_kb=$(json "$work/api-login.json" server_peak_rss_kb)
peak_mb=$(python3 -c "print(round($peak_kb / 1024, 1))")
tuned_mb=$(python3 -c "print(round($(json "$work/api-book-tuned.json" server_peak_rss_kb) / 1024, 1))")
# CPU milliseconds per successful booking: server and PostgreSQL (the rest of the 2 CPUs
# goes to the load generator or pgbench)
per_booking() { # name count
  python3 -c "a = open('$work/$1.cpu0').read().split(); b = open('$work/$1.cpu1').read().split(); n = max($2, 1)
print(f'{1000 * (float(b[0]) - float(a[0])) / n:.2f} | {1000 * (float(b[1]) - float(a[1])) / n:.2f}')"
}
# transactions inside the sampled window (the run minus 2 s at each end), from the rate
pg_txns() { python3 -c "print(int(float('$(cat "$work/$1.tps")') * ($SECONDS_PER_RUN - 4)))"; }

verdict() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo met; else echo "**not met**"; fi; }
row() { # label file
  local f=$1
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(json "$f" requests)" "$(json "$f" rps)" \
    "$(json "$f" p50_ms)" "$(json "$f" p90_ms)" "$(json "$f" p99_ms)" "$(json "$f" max_ms)" "$(json "$f" statuses)"
}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
pgver=$(psql -X -Atc "SHOW server_version" "$server_url/postgres")
durable=$(psql -X -Atc "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')" "$server_url/postgres")
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

{
  cat <<EOF
# Performance

Figures of one \`make bench\` run ($(date -u +%Y-%m-%d), commit \`$commit\`): the database's own rate
for the booking transaction (pgbench) and the API's rate for the same work (\`shms-load\`
over HTTP against \`target/release/shms serve\`), measured back to back on the same machine
and the same generated calendar. The machine is noisy and shared; compare ratios within one
run, not absolute figures across runs.

Machine: $(nproc) CPUs ($cpu), PostgreSQL $pgver, fsync/synchronous_commit
$durable (every commit waits for its WAL flush). The load generator, the server, pgbench and
PostgreSQL all share these CPUs.

## Targets

| target | measured | verdict |
|---|---|---|
| booking through the API ≥ 60 % of the pgbench rate for the same transaction | $api_book ÷ $pg_book = **$ratio %** | $(verdict "$ratio >= 60") |
| p99 under 25 ms at $CONNECTIONS connections (booking / search) | $p99_book ms / $p99_search ms | $(verdict "$p99_book < 25 and $p99_search < 25") |
| server RSS under 100 MB under load (peak, VmHWM) | $peak_mb MB (idle after start: $((rss_idle / 1024)) MB); $tuned_mb MB with \`MALLOC_MMAP_THRESHOLD_=131072\` | $(verdict "$peak_mb < 100") as shipped; $(verdict "$tuned_mb < 100") with the setting |

## The database's limit (pgbench)

Calendar (\`sql/bench/generate.sql\`): 200 doctors × 8 weeks of free 30-minute weekday slots
($slots slots from $first_day), 10,000 patients. Scripts: \`sql/bench/book.sql\` is the
statement the adapter sends for a booking (\`BOOK\` in crates/postgres/src/appointments.rs:
one WITH … INSERT appointments … INSERT payments … statement, atomic by itself), each client booking its
own sequence of slots so that no transaction fails; \`sql/bench/search.sql\` is the free-slot
search by specialty over one weekday (LIMIT 51). Prepared statements (\`-M prepared\`), as
diesel-async uses them; $SECONDS_PER_RUN s each.

| script | clients | transactions/s | latency average (ms) |
|---|---|---|---|
| book.sql | $POOL (= the server's pool) | $(cat "$work/book-$POOL.tps") | $(cat "$work/book-$POOL.lat") |
| book.sql | $CONNECTIONS | $(cat "$work/book-$CONNECTIONS.tps") | $(cat "$work/book-$CONNECTIONS.lat") |
| search.sql | $POOL | $(cat "$work/search-$POOL.tps") | $(cat "$work/search-$POOL.lat") |

The booking limit used for the ratio is the better of the two booking runs: **$pg_book/s**.
$booked_pg appointments were written, and \`shms check\` afterwards: $(cat "$work/check-pg.out").

## The API (shms-load, $CONNECTIONS connections)

\`crates/loadgen\` (\`shms-load\`) keeps one HTTP/1.1 keep-alive connection per virtual user
and logs each user in once before the clock starts, so argon2 runs once per user, not per
request. Booking: each virtual user books its own doctors' slots, as that doctor's patient,
so every request is a booking that succeeds (no 409 noise). Search: \`$search\` for a
random weekday$( [[ $search == search ]] && echo " and specialty (GET /api/v1/slots)" || echo " and doctor (GET /api/v1/doctors/{id}/slots?status=free; GET /api/v1/slots was not served by this build)"). Login: random patients out of 10,000. $SECONDS_PER_RUN s measured after a 2 s warm-up (login: 10 s);
latencies are from the client, including its own queueing.

| scenario | requests | requests/s | p50 ms | p90 ms | p99 ms | max ms | answers by status |
|---|---|---|---|---|---|---|---|
$(row "$work/api-book.json" "POST /appointments")
$(row "$work/api-$search.json" "$search")
$(row "$work/api-login.json" "POST /auth/login")

$booked_api appointments were written through the API, and \`shms check\` afterwards:
$(cat "$work/check-api.out"). Server memory: $((rss_idle / 1024)) MB resident after start,
peak (VmHWM) over the three runs $peak_mb MB.

**Where the CPU goes** (milliseconds of CPU per successful booking, from /proc over the
measured run; the CPUs are shared with the load generator or pgbench):

| run | server | PostgreSQL (all backends) |
|---|---|---|
| pgbench book.sql, $CONNECTIONS clients | – | $(per_booking "book-$CONNECTIONS" "$(pg_txns "book-$CONNECTIONS")" | cut -d'|' -f2) |
| API POST /appointments, $CONNECTIONS connections | $(json "$work/api-book.json" server_cpu_ms_per_ok) | $(json "$work/api-book.json" postgres_cpu_ms_per_ok) |

**Memory.** The server's peak comes from the logins (the booking run logs its 200 patients in
first): each hashing thread (\`SHMS_HASH_CONCURRENCY\`, one per CPU) keeps its 19 MiB of
argon2 working memory for reuse, so logins add at most that many × 19 MiB. Before, hashes
ran on Tokio's blocking pool and freed their memory after each hash, and glibc kept freed
blocks in per-thread arenas once its dynamic mmap threshold had grown past
that size. A second server on the same database with \`MALLOC_MMAP_THRESHOLD_=131072\` (glibc
then mmaps every block of 128 KiB or more and returns it on free) peaked at
$(python3 -c "print(round($(json "$work/api-login-tuned.json" server_peak_rss_kb) / 1024, 1))") MB over a 10 s login run
($(json "$work/api-login-tuned.json" rps) logins/s, p99 $(json "$work/api-login-tuned.json" p99_ms) ms) and $tuned_mb MB after a 5 s booking run on top.

EOF
  cat "$ROOT/docs/performance-notes.md"
  cat <<EOF

## Reproduce

\`\`\`
make bench                               # release build, cluster via scripts/with-db.sh, this file
BENCH_SECONDS=60 make bench              # longer runs
DATABASE_URL=postgres://… make bench     # against another server (needs CREATE DATABASE)
# by hand, on a database loaded with sql/bench/generate.sql:
pgbench -M prepared -n -c 16 -j 2 -T 20 -D clients=16 -D i=0 -D doctors=200 -D patients=10000 \\
  -D slots=$slots -f sql/bench/book.sql \$DATABASE_URL
pgbench -M prepared -n -c 16 -j 2 -T 20 -D days=40 -D first_day=$first_day -f sql/bench/search.sql \$DATABASE_URL
target/release/shms-load --base http://127.0.0.1:8080 bench --scenario book --connections 32 \\
  --duration 20 --first-day $first_day --password '…' --server-pid \$(pgrep -f 'shms serve')
\`\`\`
EOF
} >"$OUT"
echo "--- wrote $OUT"
