-- pgbench: the database work of one booking, statement for statement what
-- crates/postgres/src/appointments.rs `insert_booking` sends inside its transaction:
-- BEGIN; INSERT INTO appointments ... SELECT FROM slots ... FOR UPDATE; INSERT INTO payments ... SELECT
-- FROM doctors; COMMIT. (The adapter binds a v7 uuid made in Rust for the new ids; here
-- gen_random_uuid() makes them.)
--
-- Slots are taken in a sequence private to each client, so no two transactions ever
-- want the same slot and no client aborts on the exclusion constraints:
-- client c books slot c+1, c+1+clients, c+1+2*clients, ... Run with
--   pgbench -M prepared -n -c C -D clients=C -D i=0 -D doctors=200 -D patients=10000 -D slots=128000 -f book.sql
-- Slot n's patient is (n-1) % patients, which never overlaps itself (sql/bench/generate.sql).
\set i :i + 1
\set n :client_id + 1 + :clients * (:i - 1)
\set p (:n - 1) % :patients
\if :n <= :slots
BEGIN;
INSERT INTO "appointments" ("id", "patient_id", "doctor_id", "slot_id", "starts_at", "ends_at", "reason", "booked_by")
SELECT gen_random_uuid(), bench_id('9a710000', :p), "slots"."doctor_id", "slots"."id", "slots"."starts_at", "slots"."ends_at", 'bench', bench_id('9a710000', :p)
  FROM "slots" WHERE "slots"."id" = bench_id('51070000', :n) FOR UPDATE
RETURNING "appointments"."id" AS appointment_id, "appointments"."patient_id", "appointments"."doctor_id", "appointments"."slot_id",
          "appointments"."starts_at", "appointments"."ends_at", "appointments"."reason", "appointments"."status",
          "appointments"."cancel_reason", "appointments"."cancelled_at", "appointments"."created_at" \gset
INSERT INTO "payments" ("id", "appointment_id", "amount_cents", "currency")
SELECT gen_random_uuid(), :appointment_id::uuid, "doctors"."fee_cents", "doctors"."currency"
  FROM "doctors" WHERE "doctors"."user_id" = :doctor_id::uuid
RETURNING "payments"."id", "payments"."appointment_id", "payments"."amount_cents", "payments"."currency",
          "payments"."status", "payments"."refunded_cents", "payments"."paid_at", "payments"."created_at";
COMMIT;
\else
-- the calendar is used up: make the run longer or the calendar bigger (never reached at the
-- default 30 s on this machine)
SELECT 1;
\endif
