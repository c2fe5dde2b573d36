-- SHMS core schema: identity, doctors, slots, appointments and payments.
--
-- The database, not only the application, guarantees DESIGN §4 invariants 1-4:
--   1. no slot and no doctor has two active appointments that overlap (exclusion constraints);
--   2. no patient has two active appointments that overlap (exclusion constraint);
--   3. a slot is 'busy' exactly when it has an active appointment (triggers below);
--   4. appointment and payment status changes follow their state machines (BEFORE UPDATE triggers).
-- "Active" means any appointment status except 'cancelled': a fulfilled or no-show visit still
-- occupies its slot, so the slot never turns free again and cannot be sold twice.
--
-- Trigger order when rows change together (one global order avoids deadlocks):
--   appointments -> slots -> payments.
-- Errors raised by triggers carry a stable SQLSTATE and CONSTRAINT name that the adapter maps.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CONSTRAINT users_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    password_hash text NOT NULL,
    role          text NOT NULL CONSTRAINT users_role_valid CHECK (role IN ('patient', 'doctor', 'admin')),
    full_name     text NOT NULL CONSTRAINT users_full_name_present CHECK (length(btrim(full_name)) BETWEEN 1 AND 200),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- lets profile tables prove, by foreign key, that their user has the matching role
    CONSTRAINT users_id_role_key UNIQUE (id, role)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL CONSTRAINT sessions_token_hash_key UNIQUE
                 CONSTRAINT sessions_token_hash_length CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    client_ip    text,
    user_agent   text,
    CONSTRAINT sessions_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE patients (
    user_id       uuid PRIMARY KEY,
    role          text NOT NULL DEFAULT 'patient' CONSTRAINT patients_role_is_patient CHECK (role = 'patient'),
    date_of_birth date NOT NULL CONSTRAINT patients_date_of_birth_plausible CHECK (date_of_birth >= DATE '1880-01-01'),
    sex           text NOT NULL CONSTRAINT patients_sex_valid CHECK (sex IN ('male', 'female', 'other', 'unknown')),
    phone         text CONSTRAINT patients_phone_length CHECK (length(phone) BETWEEN 3 AND 40),
    CONSTRAINT patients_user_fkey FOREIGN KEY (user_id, role) REFERENCES users (id, role) ON DELETE CASCADE
);

CREATE TABLE doctors (
    user_id        uuid PRIMARY KEY,
    role           text NOT NULL DEFAULT 'doctor' CONSTRAINT doctors_role_is_doctor CHECK (role = 'doctor'),
    specialty      text NOT NULL CONSTRAINT doctors_specialty_present CHECK (length(btrim(specialty)) BETWEEN 1 AND 100),
    license_number text NOT NULL CONSTRAINT doctors_license_number_present CHECK (length(btrim(license_number)) BETWEEN 1 AND 64),
    fee_cents      bigint NOT NULL CONSTRAINT doctors_fee_positive CHECK (fee_cents > 0),
    currency       text NOT NULL CONSTRAINT doctors_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$'),
    active         boolean NOT NULL DEFAULT true,
    bio            text,
    CONSTRAINT doctors_user_fkey FOREIGN KEY (user_id, role) REFERENCES users (id, role) ON DELETE CASCADE
);
CREATE UNIQUE INDEX doctors_license_number_key ON doctors (upper(license_number));
CREATE INDEX doctors_specialty_idx ON doctors (lower(specialty));

CREATE TABLE slots (
    id         uuid PRIMARY KEY,
    doctor_id  uuid NOT NULL REFERENCES doctors (user_id) ON DELETE CASCADE,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'free' CONSTRAINT slots_status_valid CHECK (status IN ('free', 'busy', 'busy-unavailable')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT slots_interval_valid CHECK (ends_at > starts_at AND ends_at - starts_at <= interval '24 hours'),
    CONSTRAINT slots_no_overlap EXCLUDE USING gist (doctor_id WITH =, tstzrange(starts_at, ends_at) WITH &&),
    -- target of the appointments' composite foreign key: an appointment copies its slot's interval
    CONSTRAINT slots_identity_key UNIQUE (id, doctor_id, starts_at, ends_at)
);
CREATE INDEX slots_doctor_starts_idx ON slots (doctor_id, starts_at);
CREATE INDEX slots_free_starts_idx ON slots (starts_at) WHERE status = 'free';

CREATE TABLE appointments (
    id            uuid PRIMARY KEY,
    patient_id    uuid NOT NULL REFERENCES patients (user_id),
    doctor_id     uuid NOT NULL REFERENCES doctors (user_id),
    slot_id       uuid NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    reason        text NOT NULL CONSTRAINT appointments_reason_length CHECK (length(reason) <= 2000),
    status        text NOT NULL DEFAULT 'booked'
                  CONSTRAINT appointments_status_valid CHECK (status IN ('booked', 'checked-in', 'fulfilled', 'cancelled', 'noshow')),
    booked_by     uuid NOT NULL REFERENCES users (id),
    cancelled_by  uuid REFERENCES users (id),
    cancel_reason text CONSTRAINT appointments_cancel_reason_length CHECK (length(cancel_reason) <= 2000),
    cancelled_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT appointments_slot_fkey FOREIGN KEY (slot_id, doctor_id, starts_at, ends_at)
        REFERENCES slots (id, doctor_id, starts_at, ends_at),
    CONSTRAINT appointments_cancellation_recorded CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT appointments_one_per_slot EXCLUDE USING gist (slot_id WITH =) WHERE (status <> 'cancelled'),
    CONSTRAINT appointments_no_doctor_overlap
        EXCLUDE USING gist (doctor_id WITH =, tstzrange(starts_at, ends_at) WITH &&) WHERE (status <> 'cancelled'),
    CONSTRAINT appointments_no_patient_overlap
        EXCLUDE USING gist (patient_id WITH =, tstzrange(starts_at, ends_at) WITH &&) WHERE (status <> 'cancelled')
);
CREATE INDEX appointments_patient_starts_idx ON appointments (patient_id, starts_at);
CREATE INDEX appointments_doctor_starts_idx ON appointments (doctor_id, starts_at);

CREATE TABLE payments (
    id             uuid PRIMARY KEY,
    appointment_id uuid NOT NULL CONSTRAINT payments_appointment_key UNIQUE REFERENCES appointments (id),
    amount_cents   bigint NOT NULL CONSTRAINT payments_amount_positive CHECK (amount_cents > 0),
    currency       text NOT NULL CONSTRAINT payments_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$'),
    status         text NOT NULL DEFAULT 'pending'
                   CONSTRAINT payments_status_valid CHECK (status IN ('pending', 'paid', 'partially_refunded', 'refunded', 'cancelled')),
    refunded_cents bigint NOT NULL DEFAULT 0
                   CONSTRAINT payments_refund_within_amount CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    paid_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_paid_at_recorded CHECK ((status IN ('pending', 'cancelled')) = (paid_at IS NULL))
);

-- Invariant 4: the appointment state machine.
-- booked -> checked-in -> fulfilled; booked -> cancelled; checked-in -> cancelled; booked -> noshow.
CREATE FUNCTION appointment_transition_allowed(from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (from_status, to_status) IN (
        ('booked', 'checked-in'), ('checked-in', 'fulfilled'), ('booked', 'cancelled'),
        ('checked-in', 'cancelled'), ('booked', 'noshow'))
$$;

CREATE FUNCTION appointments_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.patient_id <> OLD.patient_id OR NEW.doctor_id <> OLD.doctor_id OR NEW.booked_by <> OLD.booked_by
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'appointment % cannot change its patient, doctor or origin', OLD.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'appointments_immutable_columns';
    END IF;
    IF NEW.status <> OLD.status AND NOT appointment_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'appointment % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'appointments_status_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER appointments_guard_update BEFORE UPDATE ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointments_guard_update();

CREATE FUNCTION appointments_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'booked' THEN
        RAISE EXCEPTION 'a new appointment starts as booked, not %', NEW.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'appointments_status_transition';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER appointments_guard_insert BEFORE INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointments_guard_insert();

-- Invariant 3, booking side: the booked slot turns busy. A slot blocked by the clinic
-- ('busy-unavailable') cannot be booked. Double booking itself is refused by the
-- exclusion constraints above, not here, so that the constraint alone carries invariant 1.
CREATE FUNCTION appointments_occupy_slot() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER appointments_occupy_slot AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION appointments_occupy_slot();

-- Invariant 3, cancellation side, and invariant 5's first rule: cancelling frees the slot
-- and cancels a payment that was never paid.
CREATE FUNCTION appointments_release_on_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE slots SET status = 'free'
     WHERE id = OLD.slot_id AND status = 'busy'
       AND NOT EXISTS (SELECT 1 FROM appointments a
                        WHERE a.slot_id = OLD.slot_id AND a.status <> 'cancelled');
    UPDATE payments SET status = 'cancelled' WHERE appointment_id = NEW.id AND status = 'pending';
    RETURN NULL;
END $$;
CREATE TRIGGER appointments_release_on_cancel AFTER UPDATE OF status ON appointments
    FOR EACH ROW WHEN (NEW.status = 'cancelled' AND OLD.status <> 'cancelled')
    EXECUTE FUNCTION appointments_release_on_cancel();

-- Invariant 3, slot side: nobody (not even raw SQL) marks a slot busy without an active
-- appointment, or frees or blocks a slot that has one.
CREATE FUNCTION slots_guard_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    occupied boolean;
BEGIN
    IF NEW.doctor_id <> OLD.doctor_id OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at THEN
        IF EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = OLD.id) THEN
            RAISE EXCEPTION 'slot % has appointments and cannot be moved', OLD.id
                USING ERRCODE = 'P0001', CONSTRAINT = 'slots_status_consistency';
        END IF;
    END IF;
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    occupied := EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = NEW.id AND a.status <> 'cancelled');
    IF (NEW.status = 'busy') <> occupied THEN
        RAISE EXCEPTION 'slot % cannot become % (active appointment: %)', NEW.id, NEW.status, occupied
            USING ERRCODE = 'P0001', CONSTRAINT = 'slots_status_consistency';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slots_guard_status BEFORE UPDATE ON slots
    FOR EACH ROW EXECUTE FUNCTION slots_guard_status();

CREATE FUNCTION slots_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'busy' THEN
        RAISE EXCEPTION 'a new slot cannot be busy: it has no appointment yet'
            USING ERRCODE = 'P0001', CONSTRAINT = 'slots_status_consistency';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slots_guard_insert BEFORE INSERT ON slots
    FOR EACH ROW EXECUTE FUNCTION slots_guard_insert();

-- Invariant 4: the payment state machine. 'paid' and the refund states are reached only
-- through attempts and refunds (triggers of the payments migration); cancelling only
-- from 'pending'.
CREATE FUNCTION payment_transition_allowed(from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (from_status, to_status) IN (
        ('pending', 'paid'), ('pending', 'cancelled'), ('paid', 'partially_refunded'),
        ('paid', 'refunded'), ('partially_refunded', 'partially_refunded'),
        ('partially_refunded', 'refunded'))
$$;

CREATE FUNCTION payments_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.appointment_id <> OLD.appointment_id OR NEW.amount_cents <> OLD.amount_cents
       OR NEW.currency <> OLD.currency THEN
        RAISE EXCEPTION 'payment % cannot change its appointment, amount or currency', OLD.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_immutable_columns';
    END IF;
    IF NEW.status <> OLD.status AND NOT payment_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'payment % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_status_transition';
    END IF;
    IF NEW.refunded_cents < OLD.refunded_cents THEN
        RAISE EXCEPTION 'payment % refunded amount cannot decrease', OLD.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_status_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER payments_guard_update BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_guard_update();

CREATE FUNCTION payments_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'pending' OR NEW.refunded_cents <> 0 THEN
        RAISE EXCEPTION 'a new payment starts pending with nothing refunded'
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_status_transition';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payments_guard_insert BEFORE INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_guard_insert();

-- Bookings and payments are history: they are cancelled, never deleted.
CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows cannot be deleted', TG_TABLE_NAME
        USING ERRCODE = 'P0001', CONSTRAINT = TG_TABLE_NAME || '_append_only';
END $$;
CREATE TRIGGER appointments_refuse_delete BEFORE DELETE ON appointments
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER payments_refuse_delete BEFORE DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
