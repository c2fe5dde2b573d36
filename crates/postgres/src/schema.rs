//! Diesel table definitions, kept by hand in step with `migrations/` (the adapter tests
//! exercise every column, so drift fails the build or the tests).

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        full_name -> Text,
        disabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    patients (user_id) {
        user_id -> Uuid,
        role -> Text,
        date_of_birth -> Date,
        sex -> Text,
        phone -> Nullable<Text>,
    }
}

diesel::table! {
    doctors (user_id) {
        user_id -> Uuid,
        role -> Text,
        specialty -> Text,
        license_number -> Text,
        fee_cents -> Int8,
        currency -> Text,
        active -> Bool,
        bio -> Nullable<Text>,
    }
}

diesel::table! {
    slots (id) {
        id -> Uuid,
        doctor_id -> Uuid,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        status -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    appointments (id) {
        id -> Uuid,
        patient_id -> Uuid,
        doctor_id -> Uuid,
        slot_id -> Uuid,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        reason -> Text,
        status -> Text,
        booked_by -> Uuid,
        cancelled_by -> Nullable<Uuid>,
        cancel_reason -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        appointment_id -> Uuid,
        amount_cents -> Int8,
        currency -> Text,
        status -> Text,
        refunded_cents -> Int8,
        paid_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(patients -> users (user_id));
diesel::joinable!(doctors -> users (user_id));
diesel::joinable!(slots -> doctors (doctor_id));
diesel::joinable!(payments -> appointments (appointment_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    patients,
    doctors,
    slots,
    appointments,
    payments,
    payment_attempts,
    refunds,
    idempotency_keys
);

diesel::table! {
    payment_attempts (id) {
        id -> Uuid,
        payment_id -> Uuid,
        idempotency_key -> Uuid,
        method -> Text,
        card_token -> Nullable<Text>,
        amount_cents -> Int8,
        currency -> Text,
        status -> Text,
        gateway_reference -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refunds (id) {
        id -> Uuid,
        payment_id -> Uuid,
        amount_cents -> Int8,
        currency -> Text,
        reason -> Text,
        created_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        fingerprint -> Bytea,
        status -> Text,
        response_status -> Nullable<Int4>,
        response_body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(payment_attempts -> payments (payment_id));
diesel::joinable!(refunds -> payments (payment_id));
