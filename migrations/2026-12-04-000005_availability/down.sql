-- Drops availability and time off. Dropping the tables drops their append-only triggers.
DROP TRIGGER IF EXISTS slots_block_in_time_off ON slots;
DROP FUNCTION IF EXISTS slots_block_in_time_off();
DROP TABLE IF EXISTS time_off_cancellations;
DROP TABLE IF EXISTS time_off;
DROP INDEX IF EXISTS slots_generated_idx;
ALTER TABLE slots DROP COLUMN IF EXISTS source;
DROP TABLE IF EXISTS availability_rules;
DROP TYPE IF EXISTS timerange;
DROP TABLE IF EXISTS availability;
DROP FUNCTION IF EXISTS availability_lock(uuid);
