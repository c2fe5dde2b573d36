-- Payments: attempts, refunds and the triggers that keep a payment's state (DESIGN §4
-- invariant 5, §7).
--
-- A payment's status is never set by hand; it follows from its rows:
--   * a succeeded attempt makes it 'paid' (with paid_at);
--   * refunds add up into refunded_cents and move it to 'partially_refunded' / 'refunded';
--   * cancelling an unpaid appointment cancels it (core migration).
-- The guard trigger of the core migration refuses illegal transitions; this migration adds
-- that 'paid' needs a succeeded attempt and that refunded_cents equals the sum of refunds,
-- so even raw SQL cannot invent money.
--
-- Lock order, as in the core migration: appointments -> slots -> payments -> attempts/refunds.
-- Attempt and refund triggers lock the payment row first.

CREATE TABLE payment_attempts (
    id                uuid PRIMARY KEY,
    payment_id        uuid NOT NULL REFERENCES payments (id),
    -- sent to the gateway, which charges at most once per key
    idempotency_key   uuid NOT NULL CONSTRAINT payment_attempts_idempotency_key_key UNIQUE,
    method            text NOT NULL CONSTRAINT payment_attempts_method_valid CHECK (method IN ('card', 'cash', 'insurance')),
    card_token        text CONSTRAINT payment_attempts_card_token_length CHECK (length(card_token) <= 200),
    amount_cents      bigint NOT NULL CONSTRAINT payment_attempts_amount_positive CHECK (amount_cents > 0),
    currency          text NOT NULL CONSTRAINT payment_attempts_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$'),
    status            text NOT NULL
                      CONSTRAINT payment_attempts_status_valid CHECK (status IN ('pending', 'succeeded', 'declined', 'failed')),
    gateway_reference text,
    failure_reason    text,
    created_by        uuid NOT NULL REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    settled_at        timestamptz,
    CONSTRAINT payment_attempts_card_has_token CHECK ((method = 'card') = (card_token IS NOT NULL)),
    CONSTRAINT payment_attempts_settled_recorded CHECK ((status = 'pending') = (settled_at IS NULL))
);
CREATE INDEX payment_attempts_payment_idx ON payment_attempts (payment_id, created_at);
-- at most one attempt in flight per payment, and at most one that succeeded
CREATE UNIQUE INDEX payment_attempts_one_in_flight ON payment_attempts (payment_id) WHERE status = 'pending';
CREATE UNIQUE INDEX payment_attempts_one_success ON payment_attempts (payment_id) WHERE status = 'succeeded';

CREATE TABLE refunds (
    id           uuid PRIMARY KEY,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    amount_cents bigint NOT NULL CONSTRAINT refunds_amount_positive CHECK (amount_cents > 0),
    currency     text NOT NULL CONSTRAINT refunds_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$'),
    reason       text NOT NULL CONSTRAINT refunds_reason_length CHECK (length(reason) BETWEEN 1 AND 2000),
    created_by   uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);

CREATE INDEX payments_created_idx ON payments (created_at, id);
CREATE INDEX payments_status_created_idx ON payments (status, created_at);

-- Status and amounts agree: nothing refunded until paid; partial strictly between.
ALTER TABLE payments ADD CONSTRAINT payments_status_matches_amounts CHECK (
       (status IN ('pending', 'paid', 'cancelled') AND refunded_cents = 0)
    OR (status = 'partially_refunded' AND refunded_cents > 0 AND refunded_cents < amount_cents)
    OR (status = 'refunded' AND refunded_cents = amount_cents));

-- An attempt is opened only on a pending payment, for its exact amount and currency.
-- Cash and insurance are recorded by an admin as already succeeded.
CREATE FUNCTION payment_attempts_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p payments%ROWTYPE;
BEGIN
    SELECT * INTO p FROM payments WHERE id = NEW.payment_id FOR UPDATE;
    IF p.status <> 'pending' THEN
        RAISE EXCEPTION 'payment % is %, not pending', NEW.payment_id, p.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_not_pending';
    END IF;
    IF NEW.amount_cents <> p.amount_cents OR NEW.currency <> p.currency THEN
        RAISE EXCEPTION 'attempt amount % % does not match payment % %',
            NEW.amount_cents, NEW.currency, p.amount_cents, p.currency
            USING ERRCODE = 'P0001', CONSTRAINT = 'payment_attempts_amount_matches';
    END IF;
    IF NEW.status = 'succeeded' AND NEW.method = 'card' THEN
        RAISE EXCEPTION 'a card attempt starts pending and is settled after the gateway answers'
            USING ERRCODE = 'P0001', CONSTRAINT = 'payment_attempts_status_transition';
    END IF;
    -- covers cash/insurance too: the partial unique index only sees pending rows
    IF EXISTS (SELECT 1 FROM payment_attempts WHERE payment_id = NEW.payment_id AND status = 'pending') THEN
        RAISE EXCEPTION 'payment % has an attempt in flight', NEW.payment_id
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_in_progress';
    END IF;
    IF NEW.status NOT IN ('pending', 'succeeded') THEN
        RAISE EXCEPTION 'a new attempt is pending or (cash/insurance) succeeded'
            USING ERRCODE = 'P0001', CONSTRAINT = 'payment_attempts_status_transition';
    END IF;
    IF NEW.status = 'succeeded' THEN
        NEW.settled_at := coalesce(NEW.settled_at, now());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payment_attempts_guard_insert BEFORE INSERT ON payment_attempts
    FOR EACH ROW EXECUTE FUNCTION payment_attempts_guard_insert();

-- An attempt settles once: pending -> succeeded | declined | failed. Nothing else changes.
CREATE FUNCTION payment_attempts_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' OR NEW.status = 'pending'
       OR NEW.payment_id <> OLD.payment_id OR NEW.amount_cents <> OLD.amount_cents
       OR NEW.currency <> OLD.currency OR NEW.method <> OLD.method
       OR NEW.idempotency_key <> OLD.idempotency_key OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'payment attempt % cannot change from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'payment_attempts_status_transition';
    END IF;
    NEW.settled_at := coalesce(NEW.settled_at, now());
    RETURN NEW;
END $$;
CREATE TRIGGER payment_attempts_guard_update BEFORE UPDATE ON payment_attempts
    FOR EACH ROW EXECUTE FUNCTION payment_attempts_guard_update();

-- A succeeded attempt pays the payment.
CREATE FUNCTION payment_attempts_settle_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'succeeded' THEN
        UPDATE payments SET status = 'paid', paid_at = NEW.settled_at WHERE id = NEW.payment_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER payment_attempts_settle_payment AFTER INSERT OR UPDATE OF status ON payment_attempts
    FOR EACH ROW EXECUTE FUNCTION payment_attempts_settle_payment();

-- A refund needs a paid payment, the same currency, and room: refunds never exceed what
-- was paid (the CHECK on payments refuses it too; this names the reason).
CREATE FUNCTION refunds_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p payments%ROWTYPE;
BEGIN
    SELECT * INTO p FROM payments WHERE id = NEW.payment_id FOR UPDATE;
    IF p.status NOT IN ('paid', 'partially_refunded') THEN
        RAISE EXCEPTION 'payment % is %, nothing to refund', NEW.payment_id, p.status
            USING ERRCODE = 'P0001', CONSTRAINT = 'refunds_payment_not_paid';
    END IF;
    IF NEW.currency <> p.currency THEN
        RAISE EXCEPTION 'refund currency % differs from payment currency %', NEW.currency, p.currency
            USING ERRCODE = 'P0001', CONSTRAINT = 'refunds_currency_matches';
    END IF;
    IF p.refunded_cents + NEW.amount_cents > p.amount_cents THEN
        RAISE EXCEPTION 'refund of % exceeds the % still refundable', NEW.amount_cents, p.amount_cents - p.refunded_cents
            USING ERRCODE = 'P0001', CONSTRAINT = 'refunds_within_paid';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refunds_apply BEFORE INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_apply();

CREATE FUNCTION refunds_settle_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE payments
       SET refunded_cents = refunded_cents + NEW.amount_cents,
           status = CASE WHEN refunded_cents + NEW.amount_cents = amount_cents
                         THEN 'refunded' ELSE 'partially_refunded' END
     WHERE id = NEW.payment_id;
    RETURN NULL;
END $$;
CREATE TRIGGER refunds_settle_payment AFTER INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_settle_payment();

-- Attempts and refunds are the ledger: settled attempts and refunds are never changed or
-- removed.
CREATE TRIGGER payment_attempts_refuse_delete BEFORE DELETE ON payment_attempts
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER refunds_refuse_delete BEFORE DELETE ON refunds
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
CREATE FUNCTION refunds_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refunds cannot be changed; record another refund'
        USING ERRCODE = 'P0001', CONSTRAINT = 'refunds_append_only';
END $$;
CREATE TRIGGER refunds_refuse_update BEFORE UPDATE ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_refuse_update();

-- Payment status follows from the ledger, even for raw SQL: 'paid' needs a succeeded
-- attempt, and refunded_cents is the sum of the refunds.
CREATE FUNCTION payments_guard_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'paid' AND OLD.status = 'pending' AND NOT EXISTS (
        SELECT 1 FROM payment_attempts WHERE payment_id = NEW.id AND status = 'succeeded') THEN
        RAISE EXCEPTION 'payment % cannot be paid without a succeeded attempt', NEW.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_status_transition';
    END IF;
    IF NEW.refunded_cents <> (SELECT coalesce(sum(amount_cents), 0) FROM refunds WHERE payment_id = NEW.id) THEN
        RAISE EXCEPTION 'payment % refunded_cents must equal the sum of its refunds', NEW.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_status_transition';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payments_guard_ledger BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_guard_ledger();

-- Cancelling an appointment while its payment is being charged would leave the charge
-- without a purpose: refuse it until the attempt settles. After the cancel, the payment
-- must be settled one way or the other: cancelled (never paid) or refunded in full.
CREATE FUNCTION appointments_cancel_settles_payment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payment_status text;
BEGIN
    IF EXISTS (SELECT 1 FROM payment_attempts t JOIN payments p ON p.id = t.payment_id
                WHERE p.appointment_id = NEW.id AND t.status = 'pending') THEN
        RAISE EXCEPTION 'appointment % has a payment in progress', NEW.id
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_in_progress';
    END IF;
    SELECT status INTO payment_status FROM payments WHERE appointment_id = NEW.id;
    IF payment_status NOT IN ('cancelled', 'refunded') THEN
        RAISE EXCEPTION 'appointment % is cancelled but its payment is %', NEW.id, payment_status
            USING ERRCODE = 'P0001', CONSTRAINT = 'payments_not_settled_on_cancel';
    END IF;
    RETURN NULL;
END $$;
-- named to fire after appointments_release_on_cancel (triggers fire in name order)
CREATE TRIGGER appointments_zz_cancel_settles_payment AFTER UPDATE OF status ON appointments
    FOR EACH ROW WHEN (NEW.status = 'cancelled' AND OLD.status <> 'cancelled')
    EXECUTE FUNCTION appointments_cancel_settles_payment();

-- Idempotency keys: the first response to a (user, key) is replayed for repeats.
CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key             text NOT NULL CONSTRAINT idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint     bytea NOT NULL,
    status          text NOT NULL DEFAULT 'in_progress'
                    CONSTRAINT idempotency_keys_status_valid CHECK (status IN ('in_progress', 'completed')),
    response_status integer,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_completed_has_response
        CHECK ((status = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL))
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
