//! Doctor accounts and the public directory.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use shms_domain::StoreError;
use shms_domain::accounts::DoctorUpdate;
use shms_domain::doctor::{Doctor, DoctorFilter, NewDoctor};
use shms_domain::ids::UserId;
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::ports::DoctorRepository;

use crate::rows::DoctorRow;
use crate::schema::{doctors, users};
use crate::sql::lower;
use crate::users::insert_user;
use crate::{PgStore, detached, map_diesel};

/// Escapes LIKE wildcards so a search for "50%" finds the text "50%".
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl DoctorRepository for PgStore {
    async fn create(&self, doctor: NewDoctor) -> Result<Doctor, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let row = conn
                .transaction(async |conn| {
                    insert_user(conn, &doctor.user).await?;
                    diesel::insert_into(doctors::table)
                        .values((
                            doctors::user_id.eq(doctor.user.id.as_uuid()),
                            doctors::specialty.eq(&doctor.specialty),
                            doctors::license_number.eq(&doctor.license_number),
                            doctors::fee_cents.eq(doctor.consultation_fee.amount_cents),
                            doctors::currency.eq(&doctor.consultation_fee.currency),
                            doctors::bio.eq(doctor.bio.as_deref()),
                        ))
                        .returning(DoctorRow::as_returning())
                        .get_result(conn)
                        .await
                })
                .await
                .map_err(map_diesel)?;
            Ok(row.into_doctor(doctor.user.full_name.as_str().to_owned()))
        })
        .await
    }

    async fn get(&self, id: UserId) -> Result<Doctor, StoreError> {
        let mut conn = self.conn().await?;
        let (row, name) = doctors::table
            .inner_join(users::table)
            .filter(doctors::user_id.eq(id.as_uuid()))
            .select((DoctorRow::as_select(), users::full_name))
            .first::<(DoctorRow, String)>(&mut conn)
            .await
            .map_err(map_diesel)?;
        Ok(row.into_doctor(name))
    }

    async fn list(
        &self,
        filter: DoctorFilter,
        page: PageRequest,
    ) -> Result<Page<Doctor>, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = doctors::table
            .inner_join(users::table)
            .select((DoctorRow::as_select(), users::full_name))
            .order((users::full_name.asc(), users::id.asc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(specialty) = filter.specialty {
            query = query.filter(lower(doctors::specialty).eq(specialty.to_lowercase()));
        }
        if let Some(name) = filter.name_contains {
            query = query.filter(users::full_name.ilike(like_pattern(&name)));
        }
        if let Some(Cursor { key, id }) = page.after {
            query = query.filter(
                users::full_name
                    .gt(key.clone())
                    .or(users::full_name.eq(key).and(users::id.gt(id))),
            );
        }
        let rows = query
            .load::<(DoctorRow, String)>(&mut conn)
            .await
            .map_err(map_diesel)?;
        let doctors = rows
            .into_iter()
            .map(|(row, name)| row.into_doctor(name))
            .collect();
        Ok(Page::from_overfetch(
            doctors,
            page.limit,
            |doctor: &Doctor| Cursor {
                key: doctor.full_name.clone(),
                id: doctor.id.as_uuid(),
            },
        ))
    }

    async fn update(&self, update: DoctorUpdate) -> Result<Doctor, StoreError> {
        crate::accounts::update_doctor(self, update).await
    }
}
