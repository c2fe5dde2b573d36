//! The bundle of adapters a deployment plugs in, and the services built on them.

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::appointment::{AppointmentService, CancellationPolicy};
use crate::auth::{AuthService, SessionPolicy};
use crate::availability::AvailabilityService;
use crate::clock::Clock;
use crate::doctor::DoctorService;
use crate::idempotency::IdempotencyService;
use crate::payment::PaymentService;
use crate::ports::{
    AppointmentRepository, AvailabilityRepository, DoctorRepository, IdempotencyRepository,
    PasswordHasher, PaymentGateway, PaymentRepository, RecordRepository, SessionRepository,
    SlotRepository, UserRepository, WaitlistRepository,
};
use crate::records::RecordService;
use crate::slot::{HoldPolicy, SlotService};
use crate::waitlist::WaitlistService;

/// The adapters of one deployment, as associated types so services stay generic (no `dyn`)
/// and tests can plug in mocks.
pub trait Ports: Send + Sync + 'static {
    /// Accounts.
    type Users: UserRepository;
    /// Sessions.
    type Sessions: SessionRepository;
    /// Doctors.
    type Doctors: DoctorRepository;
    /// Slots.
    type Slots: SlotRepository;
    /// Appointments (with the payment created at booking).
    type Appointments: AppointmentRepository;
    /// Payments and their ledger.
    type Payments: PaymentRepository;
    /// The payment provider.
    type Gateway: PaymentGateway;
    /// Idempotency keys.
    type Idempotency: IdempotencyRepository;
    /// Medical records and the audit trail.
    type Records: RecordRepository;
    /// The waitlist and the notifications outbox.
    type Waitlist: WaitlistRepository;
    /// Weekly schedules and time off.
    type Availability: AvailabilityRepository;
    /// Password hashing.
    type Hasher: PasswordHasher;
    /// Time.
    type Clock: Clock;
}

/// Tunable policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policies {
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Patient cancellation cut-off.
    pub cancellation: CancellationPolicy,
    /// How long a checkout hold lasts.
    pub holds: HoldPolicy,
}

/// Every use-case service of SHMS, sharing one set of adapters.
pub struct Services<P: Ports> {
    /// Registration, login, sessions.
    pub auth: AuthService<P>,
    /// User administration, profiles, passwords, the session list and account events.
    pub accounts: AccountService<P>,
    /// Doctor accounts and profiles.
    pub doctors: DoctorService<P>,
    /// Slots.
    pub slots: SlotService<P>,
    /// Booking and cancelling.
    pub appointments: AppointmentService<P>,
    /// Paying and refunding.
    pub payments: PaymentService<P>,
    /// Idempotency keys.
    pub idempotency: IdempotencyService<P>,
    /// Medical records, allergies and the access log.
    pub records: RecordService<P>,
    /// The waitlist and notifications.
    pub waitlist: WaitlistService<P>,
    /// Weekly availability and time off.
    pub availability: AvailabilityService<P>,
}

/// The adapters, shared by the services.
pub struct Adapters<P: Ports> {
    /// Accounts.
    pub users: Arc<P::Users>,
    /// Sessions.
    pub sessions: Arc<P::Sessions>,
    /// Doctors.
    pub doctors: Arc<P::Doctors>,
    /// Slots.
    pub slots: Arc<P::Slots>,
    /// Appointments.
    pub appointments: Arc<P::Appointments>,
    /// Payments.
    pub payments: Arc<P::Payments>,
    /// The payment provider.
    pub gateway: Arc<P::Gateway>,
    /// Idempotency keys.
    pub idempotency: Arc<P::Idempotency>,
    /// Medical records and the audit trail.
    pub records: Arc<P::Records>,
    /// The waitlist and the notifications outbox.
    pub waitlist: Arc<P::Waitlist>,
    /// Weekly schedules and time off.
    pub availability: Arc<P::Availability>,
    /// Password hashing.
    pub hasher: Arc<P::Hasher>,
    /// Time.
    pub clock: Arc<P::Clock>,
}

impl<P: Ports> Clone for Adapters<P> {
    fn clone(&self) -> Self {
        Self {
            users: Arc::clone(&self.users),
            sessions: Arc::clone(&self.sessions),
            doctors: Arc::clone(&self.doctors),
            slots: Arc::clone(&self.slots),
            appointments: Arc::clone(&self.appointments),
            payments: Arc::clone(&self.payments),
            gateway: Arc::clone(&self.gateway),
            idempotency: Arc::clone(&self.idempotency),
            records: Arc::clone(&self.records),
            waitlist: Arc::clone(&self.waitlist),
            availability: Arc::clone(&self.availability),
            hasher: Arc::clone(&self.hasher),
            clock: Arc::clone(&self.clock),
        }
    }
}

impl<P: Ports> Services<P> {
    /// Wires every service to the same adapters.
    #[must_use]
    pub fn new(adapters: &Adapters<P>, policies: Policies) -> Self {
        Self {
            auth: AuthService::new(adapters.clone(), policies.sessions),
            accounts: AccountService::new(adapters.clone()),
            doctors: DoctorService::new(adapters.clone()),
            slots: SlotService::new(adapters.clone(), policies.holds),
            appointments: AppointmentService::new(adapters.clone(), policies.cancellation),
            payments: PaymentService::new(adapters.clone()),
            idempotency: IdempotencyService::new(adapters.clone()),
            records: RecordService::new(adapters.clone()),
            waitlist: WaitlistService::new(adapters.clone()),
            availability: AvailabilityService::new(adapters.clone()),
        }
    }
}
