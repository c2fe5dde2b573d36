-- Scheduling: holds, rescheduling, the waitlist and its notifications outbox.
--
-- Holds live on the slot itself (held_by, held_until) rather than in a table of their own:
-- holding and booking both lock the one slot row, so "a concurrent booking and hold on one
-- slot never both win" follows from the row lock, and a slot can never carry two holds.
-- A hold is active while held_until > now(); an expired hold is simply ignored, so it lapses
-- without any background job. The periodic sweep (offer_lapsed_holds) only tidies the
-- columns and offers the slot to the waitlist; correctness never waits for it.
--
-- Errors raised by triggers carry SQLSTATE P0001 and a stable CONSTRAINT name.

ALTER TABLE slots
    ADD COLUMN held_by    uuid REFERENCES patients (user_id),
    ADD COLUMN held_until timestamptz,
    ADD CONSTRAINT slots_hold_complete CHECK ((held_by IS NULL) = (held_until IS NULL));

-- The cross-doctor search walks free slots in time order (see docs/performance.md).
CREATE INDEX slots_free_search_idx ON slots (starts_at, id) INCLUDE (doctor_id, held_until)
    WHERE status = 'free';
DROP INDEX slots_free_starts_idx;

-- A slot that stops being free loses its hold: booking consumes it, blocking voids it.
CREATE FUNCTION slots_drop_hold_when_taken() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'free' THEN
        NEW.held_by := NULL;
        NEW.held_until := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slots_drop_hold_when_taken BEFORE INSERT OR UPDATE ON slots
    FOR EACH ROW EXECUTE FUNCTION slots_drop_hold_when_taken();

-- Taking a slot (booking or rescheduling into it): blocked or started slots and slots held
-- by another patient are refused. The slot row lock serialises this against a concurrent
-- hold. The booking relies on these checks instead of reading the slot first (one round
-- trip less per booking).
CREATE FUNCTION occupy_slot(slot uuid, patient uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    current slots%ROWTYPE;
BEGIN
    SELECT * INTO current FROM slots WHERE id = slot FOR UPDATE;
    IF current.status = 'busy-unavailable' THEN
        RAISE EXCEPTION 'slot % is not available for booking', slot
            USING ERRCODE = 'P0001', CONSTRAINT = 'slots_unavailable';
    END IF;
    IF current.starts_at <= now() THEN
        RAISE EXCEPTION 'slot % has already started', slot
            USING ERRCODE = 'P0001', CONSTRAINT = 'slots_started';
    END IF;
    IF current.held_until > now() AND current.held_by <> patient THEN
        RAISE EXCEPTION 'slot % is held by another patient until %', slot, current.held_until
            USING ERRCODE = 'P0001', CONSTRAINT = 'slots_held';
    END IF;
    UPDATE slots SET status = 'busy' WHERE id = slot AND status <> 'busy';
END $$;

-- Replaces the core migration's version: the same rule plus holds.
CREATE OR REPLACE FUNCTION appointments_occupy_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM occupy_slot(NEW.slot_id, NEW.patient_id);
    RETURN NULL;
END $$;

-- Rescheduling moves a booked appointment to another slot of the same doctor in place
-- (same id, same payment): the new slot is taken, the old one freed, in one statement.
CREATE FUNCTION appointments_move_slot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'booked' OR NEW.status <> 'booked' THEN
        RAISE EXCEPTION 'only a booked appointment can be rescheduled (appointment % is %)', OLD.id, OLD.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'appointments_status_transition';
    END IF;
    PERFORM occupy_slot(NEW.slot_id, NEW.patient_id);
    UPDATE slots SET status = 'free'
     WHERE id = OLD.slot_id AND status = 'busy'
       AND NOT EXISTS (SELECT 1 FROM appointments a
                        WHERE a.slot_id = OLD.slot_id AND a.status <> 'cancelled');
    RETURN NULL;
END $$;
CREATE TRIGGER appointments_move_slot AFTER UPDATE OF slot_id ON appointments
    FOR EACH ROW WHEN (NEW.slot_id <> OLD.slot_id)
    EXECUTE FUNCTION appointments_move_slot();

CREATE TABLE waitlist_entries (
    id              uuid PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients (user_id),
    doctor_id       uuid NOT NULL REFERENCES doctors (user_id),
    from_at         timestamptz NOT NULL,
    to_at           timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'waiting'
                    CONSTRAINT waitlist_entries_status_valid CHECK (status IN ('waiting', 'offered')),
    -- a schedule change may delete a free slot even while it is held or offered (the
    -- doctor's calendar wins over a checkout); the offer then names no slot any more
    offered_slot_id uuid REFERENCES slots (id) ON DELETE SET NULL,
    offered_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT waitlist_entries_range_valid CHECK (to_at > from_at AND to_at - from_at <= interval '400 days'),
    CONSTRAINT waitlist_entries_offer_recorded CHECK ((status = 'offered') = (offered_at IS NOT NULL)),
    CONSTRAINT waitlist_entries_slot_when_offered CHECK (offered_slot_id IS NULL OR status = 'offered')
);
-- the offer picks the longest-waiting entry of the slot's doctor
CREATE INDEX waitlist_entries_waiting_idx ON waitlist_entries (doctor_id, created_at, id)
    WHERE status = 'waiting';
CREATE INDEX waitlist_entries_patient_idx ON waitlist_entries (patient_id, created_at);

-- An entry is offered once; it never goes back to waiting or changes whose it is. The one
-- change allowed after the offer: its slot was deleted (ON DELETE SET NULL).
CREATE FUNCTION waitlist_entries_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'offered' AND NEW.offered_slot_id IS NULL
       AND (NEW.status, NEW.offered_at, NEW.patient_id, NEW.doctor_id, NEW.from_at, NEW.to_at)
           = (OLD.status, OLD.offered_at, OLD.patient_id, OLD.doctor_id, OLD.from_at, OLD.to_at) THEN
        RETURN NEW;
    END IF;
    IF NEW.patient_id <> OLD.patient_id OR NEW.doctor_id <> OLD.doctor_id
       OR NEW.from_at <> OLD.from_at OR NEW.to_at <> OLD.to_at OR OLD.status <> 'waiting' THEN
        RAISE EXCEPTION 'waitlist entry % cannot change once offered', OLD.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'waitlist_entries_status_transition';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER waitlist_entries_guard_update BEFORE UPDATE ON waitlist_entries
    FOR EACH ROW EXECUTE FUNCTION waitlist_entries_guard_update();

-- The outbox: a message to a user written by the transaction that caused it. A delivery
-- worker (none yet) would mark delivered_at; the rows themselves are never deleted.
CREATE TABLE notifications (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id),
    kind         text NOT NULL CONSTRAINT notifications_kind_valid CHECK (kind IN ('waitlist_offer')),
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
CREATE TRIGGER notifications_refuse_delete BEFORE DELETE ON notifications
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();

-- How long a waitlist offer holds its slot for the patient.
CREATE FUNCTION waitlist_offer_hold() RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT interval '30 minutes'
$$;

-- Offers a free, unheld, future slot to the longest-waiting patient whose range covers it
-- and who has no active appointment at that time: the entry turns offered, the slot is
-- held for them, and the offer is written to the outbox. Returns whether it offered.
CREATE FUNCTION waitlist_offer(slot uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    current slots%ROWTYPE;
    entry waitlist_entries%ROWTYPE;
    expires timestamptz := now() + waitlist_offer_hold();
BEGIN
    SELECT * INTO current FROM slots WHERE id = slot FOR UPDATE;
    IF NOT FOUND OR current.status <> 'free' OR current.held_until > now()
       OR current.starts_at <= now() THEN
        RETURN false;
    END IF;
    SELECT w.* INTO entry FROM waitlist_entries w
     WHERE w.doctor_id = current.doctor_id AND w.status = 'waiting'
       AND w.from_at <= current.starts_at AND current.ends_at <= w.to_at
       AND NOT EXISTS (SELECT 1 FROM appointments a
                        WHERE a.patient_id = w.patient_id AND a.status <> 'cancelled'
                          AND tstzrange(a.starts_at, a.ends_at) && tstzrange(current.starts_at, current.ends_at))
     ORDER BY w.created_at, w.id
     LIMIT 1
     FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE slots SET held_by = entry.patient_id, held_until = expires WHERE id = slot;
    UPDATE waitlist_entries SET status = 'offered', offered_slot_id = slot, offered_at = now()
     WHERE id = entry.id;
    INSERT INTO notifications (user_id, kind, payload)
    VALUES (entry.patient_id, 'waitlist_offer', jsonb_build_object(
        'waitlist_entry_id', entry.id,
        'slot_id', slot,
        'doctor_id', current.doctor_id,
        'starts_at', current.starts_at,
        'ends_at', current.ends_at,
        'hold_expires_at', expires));
    RETURN true;
END $$;

-- A slot that becomes free (cancellation, reschedule) is offered when the transaction
-- commits, so a slot freed and blocked again in one transaction (time off with
-- cancel_conflicts) is not offered, and the offer sees the final state.
CREATE FUNCTION slots_offer_when_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM waitlist_offer(NEW.id);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slots_offer_when_freed AFTER UPDATE OF status ON slots
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status <> 'free' AND NEW.status = 'free')
    EXECUTE FUNCTION slots_offer_when_freed();

-- The sweep: clears lapsed holds and offers those slots to the waitlist. Safe to run
-- concurrently (SKIP LOCKED) and at any interval; returns how many offers it made.
CREATE FUNCTION offer_lapsed_holds() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    lapsed uuid;
    offered integer := 0;
BEGIN
    FOR lapsed IN
        SELECT id FROM slots
         WHERE held_until <= now() AND status = 'free'
         ORDER BY starts_at
         FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE slots SET held_by = NULL, held_until = NULL WHERE id = lapsed;
        IF waitlist_offer(lapsed) THEN
            offered := offered + 1;
        END IF;
    END LOOP;
    RETURN offered;
END $$;
