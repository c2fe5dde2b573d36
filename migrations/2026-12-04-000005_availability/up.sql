-- Weekly availability and time off (issue 5, points 1 and 2).
--
-- * `availability` holds one doctor's weekly schedule (IANA time zone, slot length, buffer,
--   effective dates, horizon) and `availability_rules` its weekly intervals, in local wall
--   clock time. The slots are generated from them by the application (shms-domain
--   `availability::generate`), which knows the time-zone rules; the database keeps what
--   was generated apart by `slots.source`.
-- * `slots.source` is 'manual' (POST /doctors/{id}/slots, the default) or 'generated'.
--   Regenerating deletes only future generated slots that are free and have never had an
--   appointment; booked, blocked and manual slots are never touched.
-- * `time_off` records a doctor's absences. Invariant: no free slot overlaps a time-off
--   range. The time-off transaction blocks the free slots it overlaps; the BEFORE INSERT
--   trigger below blocks a slot created later inside one (manual or generated).
-- * `time_off_cancellations` is the audit trail of the override: which appointments an
--   administrator cancelled (and how much was refunded) to take time off. It is a table of
--   its own, not an `account_events` action: it records appointments, not accounts, and
--   needs no change to the CHECK of migration 000004. With the time-off row (created_by,
--   cancel_conflicts, reason) and the appointments' own cancelled_by/cancel_reason it says
--   who overrode what, when and why. Both tables are append-only (refuse_change, 000003).
--
-- Serialization: every write that changes a doctor's generated slots or time off (PUT
-- availability, the hourly extension, time off) and every slot insert take the
-- transaction-scoped advisory lock availability_lock(doctor) first, so two regenerations
-- never interleave and a slot cannot be created free inside a time off being committed.
-- Lock order inside a time-off transaction: advisory lock -> slots -> appointments -> payments.

CREATE FUNCTION availability_lock(doctor uuid) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('shms.availability:' || doctor::text, 0))
$$;

CREATE TABLE availability (
    doctor_id      uuid PRIMARY KEY REFERENCES doctors (user_id),
    time_zone      text NOT NULL CONSTRAINT availability_time_zone_length CHECK (length(time_zone) BETWEEN 1 AND 64),
    slot_minutes   integer NOT NULL CONSTRAINT availability_slot_minutes_range CHECK (slot_minutes BETWEEN 5 AND 480),
    buffer_minutes integer NOT NULL CONSTRAINT availability_buffer_minutes_range CHECK (buffer_minutes BETWEEN 0 AND 480),
    effective_from  date NOT NULL,
    effective_until date,
    horizon_days   integer NOT NULL CONSTRAINT availability_horizon_days_range CHECK (horizon_days BETWEEN 1 AND 400),
    -- bumped by every PUT: the hourly extension only adds slots for the revision it read
    revision       bigint NOT NULL DEFAULT 1,
    updated_by     uuid NOT NULL REFERENCES users (id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT availability_effective_range CHECK (effective_until IS NULL OR effective_until >= effective_from)
);

-- a range of local wall-clock times, so that one weekday's rules cannot overlap
CREATE TYPE timerange AS RANGE (subtype = time);

CREATE TABLE availability_rules (
    doctor_id uuid NOT NULL REFERENCES availability (doctor_id) ON DELETE CASCADE,
    -- ISO 8601: 1 = Monday … 7 = Sunday
    weekday   smallint NOT NULL CONSTRAINT availability_rules_weekday_valid CHECK (weekday BETWEEN 1 AND 7),
    starts    time NOT NULL,
    ends      time NOT NULL,
    PRIMARY KEY (doctor_id, weekday, starts),
    CONSTRAINT availability_rules_interval_valid CHECK (ends > starts),
    CONSTRAINT availability_rules_no_overlap
        EXCLUDE USING gist (doctor_id WITH =, weekday WITH =, timerange(starts, ends) WITH &&)
);

ALTER TABLE slots ADD COLUMN source text NOT NULL DEFAULT 'manual'
    CONSTRAINT slots_source_valid CHECK (source IN ('manual', 'generated'));
-- regeneration finds the doctor's generated slots by start
CREATE INDEX slots_generated_idx ON slots (doctor_id, starts_at) WHERE source = 'generated';

CREATE TABLE time_off (
    id               uuid PRIMARY KEY,
    doctor_id        uuid NOT NULL REFERENCES doctors (user_id),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    reason           text NOT NULL CONSTRAINT time_off_reason_length CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
    -- whether conflicting appointments were cancelled (an administrator's override)
    cancel_conflicts boolean NOT NULL DEFAULT false,
    created_by       uuid NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_off_interval_valid CHECK (ends_at > starts_at)
);
CREATE INDEX time_off_doctor_range_idx ON time_off USING gist (doctor_id, tstzrange(starts_at, ends_at));

CREATE TABLE time_off_cancellations (
    time_off_id    uuid NOT NULL REFERENCES time_off (id),
    appointment_id uuid NOT NULL CONSTRAINT time_off_cancellations_appointment_key UNIQUE REFERENCES appointments (id),
    refunded_cents bigint NOT NULL CONSTRAINT time_off_cancellations_refund_nonnegative CHECK (refunded_cents >= 0),
    PRIMARY KEY (time_off_id, appointment_id)
);

CREATE TRIGGER time_off_append_only BEFORE UPDATE OR DELETE ON time_off
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER time_off_no_truncate BEFORE TRUNCATE ON time_off
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER time_off_cancellations_append_only BEFORE UPDATE OR DELETE ON time_off_cancellations
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER time_off_cancellations_no_truncate BEFORE TRUNCATE ON time_off_cancellations
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- A slot created free inside a time off is created blocked instead. The advisory lock makes
-- a concurrent time-off transaction either see this slot (and block it) or be seen here.
CREATE FUNCTION slots_block_in_time_off() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'free' THEN
        PERFORM availability_lock(NEW.doctor_id);
        IF EXISTS (SELECT 1 FROM time_off t
                    WHERE t.doctor_id = NEW.doctor_id
                      AND tstzrange(t.starts_at, t.ends_at) && tstzrange(NEW.starts_at, NEW.ends_at)) THEN
            NEW.status := 'busy-unavailable';
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slots_block_in_time_off BEFORE INSERT ON slots
    FOR EACH ROW EXECUTE FUNCTION slots_block_in_time_off();
