//! Mock adapters for the services' unit tests.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::appointment::{Appointment, AppointmentStatus, Booking, NewBooking};
use crate::ids::{SlotId, UserId};
use crate::payment::{Money, Payment, PaymentStatus};
use crate::slot::{Slot, SlotStatus};

use crate::clock::MockClock;
use crate::ports::{
    MockAppointmentRepository, MockAvailabilityRepository, MockDoctorRepository,
    MockIdempotencyRepository, MockPasswordHasher, MockPaymentGateway, MockPaymentRepository,
    MockRecordRepository, MockSessionRepository, MockSlotRepository, MockUserRepository,
    MockWaitlistRepository,
};
use crate::services::{Adapters, Ports};

pub struct MockPorts;

impl Ports for MockPorts {
    type Users = MockUserRepository;
    type Sessions = MockSessionRepository;
    type Doctors = MockDoctorRepository;
    type Slots = MockSlotRepository;
    type Appointments = MockAppointmentRepository;
    type Payments = MockPaymentRepository;
    type Gateway = MockPaymentGateway;
    type Idempotency = MockIdempotencyRepository;
    type Records = MockRecordRepository;
    type Waitlist = MockWaitlistRepository;
    type Availability = MockAvailabilityRepository;
    type Hasher = MockPasswordHasher;
    type Clock = MockClock;
}

/// Mocks to set expectations on, turned into adapters by `build`. A mock without
/// expectations panics when called, so every test states exactly which ports it uses.
#[derive(Default)]
pub struct Mocks {
    pub users: MockUserRepository,
    pub sessions: MockSessionRepository,
    pub doctors: MockDoctorRepository,
    pub slots: MockSlotRepository,
    pub appointments: MockAppointmentRepository,
    pub payments: MockPaymentRepository,
    pub gateway: MockPaymentGateway,
    pub idempotency: MockIdempotencyRepository,
    pub records: MockRecordRepository,
    pub waitlist: MockWaitlistRepository,
    pub availability: MockAvailabilityRepository,
    pub hasher: MockPasswordHasher,
    pub clock: MockClock,
}

impl Mocks {
    pub fn at(now: DateTime<Utc>) -> Self {
        let mut mocks = Self::default();
        mocks.clock.expect_now().return_const(now);
        mocks
    }

    pub fn build(self) -> Adapters<MockPorts> {
        Adapters {
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            doctors: Arc::new(self.doctors),
            slots: Arc::new(self.slots),
            appointments: Arc::new(self.appointments),
            payments: Arc::new(self.payments),
            gateway: Arc::new(self.gateway),
            idempotency: Arc::new(self.idempotency),
            records: Arc::new(self.records),
            waitlist: Arc::new(self.waitlist),
            availability: Arc::new(self.availability),
            hasher: Arc::new(self.hasher),
            clock: Arc::new(self.clock),
        }
    }
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn block_on<F: Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

pub fn free_slot(starts_in: TimeDelta) -> Slot {
    Slot {
        id: SlotId::new(),
        doctor_id: UserId::new(),
        starts_at: now() + starts_in,
        ends_at: now() + starts_in + TimeDelta::minutes(30),
        status: SlotStatus::Free,
        held_by: None,
        held_until: None,
    }
}

pub fn booking_for(new: &NewBooking, slot: &Slot) -> Booking {
    Booking {
        appointment: Appointment {
            id: new.appointment_id,
            patient_id: new.patient_id,
            doctor_id: slot.doctor_id,
            slot_id: slot.id,
            starts_at: slot.starts_at,
            ends_at: slot.ends_at,
            reason: new.reason.clone(),
            status: AppointmentStatus::Booked,
            cancel_reason: None,
            cancelled_at: None,
            created_at: now(),
        },
        payment: Payment {
            id: new.payment_id,
            appointment_id: new.appointment_id,
            amount: Money {
                amount_cents: 5000,
                currency: "EUR".into(),
            },
            status: PaymentStatus::Pending,
            refunded_cents: 0,
            paid_at: None,
            created_at: now(),
        },
    }
}
