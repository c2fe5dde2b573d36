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
        source -> Text,
        held_by -> Nullable<Uuid>,
        held_until -> Nullable<Timestamptz>,
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

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        occurred_at -> Timestamptz,
        actor_id -> Uuid,
        actor_role -> Text,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Uuid>,
        patient_id -> Uuid,
        request_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    encounters (id) {
        id -> Uuid,
        appointment_id -> Uuid,
        patient_id -> Uuid,
        doctor_id -> Uuid,
        subjective -> Text,
        objective -> Text,
        assessment -> Text,
        plan -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    encounter_amendments (id) {
        id -> Uuid,
        encounter_id -> Uuid,
        patient_id -> Uuid,
        author_id -> Uuid,
        reason -> Text,
        subjective -> Nullable<Text>,
        objective -> Nullable<Text>,
        assessment -> Nullable<Text>,
        plan -> Nullable<Text>,
        replaces_diagnoses -> Bool,
        replaces_prescriptions -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    diagnoses (id) {
        id -> Uuid,
        encounter_id -> Uuid,
        patient_id -> Uuid,
        amendment_id -> Nullable<Uuid>,
        position -> Int4,
        code -> Text,
        description -> Text,
        is_primary -> Bool,
    }
}

diesel::table! {
    prescriptions (id) {
        id -> Uuid,
        encounter_id -> Uuid,
        patient_id -> Uuid,
        amendment_id -> Nullable<Uuid>,
        position -> Int4,
        medication -> Text,
        dose -> Text,
        frequency -> Text,
        duration_days -> Int4,
    }
}

diesel::table! {
    vital_signs (id) {
        id -> Uuid,
        encounter_id -> Uuid,
        patient_id -> Uuid,
        position -> Int4,
        kind -> Text,
        value -> Float8,
        unit -> Text,
    }
}

diesel::table! {
    allergies (id) {
        id -> Uuid,
        patient_id -> Uuid,
        recorded_by -> Uuid,
        substance -> Text,
        reaction -> Text,
        severity -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(audit_events -> users (actor_id));
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
    idempotency_keys,
    audit_events,
    encounters,
    encounter_amendments,
    diagnoses,
    prescriptions,
    vital_signs,
    allergies
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

diesel::table! {
    account_events (id) {
        id -> Uuid,
        occurred_at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        actor_role -> Nullable<Text>,
        subject_id -> Nullable<Uuid>,
        action -> Text,
        attempted_email -> Nullable<Text>,
        request_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    waitlist_entries (id) {
        id -> Uuid,
        patient_id -> Uuid,
        doctor_id -> Uuid,
        from_at -> Timestamptz,
        to_at -> Timestamptz,
        status -> Text,
        offered_slot_id -> Nullable<Uuid>,
        offered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    availability (doctor_id) {
        doctor_id -> Uuid,
        time_zone -> Text,
        slot_minutes -> Int4,
        buffer_minutes -> Int4,
        effective_from -> Date,
        effective_until -> Nullable<Date>,
        horizon_days -> Int4,
        revision -> Int8,
        updated_by -> Uuid,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    availability_rules (doctor_id, weekday, starts) {
        doctor_id -> Uuid,
        weekday -> Int2,
        starts -> Time,
        ends -> Time,
    }
}

diesel::table! {
    time_off (id) {
        id -> Uuid,
        doctor_id -> Uuid,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        reason -> Text,
        cancel_conflicts -> Bool,
        created_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        user_id -> Uuid,
        kind -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    time_off_cancellations (time_off_id, appointment_id) {
        time_off_id -> Uuid,
        appointment_id -> Uuid,
        refunded_cents -> Int8,
    }
}
