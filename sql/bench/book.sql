-- pgbench: the database work of one booking, exactly what
-- crates/postgres/src/appointments.rs sends: the one statement `BOOK` (lock the slot,
-- insert the appointment and its payment; atomic on its own, no BEGIN/COMMIT). (The adapter
-- binds a v7 uuid made in Rust for the new ids; here gen_random_uuid() makes them.)
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
WITH slot AS (
    SELECT id, doctor_id, starts_at, ends_at FROM slots WHERE id = bench_id('51070000', :n) FOR UPDATE
), appointment AS (
    INSERT INTO appointments (id, patient_id, doctor_id, slot_id, starts_at, ends_at, reason, booked_by)
    SELECT gen_random_uuid(), bench_id('9a710000', :p), slot.doctor_id, slot.id, slot.starts_at, slot.ends_at, 'bench', bench_id('9a710000', :p) FROM slot
    RETURNING id, patient_id, doctor_id, slot_id, starts_at, ends_at, reason, status,
              cancel_reason, cancelled_at, created_at
), payment AS (
    INSERT INTO payments (id, appointment_id, amount_cents, currency)
    SELECT gen_random_uuid(), appointment.id, d.fee_cents, d.currency
      FROM appointment JOIN doctors d ON d.user_id = appointment.doctor_id
    RETURNING id, appointment_id, amount_cents, currency, status, refunded_cents, paid_at,
              created_at
)
SELECT a.id, a.patient_id, a.doctor_id, a.slot_id, a.starts_at, a.ends_at, a.reason,
       a.status, a.cancel_reason, a.cancelled_at, a.created_at,
       p.id AS payment_id, p.amount_cents, p.currency, p.status AS payment_status,
       p.refunded_cents, p.paid_at, p.created_at AS payment_created_at
  FROM appointment a JOIN payment p ON p.appointment_id = a.id;
\else
-- the calendar is used up: make the run longer or the calendar bigger (never reached at the
-- default 30 s on this machine)
SELECT 1;
\endif
