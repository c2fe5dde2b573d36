//! The cross-doctor free-slot search (GET /api/v1/slots) must walk `slots_free_search_idx`
//! in (starts_at, id) order and stop at the LIMIT, not scan the slots table. A calendar of
//! the benchmark's shape (200 doctors, 40 weekdays of 16 half-hour slots, 128,000 slots) is
//! built with plain SQL, analysed, and the plans of the search are checked (docs/scheduling.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture;
use diesel::sql_types::{Json, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// 200 doctors (specialty0 … specialty9) and 40 weekdays × 16 slots each from next Monday
/// 09:00 UTC, so that every slot lies in the future.
const CALENDAR: &str = "
BEGIN;
CREATE TEMP TABLE plan_doctors ON COMMIT DROP AS
SELECT d, gen_random_uuid() AS id FROM generate_series(0, 199) AS d;
INSERT INTO users (id, email, password_hash, role, full_name)
SELECT id, 'plan-doctor' || d || '@example.org', '$argon2id$v=19$m=19456,t=2,p=1$not-a-real-hash',
       'doctor', 'Plan Doctor ' || d
  FROM plan_doctors;
INSERT INTO doctors (user_id, specialty, license_number, fee_cents, currency)
SELECT id, 'specialty' || (d % 10), 'PLAN-' || d, 5000, 'EUR' FROM plan_doctors;
-- no time off exists here, so the per-row time-off check (an advisory lock and a lookup
-- for each slot, most of the insert's time) can be skipped; it is switched back on below
ALTER TABLE slots DISABLE TRIGGER slots_block_in_time_off;
INSERT INTO slots (id, doctor_id, starts_at, ends_at)
SELECT gen_random_uuid(), pd.id, at, at + interval '30 minutes'
  FROM generate_series(0, 40 * 16 - 1) AS t
 CROSS JOIN plan_doctors pd
 CROSS JOIN LATERAL (
       SELECT (date_trunc('week', now() AT TIME ZONE 'UTC')::date + 7 + ((t / 16) / 5) * 7 + (t / 16) % 5)::timestamp
              AT TIME ZONE 'UTC' + interval '9 hours' + (t % 16) * interval '30 minutes' AS at) AS s;
ALTER TABLE slots ENABLE TRIGGER slots_block_in_time_off;
COMMIT;
ANALYZE users;
ANALYZE doctors;
ANALYZE slots;
CREATE FUNCTION plan_of(query text) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN plan;
END $$;
";

/// The statement `SlotRepository::search` sends (crates/postgres/src/slots.rs), with the
/// specialty, `to` and cursor conditions it adds when they are given; `from` is next Monday.
fn search_sql(specialty: Option<&str>, days: u32, cursor: bool) -> String {
    let monday =
        "(date_trunc('week', now() AT TIME ZONE 'UTC')::date + 7)::timestamp AT TIME ZONE 'UTC'";
    let mut sql = format!(
        "SELECT s.id, s.doctor_id, s.starts_at, s.ends_at, s.status, s.held_by, s.held_until \
           FROM slots s JOIN doctors d ON s.doctor_id = d.user_id \
          WHERE s.status = 'free' \
            AND s.starts_at >= {monday} \
            AND s.starts_at > CURRENT_TIMESTAMP \
            AND (s.held_until IS NULL OR s.held_until <= CURRENT_TIMESTAMP) \
            AND d.active = true"
    );
    if let Some(specialty) = specialty {
        sql.push_str(&format!(" AND lower(d.specialty) = lower('{specialty}')"));
    }
    sql.push_str(&format!(
        " AND s.starts_at < {monday} + interval '{days} days'"
    ));
    if cursor {
        let key = format!("{monday} + interval '1 day 10 hours'");
        sql.push_str(&format!(
            " AND s.starts_at >= {key} AND (s.starts_at > {key} OR (s.starts_at = {key} \
                  AND s.id > '80000000-0000-4000-8000-000000000000'))"
        ));
    }
    sql.push_str(" ORDER BY s.starts_at, s.id LIMIT 51");
    sql
}

#[derive(diesel::QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Json)]
    plan: serde_json::Value,
}

async fn plan_of(conn: &mut AsyncPgConnection, sql: &str) -> serde_json::Value {
    diesel::sql_query("SELECT plan_of($1) AS plan")
        .bind::<Text, _>(sql)
        .get_result::<PlanRow>(conn)
        .await
        .expect("EXPLAIN")
        .plan
}

/// Every node of the plan tree, depth first.
fn nodes(plan: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = vec![plan];
    if let Some(children) = plan["Plans"].as_array() {
        for child in children {
            out.extend(nodes(child));
        }
    }
    out
}

fn assert_walks_the_index(plan: &serde_json::Value, what: &str) {
    let root = &plan[0]["Plan"];
    let all = nodes(root);
    let on_slots: Vec<_> = all
        .iter()
        .filter(|node| node["Relation Name"] == "slots")
        .collect();
    assert!(
        on_slots.iter().any(|node| {
            matches!(
                node["Node Type"].as_str(),
                Some("Index Scan" | "Index Only Scan")
            ) && node["Index Name"] == "slots_free_search_idx"
        }),
        "{what}: no index scan of slots_free_search_idx in {plan:#}"
    );
    assert!(
        on_slots.iter().all(|node| node["Node Type"] != "Seq Scan"),
        "{what}: sequential scan of slots in {plan:#}"
    );
    assert!(
        all.iter().all(|node| node["Node Type"] != "Sort"),
        "{what}: the rows are sorted instead of read in index order in {plan:#}"
    );
    assert_eq!(root["Node Type"], "Limit", "{what}: {plan:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_free_slot_search_walks_the_partial_index_in_time_order() {
    let fx = fixture().await;
    let mut conn = fx.db.connect().await.unwrap();
    conn.batch_execute(CALENDAR).await.unwrap();

    let cases = [
        (
            "a specialty over one week",
            search_sql(Some("Specialty3"), 7, false),
        ),
        ("no specialty over eight weeks", search_sql(None, 56, false)),
        (
            "a specialty over the whole calendar",
            search_sql(Some("specialty3"), 400, false),
        ),
        (
            "a cursor-continued page",
            search_sql(Some("specialty3"), 7, true),
        ),
    ];
    for (what, sql) in cases {
        let plan = plan_of(&mut conn, &sql).await;
        assert_walks_the_index(&plan, what);
    }
}
