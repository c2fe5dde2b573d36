-- SHMS invariant checks (DESIGN §4). Every query returns the rows that violate one
-- invariant, labelled by its first column; a healthy database returns no rows at all.
-- Run by `shms check` and by the tests after concurrent runs.

-- 1. No slot has two active appointments.
SELECT 'slot_double_booked' AS violation, slot_id::text AS subject
  FROM appointments WHERE status <> 'cancelled'
 GROUP BY slot_id HAVING count(*) > 1;

-- 1. No doctor has two active appointments that overlap.
SELECT 'doctor_overlap' AS violation, a.id::text AS subject
  FROM appointments a JOIN appointments b
    ON a.doctor_id = b.doctor_id AND a.id < b.id
   AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
 WHERE a.status <> 'cancelled' AND b.status <> 'cancelled';

-- 2. No patient has two active appointments that overlap.
SELECT 'patient_overlap' AS violation, a.id::text AS subject
  FROM appointments a JOIN appointments b
    ON a.patient_id = b.patient_id AND a.id < b.id
   AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
 WHERE a.status <> 'cancelled' AND b.status <> 'cancelled';

-- 3. A slot is busy exactly when it has an active appointment.
SELECT 'slot_busy_mismatch' AS violation, s.id::text AS subject
  FROM slots s
 WHERE (s.status = 'busy') <> EXISTS (
        SELECT 1 FROM appointments a WHERE a.slot_id = s.id AND a.status <> 'cancelled');

-- 3. An appointment's interval and doctor are its slot's.
SELECT 'appointment_slot_mismatch' AS violation, a.id::text AS subject
  FROM appointments a JOIN slots s ON s.id = a.slot_id
 WHERE a.doctor_id <> s.doctor_id OR a.starts_at <> s.starts_at OR a.ends_at <> s.ends_at;

-- 5. Every appointment has exactly one payment.
SELECT 'appointment_without_payment' AS violation, a.id::text AS subject
  FROM appointments a
 WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.appointment_id = a.id);

-- 5. A cancelled appointment never leaves a payment pending, and a live one never has a
--    cancelled payment.
SELECT 'payment_status_mismatch' AS violation, p.id::text AS subject
  FROM payments p JOIN appointments a ON a.id = p.appointment_id
 WHERE (a.status = 'cancelled' AND p.status = 'pending')
    OR (a.status <> 'cancelled' AND p.status = 'cancelled');

-- 5. Refunds never exceed what was paid.
SELECT 'payment_over_refunded' AS violation, id::text AS subject
  FROM payments WHERE refunded_cents > amount_cents OR refunded_cents < 0;

-- 5. A payment is paid (or refunded from paid) exactly when it has a succeeded attempt.
SELECT 'payment_paid_without_attempt' AS violation, p.id::text AS subject
  FROM payments p
 WHERE (p.status IN ('paid', 'partially_refunded', 'refunded')) <> EXISTS (
        SELECT 1 FROM payment_attempts t WHERE t.payment_id = p.id AND t.status = 'succeeded');

-- 5. refunded_cents is the sum of the refunds.
SELECT 'payment_refund_sum_mismatch' AS violation, p.id::text AS subject
  FROM payments p
 WHERE p.refunded_cents <> (SELECT coalesce(sum(r.amount_cents), 0) FROM refunds r WHERE r.payment_id = p.id);

-- 5. Status agrees with the amounts.
SELECT 'payment_status_amount_mismatch' AS violation, id::text AS subject
  FROM payments
 WHERE NOT ((status IN ('pending', 'paid', 'cancelled') AND refunded_cents = 0)
         OR (status = 'partially_refunded' AND refunded_cents > 0 AND refunded_cents < amount_cents)
         OR (status = 'refunded' AND refunded_cents = amount_cents));

-- 5. A cancelled appointment keeps no money: its payment is cancelled or fully refunded.
SELECT 'cancelled_appointment_keeps_money' AS violation, a.id::text AS subject
  FROM appointments a JOIN payments p ON p.appointment_id = a.id
 WHERE a.status = 'cancelled' AND p.status NOT IN ('cancelled', 'refunded');

-- 5. Attempts and refunds carry the payment's currency; attempts its amount.
SELECT 'ledger_amount_mismatch' AS violation, t.id::text AS subject
  FROM payment_attempts t JOIN payments p ON p.id = t.payment_id
 WHERE t.currency <> p.currency OR t.amount_cents <> p.amount_cents
UNION ALL
SELECT 'ledger_amount_mismatch', r.id::text
  FROM refunds r JOIN payments p ON p.id = r.payment_id
 WHERE r.currency <> p.currency;
-- 7. Every clinical row has the audit event of its creation (written by trigger in the
--    same transaction), naming the row's patient.
SELECT 'clinical_row_without_audit' AS violation, c.resource_type || ' ' || c.id::text AS subject
  FROM (SELECT 'encounter' AS resource_type, id, patient_id FROM encounters
        UNION ALL SELECT 'encounter_amendment', id, patient_id FROM encounter_amendments
        UNION ALL SELECT 'diagnosis', id, patient_id FROM diagnoses
        UNION ALL SELECT 'prescription', id, patient_id FROM prescriptions
        UNION ALL SELECT 'vital_sign', id, patient_id FROM vital_signs
        UNION ALL SELECT 'allergy', id, patient_id FROM allergies) c
 WHERE NOT EXISTS (
        SELECT 1 FROM audit_events e
         WHERE e.action = 'create' AND e.resource_type = c.resource_type
           AND e.resource_id = c.id AND e.patient_id = c.patient_id);

-- 7. No creation event points at a row that does not exist, and no row has two.
SELECT 'audit_event_without_row' AS violation, e.id::text AS subject
  FROM audit_events e
 WHERE e.action = 'create'
   AND NOT EXISTS (SELECT 1 FROM encounters x WHERE x.id = e.resource_id)
   AND NOT EXISTS (SELECT 1 FROM encounter_amendments x WHERE x.id = e.resource_id)
   AND NOT EXISTS (SELECT 1 FROM diagnoses x WHERE x.id = e.resource_id)
   AND NOT EXISTS (SELECT 1 FROM prescriptions x WHERE x.id = e.resource_id)
   AND NOT EXISTS (SELECT 1 FROM vital_signs x WHERE x.id = e.resource_id)
   AND NOT EXISTS (SELECT 1 FROM allergies x WHERE x.id = e.resource_id);

SELECT 'clinical_row_audited_twice' AS violation, resource_id::text AS subject
  FROM audit_events WHERE action = 'create'
 GROUP BY resource_id HAVING count(*) > 1;

-- 7. An encounter was written by its appointment's doctor for a visit that took place.
SELECT 'encounter_appointment_mismatch' AS violation, e.id::text AS subject
  FROM encounters e JOIN appointments a ON a.id = e.appointment_id
 WHERE a.patient_id <> e.patient_id OR a.doctor_id <> e.doctor_id
    OR a.status NOT IN ('checked-in', 'fulfilled', 'cancelled');

-- 7. Every break-glass read (an administrator's) states its reason.
SELECT 'break_glass_without_reason' AS violation, id::text AS subject
  FROM audit_events
 WHERE action = 'read' AND actor_role = 'admin' AND (reason IS NULL OR btrim(reason) = '');

-- Accounts (migration 000004). Once there are administrators, one of them is active.
SELECT 'no_active_admin' AS violation, 'users' AS subject
 WHERE EXISTS (SELECT 1 FROM users WHERE role = 'admin')
   AND NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled);


-- Scheduling (migration 000006). Only a free slot carries a hold, and a hold names both its
-- patient and its expiry.
SELECT 'hold_on_unfree_slot' AS violation, id::text AS subject
  FROM slots WHERE status <> 'free' AND (held_by IS NOT NULL OR held_until IS NOT NULL);

SELECT 'hold_incomplete' AS violation, id::text AS subject
  FROM slots WHERE (held_by IS NULL) <> (held_until IS NULL);

-- A booked appointment was taken by its holder or after the hold lapsed: no active
-- appointment sits on a slot held (still) by somebody else.
SELECT 'booked_over_anothers_hold' AS violation, a.id::text AS subject
  FROM appointments a JOIN slots s ON s.id = a.slot_id
 WHERE a.status <> 'cancelled' AND s.held_until > now() AND s.held_by <> a.patient_id;

-- Every waitlist offer points at a slot of the entry's doctor inside its range, and was
-- announced to the patient in the outbox.
SELECT 'waitlist_offer_mismatch' AS violation, w.id::text AS subject
  FROM waitlist_entries w JOIN slots s ON s.id = w.offered_slot_id
 WHERE s.doctor_id <> w.doctor_id OR s.starts_at < w.from_at OR s.ends_at > w.to_at;

SELECT 'waitlist_offer_not_notified' AS violation, w.id::text AS subject
  FROM waitlist_entries w
 WHERE w.status = 'offered'
   AND NOT EXISTS (SELECT 1 FROM notifications n
                    WHERE n.user_id = w.patient_id AND n.kind = 'waitlist_offer'
                      AND n.payload ->> 'waitlist_entry_id' = w.id::text);

-- A slot is offered to one waiting patient at a time.
SELECT 'slot_offered_twice' AS violation, offered_slot_id::text AS subject
  FROM waitlist_entries w
 WHERE status = 'offered'
   AND offered_at = (SELECT max(offered_at) FROM waitlist_entries x WHERE x.offered_slot_id = w.offered_slot_id)
 GROUP BY offered_slot_id, offered_at HAVING count(*) > 1;
-- Time off (migration 000005): no free slot overlaps a doctor's time off, and no booked or
-- checked-in appointment does (time off refuses them or cancels them in its transaction).
SELECT 'free_slot_in_time_off' AS violation, s.id::text AS subject
  FROM slots s JOIN time_off t
    ON t.doctor_id = s.doctor_id
   AND tstzrange(t.starts_at, t.ends_at) && tstzrange(s.starts_at, s.ends_at)
 WHERE s.status = 'free';

SELECT 'appointment_in_time_off' AS violation, a.id::text AS subject
  FROM appointments a JOIN time_off t
    ON t.doctor_id = a.doctor_id
   AND tstzrange(t.starts_at, t.ends_at) && tstzrange(a.starts_at, a.ends_at)
 WHERE a.status IN ('booked', 'checked-in');

-- Availability: every future free generated slot that was never booked starts, in its
-- doctor's zone, on a weekday and wall-clock time inside one of the doctor's current rules
-- (replacing the rules deletes the others).
SELECT 'generated_slot_outside_rules' AS violation, s.id::text AS subject
  FROM slots s JOIN availability v ON v.doctor_id = s.doctor_id
 WHERE s.source = 'generated' AND s.status = 'free' AND s.starts_at > now()
   AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = s.id)
   AND NOT EXISTS (
        SELECT 1 FROM availability_rules r
         WHERE r.doctor_id = s.doctor_id
           AND r.weekday = extract(isodow FROM s.starts_at AT TIME ZONE v.time_zone)
           AND (s.starts_at AT TIME ZONE v.time_zone)::time >= r.starts
           AND (s.starts_at AT TIME ZONE v.time_zone)::time < r.ends);

-- Generated slots of a doctor without a schedule cannot exist unless they were booked or
-- blocked before (the schedule row is never deleted).
SELECT 'generated_slot_without_schedule' AS violation, s.id::text AS subject
  FROM slots s
 WHERE s.source = 'generated'
   AND NOT EXISTS (SELECT 1 FROM availability v WHERE v.doctor_id = s.doctor_id);
