-- pgbench: the free-slot search of GET /api/v1/slots?specialty=&from=&to=&limit=50 (one page,
-- 51 rows fetched to know whether there is a next page), for a random specialty and a random
-- weekday of the generated calendar.
-- NOTE: the API also skips slots held by another patient
--   (AND (s.held_until IS NULL OR s.held_until <= now())); slots.held_until arrives with the
--   holds migration on main, add the condition here when it lands.
-- Run with -D days=40 -D first_day=YYYY-MM-DD (the first Monday of the calendar).
\set spec random(0, 9)
\set day random(0, :days - 1)
SELECT s.id, s.doctor_id, s.starts_at, s.ends_at, s.status
  FROM slots s JOIN doctors d ON d.user_id = s.doctor_id
 WHERE s.status = 'free'
   AND d.specialty = 'specialty' || :spec
   AND s.starts_at >= :first_day::date + (:day / 5) * 7 + :day % 5
   AND s.starts_at < :first_day::date + (:day / 5) * 7 + :day % 5 + 1
 ORDER BY s.starts_at, s.id
 LIMIT 51;
