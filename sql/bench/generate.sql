-- Benchmark calendar: :doctors doctors (default 200) with :weeks weeks (default 8) of free
-- 30-minute slots on weekdays 09:00-17:00 UTC starting next Monday, and :patients patients
-- (default 10,000). Every row has a deterministic id so that pgbench scripts and the load
-- generator (crates/loadgen, calendar.rs) address rows by number without a lookup; the
-- number sits in the last 12 hex digits behind a prefix per kind:
--   doctor d   (0-based)  user id d0c70000-0000-4000-8000-<d>, e-mail doctor<d>@bench.shms.test
--   patient p  (0-based)  user id 9a710000-0000-4000-8000-<p>, e-mail patient<p>@bench.shms.test
--   slot n     (1-based)  id      51070000-0000-4000-8000-<n>, n = t * :doctors + d + 1,
--                         t = 0 .. weeks*5*16-1 the slot's position in time (16 per day).
-- So all slots with the same t start at the same instant, one per doctor; booking slot n as
-- patient (n - 1) % :patients never puts one patient in two overlapping appointments (the
-- :doctors slots of one instant map to distinct patients as long as :doctors <= :patients).
-- Doctor d's specialty is specialty<d % 10>.
--
-- Usage: psql -v pwhash="$PHC" [-v doctors=200 -v weeks=8 -v patients=10000] -f generate.sql
-- pwhash is an argon2id PHC string: every generated account gets that password.
\set ON_ERROR_STOP on
\if :{?doctors} \else \set doctors 200 \endif
\if :{?weeks} \else \set weeks 8 \endif
\if :{?patients} \else \set patients 10000 \endif

BEGIN;
-- the deterministic id of row number n of a kind (see above)
CREATE OR REPLACE FUNCTION bench_id(prefix text, n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$ SELECT (prefix || '-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid $$;
-- the monday after today, UTC: every slot lies in the future while the benchmark runs
CREATE TEMP TABLE bench_params ON COMMIT DROP AS
SELECT date_trunc('week', now() AT TIME ZONE 'UTC')::date + 7 AS first_monday,
       :doctors::int AS doctors, :weeks::int AS weeks, :patients::int AS patients;

INSERT INTO users (id, email, password_hash, role, full_name)
SELECT bench_id('d0c70000', d), 'doctor' || d || '@bench.shms.test', :'pwhash', 'doctor',
       'Bench Doctor ' || d
  FROM bench_params, generate_series(0, doctors - 1) AS d;
INSERT INTO doctors (user_id, specialty, license_number, fee_cents, currency)
SELECT bench_id('d0c70000', d), 'specialty' || (d % 10), 'BENCH-' || d, 5000 + (d % 5) * 1000, 'EUR'
  FROM bench_params, generate_series(0, doctors - 1) AS d;

INSERT INTO users (id, email, password_hash, role, full_name)
SELECT bench_id('9a710000', p), 'patient' || p || '@bench.shms.test', :'pwhash', 'patient',
       'Bench Patient ' || p
  FROM bench_params, generate_series(0, patients - 1) AS p;
INSERT INTO patients (user_id, date_of_birth, sex)
SELECT bench_id('9a710000', p), DATE '1950-01-01' + (p % 20000), (ARRAY['female', 'male', 'other'])[p % 3 + 1]
  FROM bench_params, generate_series(0, patients - 1) AS p;

-- t = day * 16 + k: day 0 .. weeks*5-1 counts weekdays, k the half hour from 09:00
INSERT INTO slots (id, doctor_id, starts_at, ends_at)
SELECT bench_id('51070000', t * doctors + d + 1), bench_id('d0c70000', d), at, at + interval '30 minutes'
  FROM bench_params,
       generate_series(0, weeks * 5 * 16 - 1) AS t,
       generate_series(0, doctors - 1) AS d,
       LATERAL (SELECT (first_monday + ((t / 16) / 5) * 7 + (t / 16) % 5)::timestamp AT TIME ZONE 'UTC'
                       + interval '9 hours' + (t % 16) * interval '30 minutes' AS at) AS s;
COMMIT;

ANALYZE users;
ANALYZE doctors;
ANALYZE patients;
ANALYZE slots;
SELECT (SELECT count(*) FROM doctors) AS doctors, (SELECT count(*) FROM patients) AS patients,
       (SELECT count(*) FROM slots) AS slots, (SELECT min(starts_at) FROM slots) AS first_slot,
       (SELECT max(starts_at) FROM slots) AS last_slot;
