-- Drops the medical records and the audit trail. Dropping a table drops its triggers, so the
-- append-only guards do not stand in the way of a deliberate rollback.
DROP TABLE IF EXISTS vital_signs, prescriptions, diagnoses, encounter_amendments, encounters,
    allergies, audit_events;
DROP FUNCTION IF EXISTS refuse_change(), audit_clinical_insert(), diagnoses_require_primary(),
    allergies_guard_insert(), encounters_guard_insert();
