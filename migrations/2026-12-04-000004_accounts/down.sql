-- Drops the account audit trail and the last-administrator guard. Dropping the table drops
-- its triggers, so the append-only guard does not stand in the way of a deliberate rollback.
DROP TRIGGER IF EXISTS users_keep_an_admin ON users;
DROP FUNCTION IF EXISTS users_keep_an_admin();
DROP TABLE IF EXISTS account_events;
