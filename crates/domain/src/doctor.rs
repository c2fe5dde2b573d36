//! Doctors: accounts with a public profile (specialty, licence, consultation fee).

use crate::actor::Actor;
use crate::error::{Conflict, StoreError};
use crate::ids::UserId;
use crate::page::{Page, PageRequest};
use crate::payment::Money;
use crate::ports::{DoctorRepository, PasswordHasher};
use crate::services::{Adapters, Ports};
use crate::user::{Email, FullName, NewUser, Password, Role};

/// A doctor's public profile. The id is the doctor's user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doctor {
    /// The doctor's user id.
    pub id: UserId,
    /// Display name.
    pub full_name: String,
    /// Medical specialty, e.g. "Cardiology".
    pub specialty: String,
    /// Licence number, unique across doctors.
    pub license_number: String,
    /// Fee charged per appointment.
    pub consultation_fee: Money,
    /// Whether the doctor currently takes patients.
    pub active: bool,
    /// A short biography.
    pub bio: Option<String>,
}

/// A validated request to create a doctor account.
#[derive(Debug, Clone)]
pub struct CreateDoctor {
    /// Login e-mail.
    pub email: Email,
    /// Initial password.
    pub password: Password,
    /// Display name.
    pub full_name: FullName,
    /// Specialty (1..=100 characters).
    pub specialty: String,
    /// Licence number (1..=64 characters).
    pub license_number: String,
    /// Consultation fee.
    pub consultation_fee: Money,
    /// Optional biography.
    pub bio: Option<String>,
}

/// What the repository stores for a new doctor.
#[derive(Debug, Clone)]
pub struct NewDoctor {
    /// The account, role `doctor`.
    pub user: NewUser,
    /// Specialty.
    pub specialty: String,
    /// Licence number.
    pub license_number: String,
    /// Consultation fee.
    pub consultation_fee: Money,
    /// Biography.
    pub bio: Option<String>,
}

/// Filters of the doctor list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorFilter {
    /// Exact specialty, case-insensitive.
    pub specialty: Option<String>,
    /// Part of the name, case-insensitive.
    pub name_contains: Option<String>,
}

/// Why a doctor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// No such doctor.
    #[error("doctor not found")]
    NotFound,
    /// Only administrators create doctors.
    #[error("only administrators may do this")]
    Forbidden,
    /// The e-mail or licence number is in use.
    #[error(transparent)]
    Conflict(Conflict),
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DoctorError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            other => Self::Store(other),
        }
    }
}

/// Doctor accounts and the public directory.
pub struct DoctorService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> DoctorService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    /// Creates a doctor account and profile (administrators only).
    ///
    /// # Errors
    /// `Forbidden` for non-admins; `Conflict(EmailTaken | LicenseTaken)`.
    pub async fn create(
        &self,
        actor: &Actor,
        request: CreateDoctor,
    ) -> Result<Doctor, DoctorError> {
        if !actor.is_admin() {
            return Err(DoctorError::Forbidden);
        }
        let password_hash = self
            .adapters
            .hasher
            .hash(request.password.expose().to_owned())
            .await?;
        let doctor = NewDoctor {
            user: NewUser {
                id: UserId::new(),
                email: request.email,
                password_hash,
                full_name: request.full_name,
                role: Role::Doctor,
            },
            specialty: request.specialty,
            license_number: request.license_number,
            consultation_fee: request.consultation_fee,
            bio: request.bio,
        };
        Ok(self.adapters.doctors.create(doctor).await?)
    }

    /// One doctor's public profile (anyone).
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get(&self, id: UserId) -> Result<Doctor, DoctorError> {
        Ok(self.adapters.doctors.get(id).await?)
    }

    /// The directory, by name (anyone).
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn list(
        &self,
        filter: DoctorFilter,
        page: PageRequest,
    ) -> Result<Page<Doctor>, DoctorError> {
        Ok(self.adapters.doctors.list(filter, page).await?)
    }
}
