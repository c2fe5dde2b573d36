-- SHMS accounts an operator can run (issue 8): the account audit trail and the
-- last-administrator guard.
--
-- Invariants this migration makes the database guarantee, whatever the application does:
--   * at least one active (not disabled) administrator remains once there has been one:
--     disabling, demoting or deleting the last active admin raises `users_last_active_admin`.
--     Every such change first takes one transaction-scoped advisory lock, so two
--     administrators disabling each other at the same moment are serialized and the second
--     sees the first's commit (plpgsql statements take a fresh snapshot under READ COMMITTED).
--   * account events are append-only (`account_events_append_only`, reusing refuse_change()
--     of migration 000003).
--
-- Account events live in their own table rather than in `audit_events`: that table is the
-- access log of one patient's medical data (patient_id NOT NULL, actions create/read on
-- clinical resources, the break-glass reason rule), which account events do not fit: a
-- failed login for an unknown e-mail has neither actor nor subject. See
-- docs/decisions/0003-account-events.md.
-- Errors raised by triggers carry SQLSTATE P0001 and a stable CONSTRAINT name.

CREATE TABLE account_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- who acted; NULL only for a failed login (nobody is authenticated)
    actor_id        uuid REFERENCES users (id),
    actor_role      text CONSTRAINT account_events_actor_role_valid CHECK (actor_role IN ('patient', 'doctor', 'admin')),
    -- whose account; NULL for a failed login with an unknown e-mail
    subject_id      uuid REFERENCES users (id),
    action          text NOT NULL CONSTRAINT account_events_action_valid CHECK (action IN (
                        'login_succeeded', 'login_failed', 'logout', 'password_changed',
                        'session_revoked', 'account_disabled', 'account_enabled',
                        'profile_updated', 'doctor_profile_updated')),
    -- the e-mail a failed login tried, lower-cased: operators see guessing against any address
    attempted_email text CONSTRAINT account_events_attempted_email_length CHECK (length(attempted_email) <= 254),
    request_id      text CONSTRAINT account_events_request_id_length CHECK (length(request_id) <= 200),
    client_ip       text CONSTRAINT account_events_client_ip_length CHECK (length(client_ip) <= 64),
    detail          text CONSTRAINT account_events_detail_length CHECK (length(detail) <= 500),
    CONSTRAINT account_events_actor_has_role CHECK ((actor_id IS NULL) = (actor_role IS NULL)),
    CONSTRAINT account_events_actor_present CHECK (action = 'login_failed' OR actor_id IS NOT NULL),
    CONSTRAINT account_events_failed_login_email CHECK ((action = 'login_failed') = (attempted_email IS NOT NULL))
);
CREATE INDEX account_events_subject_idx ON account_events (subject_id, occurred_at DESC, id DESC);
CREATE INDEX account_events_actor_idx ON account_events (actor_id, occurred_at DESC, id DESC);
CREATE INDEX account_events_attempted_email_idx ON account_events (attempted_email, occurred_at DESC)
    WHERE attempted_email IS NOT NULL;

CREATE TRIGGER account_events_append_only BEFORE UPDATE OR DELETE ON account_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER account_events_no_truncate BEFORE TRUNCATE ON account_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The last active administrator stays. Fires only when an active admin stops being one.
CREATE FUNCTION users_keep_an_admin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.role = 'admin' AND NOT NEW.disabled THEN
        RETURN NEW;
    END IF;
    -- one lock for every change that removes an active admin: concurrent ones queue here
    PERFORM pg_advisory_xact_lock(hashtext('shms.users.active_admins'));
    IF NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled AND id <> OLD.id) THEN
        RAISE EXCEPTION 'user % is the last active administrator', OLD.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'users_last_active_admin';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_keep_an_admin BEFORE UPDATE OF disabled, role OR DELETE ON users
    FOR EACH ROW WHEN (OLD.role = 'admin' AND NOT OLD.disabled)
    EXECUTE FUNCTION users_keep_an_admin();
