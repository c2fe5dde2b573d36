-- pgbench: the free-slot search of GET /api/v1/slots?specialty=&from=&to=&limit=50 (one page,
-- 51 rows fetched to know whether there is a next page), for a random specialty and a random
-- weekday of the generated calendar. The statement is the one crates/postgres/src/slots.rs
-- `search` sends for a specialty, a from and a to, predicate for predicate (diesel writes
-- now() as CURRENT_TIMESTAMP, the same function); the adapter binds 'free', true and the
-- limit as parameters where this script has literals. Slots held by another patient
-- (held_until in the future) are skipped. The plan is in docs/scheduling.md.
-- Run with -D days=40 -D first_day=YYYY-MM-DD (the first Monday of the calendar).
\set spec random(0, 9)
\set day random(0, :days - 1)
SELECT s.id, s.doctor_id, s.starts_at, s.ends_at, s.status, s.held_by, s.held_until
  FROM slots s JOIN doctors d ON s.doctor_id = d.user_id
 WHERE s.status = 'free'
   AND s.starts_at >= :first_day::date + (:day / 5) * 7 + :day % 5
   AND s.starts_at > CURRENT_TIMESTAMP
   AND (s.held_until IS NULL OR s.held_until <= CURRENT_TIMESTAMP)
   AND d.active = true
   AND lower(d.specialty) = lower('specialty' || :spec)
   AND s.starts_at < :first_day::date + (:day / 5) * 7 + :day % 5 + 1
 ORDER BY s.starts_at, s.id
 LIMIT 51;
