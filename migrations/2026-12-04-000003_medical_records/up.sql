-- SHMS medical records and the audit trail (DESIGN §3, §4 invariants 6-7, §5).
--
-- Invariants this migration makes the database guarantee, whatever the application does:
--   6. clinical rows (encounters, diagnoses, prescriptions, vital_signs, encounter_amendments,
--      allergies) and audit_events are append-only: UPDATE, DELETE and TRUNCATE raise
--      `<table>_append_only`. Corrections are new encounter_amendments rows.
--   7. every INSERT into a clinical table writes its audit event in the same transaction, by
--      the AFTER INSERT trigger `audit_clinical_insert`. The acting user comes from the
--      transaction-local settings `shms.actor_id`, `shms.actor_role` (and, when known,
--      `shms.request_id`, `shms.client_ip`) that the adapter sets with
--      `set_config(..., true)` (= SET LOCAL) at the start of the transaction. A clinical
--      write without an actor is refused (`audit_actor_required`): nothing is written
--      anonymously, not even from psql.
-- Reads of records are audited by the application (action 'read'), in the transaction
-- that reads them.
--
-- Clinical child rows carry their patient_id, tied to their encounter by composite foreign
-- keys, so that the audit trigger and the record queries never need a join to know whose
-- data a row is. Insert order inside one transaction: encounters -> encounter_amendments ->
-- diagnoses/prescriptions/vital_signs -> audit_events (by trigger).
-- Errors raised by triggers carry SQLSTATE P0001 and a stable CONSTRAINT name.

CREATE TABLE audit_events (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id      uuid NOT NULL REFERENCES users (id),
    actor_role    text NOT NULL CONSTRAINT audit_events_actor_role_valid CHECK (actor_role IN ('patient', 'doctor', 'admin')),
    action        text NOT NULL CONSTRAINT audit_events_action_valid CHECK (action IN ('create', 'read')),
    resource_type text NOT NULL CONSTRAINT audit_events_resource_type_valid CHECK (resource_type IN (
                      'encounter', 'encounter_amendment', 'diagnosis', 'prescription', 'vital_sign',
                      'allergy', 'records', 'allergies')),
    -- the row written; NULL for a read of a collection (records, allergies)
    resource_id   uuid,
    patient_id    uuid NOT NULL REFERENCES patients (user_id),
    request_id    text CONSTRAINT audit_events_request_id_length CHECK (length(request_id) <= 200),
    client_ip     text CONSTRAINT audit_events_client_ip_length CHECK (length(client_ip) <= 64),
    -- why an administrator broke the glass; required for exactly those reads
    reason        text CONSTRAINT audit_events_reason_length CHECK (length(reason) <= 500),
    CONSTRAINT audit_events_write_has_resource CHECK ((action = 'create') = (resource_id IS NOT NULL)),
    CONSTRAINT audit_events_break_glass_reason CHECK (
        (action = 'read' AND actor_role = 'admin') = (reason IS NOT NULL AND length(btrim(reason)) > 0))
);
CREATE INDEX audit_events_patient_idx ON audit_events (patient_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_resource_idx ON audit_events (resource_id) WHERE resource_id IS NOT NULL;

CREATE TABLE encounters (
    id             uuid PRIMARY KEY,
    appointment_id uuid NOT NULL REFERENCES appointments (id),
    patient_id     uuid NOT NULL REFERENCES patients (user_id),
    doctor_id      uuid NOT NULL REFERENCES doctors (user_id),
    subjective     text NOT NULL CONSTRAINT encounters_subjective_length CHECK (length(subjective) <= 20000),
    objective      text NOT NULL CONSTRAINT encounters_objective_length CHECK (length(objective) <= 20000),
    assessment     text NOT NULL CONSTRAINT encounters_assessment_length CHECK (length(assessment) <= 20000),
    plan           text NOT NULL CONSTRAINT encounters_plan_length CHECK (length(plan) <= 20000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- one encounter per visit
    CONSTRAINT encounters_appointment_key UNIQUE (appointment_id),
    -- targets of the children's composite foreign keys
    CONSTRAINT encounters_identity_key UNIQUE (id, patient_id),
    CONSTRAINT encounters_author_key UNIQUE (id, patient_id, doctor_id)
);
CREATE INDEX encounters_patient_idx ON encounters (patient_id, created_at DESC, id DESC);

CREATE TABLE encounter_amendments (
    id                     uuid PRIMARY KEY,
    encounter_id           uuid NOT NULL,
    patient_id             uuid NOT NULL,
    author_id              uuid NOT NULL,
    reason                 text NOT NULL CONSTRAINT encounter_amendments_reason_present CHECK (length(btrim(reason)) BETWEEN 1 AND 2000),
    -- NULL: this part of the note is unchanged
    subjective             text CONSTRAINT encounter_amendments_subjective_length CHECK (length(subjective) <= 20000),
    objective              text CONSTRAINT encounter_amendments_objective_length CHECK (length(objective) <= 20000),
    assessment             text CONSTRAINT encounter_amendments_assessment_length CHECK (length(assessment) <= 20000),
    plan                   text CONSTRAINT encounter_amendments_plan_length CHECK (length(plan) <= 20000),
    -- true: the diagnoses (prescriptions) rows of this amendment replace the earlier list
    replaces_diagnoses     boolean NOT NULL DEFAULT false,
    replaces_prescriptions boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- only the encounter's author amends it
    CONSTRAINT encounter_amendments_by_author FOREIGN KEY (encounter_id, patient_id, author_id)
        REFERENCES encounters (id, patient_id, doctor_id),
    CONSTRAINT encounter_amendments_identity_key UNIQUE (id, encounter_id),
    CONSTRAINT encounter_amendments_changes_something CHECK (
        subjective IS NOT NULL OR objective IS NOT NULL OR assessment IS NOT NULL OR plan IS NOT NULL
        OR replaces_diagnoses OR replaces_prescriptions)
);
CREATE INDEX encounter_amendments_encounter_idx ON encounter_amendments (encounter_id, created_at, id);

CREATE TABLE diagnoses (
    id           uuid PRIMARY KEY,
    encounter_id uuid NOT NULL,
    patient_id   uuid NOT NULL,
    -- NULL: part of the original encounter; else part of that amendment's replacement list
    amendment_id uuid,
    position     integer NOT NULL CONSTRAINT diagnoses_position_valid CHECK (position >= 0),
    code         text NOT NULL CONSTRAINT diagnoses_code_icd10 CHECK (code ~ '^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$'),
    description  text NOT NULL CONSTRAINT diagnoses_description_length CHECK (length(btrim(description)) BETWEEN 1 AND 500),
    is_primary   boolean NOT NULL,
    CONSTRAINT diagnoses_encounter_fkey FOREIGN KEY (encounter_id, patient_id) REFERENCES encounters (id, patient_id),
    CONSTRAINT diagnoses_amendment_fkey FOREIGN KEY (amendment_id, encounter_id)
        REFERENCES encounter_amendments (id, encounter_id)
);
CREATE INDEX diagnoses_encounter_idx ON diagnoses (encounter_id);
-- at most one primary diagnosis per list (original or amendment); "at least one" is the
-- deferred trigger below, since a list is inserted row by row
CREATE UNIQUE INDEX diagnoses_one_primary ON diagnoses (encounter_id, coalesce(amendment_id, encounter_id)) WHERE is_primary;

CREATE TABLE prescriptions (
    id            uuid PRIMARY KEY,
    encounter_id  uuid NOT NULL,
    patient_id    uuid NOT NULL,
    amendment_id  uuid,
    position      integer NOT NULL CONSTRAINT prescriptions_position_valid CHECK (position >= 0),
    medication    text NOT NULL CONSTRAINT prescriptions_medication_length CHECK (length(btrim(medication)) BETWEEN 1 AND 200),
    dose          text NOT NULL CONSTRAINT prescriptions_dose_length CHECK (length(btrim(dose)) BETWEEN 1 AND 100),
    frequency     text NOT NULL CONSTRAINT prescriptions_frequency_length CHECK (length(btrim(frequency)) BETWEEN 1 AND 100),
    duration_days integer NOT NULL CONSTRAINT prescriptions_duration_days_range CHECK (duration_days BETWEEN 1 AND 365),
    CONSTRAINT prescriptions_encounter_fkey FOREIGN KEY (encounter_id, patient_id) REFERENCES encounters (id, patient_id),
    CONSTRAINT prescriptions_amendment_fkey FOREIGN KEY (amendment_id, encounter_id)
        REFERENCES encounter_amendments (id, encounter_id)
);
CREATE INDEX prescriptions_encounter_idx ON prescriptions (encounter_id);

-- Units are fixed per kind (UCUM codes) and the value must be physiologically plausible, so
-- a typo (a temperature of 375) is refused rather than stored.
CREATE TABLE vital_signs (
    id           uuid PRIMARY KEY,
    encounter_id uuid NOT NULL,
    patient_id   uuid NOT NULL,
    position     integer NOT NULL CONSTRAINT vital_signs_position_valid CHECK (position >= 0),
    kind         text NOT NULL CONSTRAINT vital_signs_kind_valid CHECK (kind IN (
                     'heart_rate', 'blood_pressure_systolic', 'blood_pressure_diastolic',
                     'temperature', 'weight', 'height', 'spo2')),
    value        double precision NOT NULL,
    unit         text NOT NULL,
    CONSTRAINT vital_signs_unit_matches_kind CHECK (unit = CASE kind
        WHEN 'heart_rate' THEN '/min'
        WHEN 'blood_pressure_systolic' THEN 'mm[Hg]'
        WHEN 'blood_pressure_diastolic' THEN 'mm[Hg]'
        WHEN 'temperature' THEN 'Cel'
        WHEN 'weight' THEN 'kg'
        WHEN 'height' THEN 'cm'
        WHEN 'spo2' THEN '%' END),
    CONSTRAINT vital_signs_value_plausible CHECK (CASE kind
        WHEN 'heart_rate' THEN value BETWEEN 20 AND 300
        WHEN 'blood_pressure_systolic' THEN value BETWEEN 40 AND 300
        WHEN 'blood_pressure_diastolic' THEN value BETWEEN 20 AND 200
        WHEN 'temperature' THEN value BETWEEN 25 AND 45
        WHEN 'weight' THEN value BETWEEN 0.2 AND 700
        WHEN 'height' THEN value BETWEEN 20 AND 280
        WHEN 'spo2' THEN value BETWEEN 50 AND 100
        ELSE false END),
    CONSTRAINT vital_signs_encounter_fkey FOREIGN KEY (encounter_id, patient_id) REFERENCES encounters (id, patient_id)
);
CREATE INDEX vital_signs_encounter_idx ON vital_signs (encounter_id);

CREATE TABLE allergies (
    id          uuid PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients (user_id),
    recorded_by uuid NOT NULL REFERENCES doctors (user_id),
    substance   text NOT NULL CONSTRAINT allergies_substance_length CHECK (length(btrim(substance)) BETWEEN 1 AND 200),
    reaction    text NOT NULL CONSTRAINT allergies_reaction_length CHECK (length(reaction) <= 1000),
    severity    text NOT NULL CONSTRAINT allergies_severity_valid CHECK (severity IN ('mild', 'moderate', 'severe')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX allergies_patient_idx ON allergies (patient_id, created_at DESC, id DESC);

-- An encounter is written for a visit that happened or is happening, by that visit's
-- doctor, about that visit's patient. The domain checks the same; this holds for raw SQL
-- and closes the race with a concurrent cancellation.
CREATE FUNCTION encounters_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    visit appointments%ROWTYPE;
BEGIN
    -- FOR SHARE: a concurrent cancel waits for this transaction, then sees the encounter
    SELECT * INTO visit FROM appointments WHERE id = NEW.appointment_id FOR SHARE;
    IF NOT FOUND OR visit.patient_id <> NEW.patient_id OR visit.doctor_id <> NEW.doctor_id THEN
        RAISE EXCEPTION 'encounter % does not match appointment %', NEW.id, NEW.appointment_id
            USING ERRCODE = 'P0001', CONSTRAINT = 'encounters_match_appointment';
    END IF;
    IF visit.status NOT IN ('checked-in', 'fulfilled') THEN
        RAISE EXCEPTION 'appointment % is %, not checked-in or fulfilled', visit.id, visit.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'encounters_appointment_checked_in';
    END IF;
    IF NEW.doctor_id::text IS DISTINCT FROM current_setting('shms.actor_id', true) THEN
        RAISE EXCEPTION 'only the appointment''s doctor writes its encounter'
            USING ERRCODE = 'P0001', CONSTRAINT = 'encounters_written_by_doctor';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER encounters_guard_insert BEFORE INSERT ON encounters
    FOR EACH ROW EXECUTE FUNCTION encounters_guard_insert();

-- Allergies are recorded by a doctor in a care relationship with the patient (an
-- appointment that is not cancelled), acting as themself.
CREATE FUNCTION allergies_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.recorded_by::text IS DISTINCT FROM current_setting('shms.actor_id', true) THEN
        RAISE EXCEPTION 'an allergy is recorded by the acting doctor'
            USING ERRCODE = 'P0001', CONSTRAINT = 'allergies_recorded_by_actor';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM appointments a
                    WHERE a.patient_id = NEW.patient_id AND a.doctor_id = NEW.recorded_by
                      AND a.status <> 'cancelled') THEN
        RAISE EXCEPTION 'doctor % has no care relationship with patient %', NEW.recorded_by, NEW.patient_id
            USING ERRCODE = 'P0001', CONSTRAINT = 'allergies_care_relationship';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER allergies_guard_insert BEFORE INSERT ON allergies
    FOR EACH ROW EXECUTE FUNCTION allergies_guard_insert();

-- A list of diagnoses (an encounter's, or an amendment's replacement) has exactly one
-- primary. Checked at commit, once the whole list is in.
CREATE FUNCTION diagnoses_require_primary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM diagnoses d
                    WHERE d.encounter_id = NEW.encounter_id
                      AND d.amendment_id IS NOT DISTINCT FROM NEW.amendment_id
                      AND d.is_primary) THEN
        RAISE EXCEPTION 'the diagnoses of encounter % have no primary diagnosis', NEW.encounter_id
            USING ERRCODE = 'P0001', CONSTRAINT = 'diagnoses_one_primary';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER diagnoses_require_primary AFTER INSERT ON diagnoses
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION diagnoses_require_primary();

-- Invariant 7: the audit event of every clinical row, in the writing transaction.
-- TG_ARGV[0] is the resource type; every clinical table has `id` and `patient_id`.
CREATE FUNCTION audit_clinical_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor text := nullif(current_setting('shms.actor_id', true), '');
    role  text := nullif(current_setting('shms.actor_role', true), '');
BEGIN
    IF actor IS NULL OR role IS NULL THEN
        RAISE EXCEPTION 'clinical data is written only with shms.actor_id and shms.actor_role set'
            USING ERRCODE = 'P0001', CONSTRAINT = 'audit_actor_required';
    END IF;
    INSERT INTO audit_events (actor_id, actor_role, action, resource_type, resource_id, patient_id,
                              request_id, client_ip)
    VALUES (actor::uuid, role, 'create', TG_ARGV[0], NEW.id, NEW.patient_id,
            nullif(current_setting('shms.request_id', true), ''),
            nullif(current_setting('shms.client_ip', true), ''));
    RETURN NULL;
END $$;
CREATE TRIGGER encounters_audit AFTER INSERT ON encounters
    FOR EACH ROW EXECUTE FUNCTION audit_clinical_insert('encounter');
CREATE TRIGGER encounter_amendments_audit AFTER INSERT ON encounter_amendments
    FOR EACH ROW EXECUTE FUNCTION audit_clinical_insert('encounter_amendment');
CREATE TRIGGER diagnoses_audit AFTER INSERT ON diagnoses
    FOR EACH ROW EXECUTE FUNCTION audit_clinical_insert('diagnosis');
CREATE TRIGGER prescriptions_audit AFTER INSERT ON prescriptions
    FOR EACH ROW EXECUTE FUNCTION audit_clinical_insert('prescription');
CREATE TRIGGER vital_signs_audit AFTER INSERT ON vital_signs
    FOR EACH ROW EXECUTE FUNCTION audit_clinical_insert('vital_sign');
CREATE TRIGGER allergies_audit AFTER INSERT ON allergies
    FOR EACH ROW EXECUTE FUNCTION audit_clinical_insert('allergy');

-- Invariant 6: history is never rewritten. Row triggers catch UPDATE and DELETE, statement
-- triggers catch TRUNCATE (which bypasses row triggers).
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001', CONSTRAINT = TG_TABLE_NAME || '_append_only';
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['encounters', 'encounter_amendments', 'diagnoses', 'prescriptions',
                             'vital_signs', 'allergies', 'audit_events'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION refuse_change()',
                       t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()',
                       t || '_no_truncate', t);
    END LOOP;
END $$;
