//! Accounts and patient profiles.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shms_domain::StoreError;
use shms_domain::accounts::{
    AccountEvent, NewAccountEvent, PasswordChange, ProfileUpdate, StatusChange, StatusOutcome,
    UserFilter,
};
use shms_domain::ids::UserId;
use shms_domain::page::{Page, PageRequest};
use shms_domain::ports::UserRepository;
use shms_domain::user::{Credentials, Email, NewPatient, NewUser, User, UserProfile};

use crate::rows::{DoctorRow, PatientRow, UserRow};
use crate::schema::{doctors, patients, users};
use crate::sql::lower;
use crate::{PgStore, detached, map_diesel};

pub(crate) async fn insert_user(
    conn: &mut AsyncPgConnection,
    user: &NewUser,
) -> QueryResult<UserRow> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(user.id.as_uuid()),
            users::email.eq(user.email.as_str()),
            users::password_hash.eq(&user.password_hash),
            users::role.eq(user.role.as_str()),
            users::full_name.eq(user.full_name.as_str()),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
}

pub(crate) async fn load_profile(
    conn: &mut AsyncPgConnection,
    id: UserId,
) -> Result<UserProfile, StoreError> {
    let (user, patient, doctor) = users::table
        .left_join(patients::table)
        .left_join(doctors::table)
        .filter(users::id.eq(id.as_uuid()))
        .select((
            UserRow::as_select(),
            Option::<PatientRow>::as_select(),
            Option::<DoctorRow>::as_select(),
        ))
        .first::<(UserRow, Option<PatientRow>, Option<DoctorRow>)>(conn)
        .await
        .map_err(map_diesel)?;
    let name = user.full_name.clone();
    Ok(UserProfile {
        user: User::try_from(user)?,
        patient: patient.map(TryInto::try_into).transpose()?,
        doctor: doctor.map(|row| row.into_doctor(name)),
    })
}

impl UserRepository for PgStore {
    async fn create_patient(&self, patient: NewPatient) -> Result<UserProfile, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            conn.transaction(async |conn| {
                insert_user(conn, &patient.user).await?;
                diesel::insert_into(patients::table)
                    .values((
                        patients::user_id.eq(patient.user.id.as_uuid()),
                        patients::date_of_birth.eq(patient.profile.date_of_birth),
                        patients::sex.eq(patient.profile.sex.as_str()),
                        patients::phone.eq(patient.profile.phone.as_deref()),
                    ))
                    .execute(conn)
                    .await
            })
            .await
            .map_err(map_diesel)?;
            load_profile(&mut conn, patient.user.id).await
        })
        .await
    }

    async fn create_user(&self, user: NewUser) -> Result<UserProfile, StoreError> {
        let mut conn = self.conn().await?;
        insert_user(&mut conn, &user).await.map_err(map_diesel)?;
        load_profile(&mut conn, user.id).await
    }

    async fn find_credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        let mut conn = self.conn().await?;
        let found = users::table
            .filter(lower(users::email).eq(email.as_str()))
            .select((UserRow::as_select(), users::password_hash))
            .first::<(UserRow, String)>(&mut conn)
            .await
            .optional()
            .map_err(map_diesel)?;
        found
            .map(|(user, password_hash)| {
                Ok(Credentials {
                    user: user.try_into()?,
                    password_hash,
                })
            })
            .transpose()
    }

    async fn profile(&self, id: UserId) -> Result<UserProfile, StoreError> {
        let mut conn = self.conn().await?;
        load_profile(&mut conn, id).await
    }

    async fn credentials_of(&self, id: UserId) -> Result<Option<Credentials>, StoreError> {
        let mut conn = self.conn().await?;
        let found = users::table
            .filter(users::id.eq(id.as_uuid()))
            .select((UserRow::as_select(), users::password_hash))
            .first::<(UserRow, String)>(&mut conn)
            .await
            .optional()
            .map_err(map_diesel)?;
        found
            .map(|(user, password_hash)| {
                Ok(Credentials {
                    user: user.try_into()?,
                    password_hash,
                })
            })
            .transpose()
    }

    async fn list(&self, filter: UserFilter, page: PageRequest) -> Result<Page<User>, StoreError> {
        crate::accounts::list_users(self, filter, page).await
    }

    async fn set_status(&self, change: StatusChange) -> Result<StatusOutcome, StoreError> {
        crate::accounts::set_status(self, change).await
    }

    async fn update_profile(&self, update: ProfileUpdate) -> Result<UserProfile, StoreError> {
        crate::accounts::update_profile(self, update).await
    }

    async fn change_password(&self, change: PasswordChange) -> Result<u64, StoreError> {
        crate::accounts::change_password(self, change).await
    }

    async fn rehash_password(
        &self,
        id: UserId,
        old_hash: String,
        new_hash: String,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let replaced = diesel::update(
            users::table
                .filter(users::id.eq(id.as_uuid()))
                .filter(users::password_hash.eq(old_hash)),
        )
        .set(users::password_hash.eq(new_hash))
        .execute(&mut conn)
        .await
        .map_err(map_diesel)?;
        Ok(replaced > 0)
    }

    async fn record_event(&self, event: NewAccountEvent) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        crate::accounts::insert_event(&mut conn, &event)
            .await
            .map_err(map_diesel)?;
        Ok(())
    }

    async fn events(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<AccountEvent>, StoreError> {
        crate::accounts::events(self, user, page).await
    }
}
