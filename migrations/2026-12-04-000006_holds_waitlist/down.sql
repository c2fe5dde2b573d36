DROP FUNCTION offer_lapsed_holds();
DROP TRIGGER slots_offer_when_freed ON slots;
DROP FUNCTION slots_offer_when_freed();
DROP FUNCTION waitlist_offer(uuid);
DROP FUNCTION waitlist_offer_hold();
DROP TABLE notifications;
DROP TABLE waitlist_entries;
DROP FUNCTION waitlist_entries_guard_update();
DROP TRIGGER appointments_move_slot ON appointments;
DROP FUNCTION appointments_move_slot();
CREATE OR REPLACE FUNCTION appointments_occupy_slot() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_status text;
BEGIN
    SELECT status INTO current_status FROM slots WHERE id = NEW.slot_id FOR UPDATE;
    IF current_status = 'busy-unavailable' THEN
        RAISE EXCEPTION 'slot % is not available for booking', NEW.slot_id
            USING ERRCODE = 'P0001', CONSTRAINT = 'slots_unavailable';
    END IF;
    UPDATE slots SET status = 'busy' WHERE id = NEW.slot_id AND status <> 'busy';
    RETURN NULL;
END $$;
DROP FUNCTION occupy_slot(uuid, uuid);
DROP TRIGGER slots_drop_hold_when_taken ON slots;
DROP FUNCTION slots_drop_hold_when_taken();
CREATE INDEX slots_free_starts_idx ON slots (starts_at) WHERE status = 'free';
DROP INDEX slots_free_search_idx;
ALTER TABLE slots DROP COLUMN held_until, DROP COLUMN held_by;
