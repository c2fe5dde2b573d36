#!/usr/bin/env bash
# fuzz.sh — property-based fuzzing of the HTTP API with schemathesis, driven by the served
# OpenAPI document, once per role (admin, doctor, patient). Fails on any 5xx, any response
# that breaks its documented schema, status code or content type.
#
# Run through `make fuzz` (which provides DATABASE_URL via with-db.sh).
# FUZZ_EXAMPLES (default 25) bounds the generated cases per operation and role.
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SHMS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/shms}
EXAMPLES=${FUZZ_EXAMPLES:-25}
VENV=$ROOT/.fuzz-venv
PASSWORD='Tall-Orange-Kettle-42!'

: "${DATABASE_URL:?run through make fuzz, or set DATABASE_URL}"

# schemathesis lives in a project-local virtualenv (PyPI is reachable from CI machines)
if [[ ! -x $VENV/bin/schemathesis ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi

# a fresh database, so every run starts from the same empty clinic
server_url=${DATABASE_URL%/*}
fuzz_db=shms_fuzz
psql "$server_url/postgres" -qc "DROP DATABASE IF EXISTS $fuzz_db WITH (FORCE)" -c "CREATE DATABASE $fuzz_db"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
log=$(mktemp -t shms-fuzz-XXXXXX.log)
DATABASE_URL=$server_url/$fuzz_db SHMS_BIND=127.0.0.1:$port \
  SHMS_ADMIN_EMAIL=admin@fuzz.test SHMS_ADMIN_PASSWORD=$PASSWORD \
  SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE=1000000 SHMS_LOGIN_PER_ADDRESS_PER_MINUTE=1000000 \
  RUST_LOG=error "$BIN" serve >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  curl -fsS "$base/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/health/ready" >/dev/null || { cat "$log" >&2; exit 1; }

post() { curl -fsS -X POST "$base/api/v1$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }
token() { post /auth/login "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'; }

admin=$(token admin@fuzz.test)
post /doctors '{"email":"doctor@fuzz.test","password":"'"$PASSWORD"'","full_name":"Fuzz Doctor","specialty":"General Practice","license_number":"FUZZ-1","consultation_fee":{"amount_cents":5000,"currency":"EUR"}}' "$admin" >/dev/null
post /auth/register '{"email":"patient@fuzz.test","password":"'"$PASSWORD"'","full_name":"Fuzz Patient","date_of_birth":"1990-04-01","sex":"female"}' >/dev/null

status=0
for role in admin doctor patient; do
  case $role in
    admin) bearer=$admin ;;
    *) bearer=$(token "$role@fuzz.test") ;;
  esac
  echo "--- schemathesis as $role ($EXAMPLES examples per operation)"
  # logout would revoke the token the run depends on. One worker: with two, hypothesis
  # describes strategies by parsing source from two threads at once, which CPython 3.11's
  # AST constructor does not survive ("AST constructor recursion depth mismatch", a tool
  # error that failed a CI run with no finding against the server)
  "$VENV/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    -H "Authorization: Bearer $bearer" --exclude-path /api/v1/auth/logout \
    --max-examples "$EXAMPLES" --workers 1 --no-color || status=1
done
DATABASE_URL=$server_url/$fuzz_db "$BIN" check || status=1
exit $status
