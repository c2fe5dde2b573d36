//! `docs/erd.md` is generated from the migrated schema and kept true by this test:
//! `SHMS_UPDATE_ERD=1 cargo test -p shms-postgres --test erd` rewrites it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use shms_test_support::TestDb;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    key: String,
}

#[derive(QueryableByName)]
struct Reference {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
}

const COLUMNS: &str = "\
SELECT c.table_name::text, c.column_name::text, replace(c.data_type, ' ', '_')::text AS data_type,
       CASE WHEN EXISTS (SELECT 1 FROM information_schema.key_column_usage k
                           JOIN information_schema.table_constraints t USING (constraint_schema, constraint_name)
                          WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name
                            AND k.column_name = c.column_name) THEN 'PK'
            WHEN EXISTS (SELECT 1 FROM information_schema.key_column_usage k
                           JOIN information_schema.table_constraints t USING (constraint_schema, constraint_name)
                          WHERE t.constraint_type = 'FOREIGN KEY' AND k.table_name = c.table_name
                            AND k.column_name = c.column_name) THEN 'FK'
            ELSE '' END AS key
  FROM information_schema.columns c
 WHERE c.table_schema = 'public' AND c.table_name NOT LIKE '\\_\\_%'
 ORDER BY c.table_name, c.ordinal_position";

const REFERENCES: &str = "\
SELECT DISTINCT child.relname::text AS child, parent.relname::text AS parent
  FROM pg_constraint f
  JOIN pg_class child ON child.oid = f.conrelid
  JOIN pg_class parent ON parent.oid = f.confrelid
  JOIN pg_namespace n ON n.oid = child.relnamespace
 WHERE f.contype = 'f' AND n.nspname = 'public'
 ORDER BY 1, 2";

async fn mermaid() -> String {
    let db = TestDb::new().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    let columns: Vec<Column> = diesel::sql_query(COLUMNS).load(&mut conn).await.unwrap();
    let references: Vec<Reference> = diesel::sql_query(REFERENCES).load(&mut conn).await.unwrap();
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for column in columns {
        tables
            .entry(column.table_name.clone())
            .or_default()
            .push(column);
    }
    let mut out = String::from("erDiagram\n");
    for (table, columns) in &tables {
        let _ = writeln!(out, "    {table} {{");
        for c in columns {
            let _ = writeln!(
                out,
                "        {} {}{}",
                c.data_type,
                c.column_name,
                if c.key.is_empty() {
                    String::new()
                } else {
                    format!(" {}", c.key)
                }
            );
        }
        out.push_str("    }\n");
    }
    for r in references {
        let _ = writeln!(out, "    {} ||--o{{ {} : \"\"", r.parent, r.child);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_erd_in_docs_matches_the_migrated_schema() {
    let generated = mermaid().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/erd.md");
    let document = format!(
        "# Entity-relationship diagram\n\nGenerated from the migrated schema by `crates/postgres/tests/erd.rs` \
         (`SHMS_UPDATE_ERD=1 cargo test -p shms-postgres --test erd` regenerates it; the test fails when it is stale).\n\n\
         ```mermaid\n{generated}```\n"
    );
    if std::env::var("SHMS_UPDATE_ERD").is_ok_and(|v| v == "1") {
        std::fs::write(path, &document).unwrap();
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        current, document,
        "docs/erd.md is stale: run SHMS_UPDATE_ERD=1 cargo test -p shms-postgres --test erd"
    );
}
