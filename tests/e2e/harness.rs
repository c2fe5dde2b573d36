//! Starts the real `shms` binary on a private database and talks to it over HTTP.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shms_test_support::TestDb;

pub const ADMIN_EMAIL: &str = "admin@e2e.test";
pub const PASSWORD: &str = "e2e-password-long-enough";

pub struct Server {
    child: Child,
    pub base: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub log: std::path::PathBuf,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await.expect("test database");
        let port = free_port();
        let log = std::env::temp_dir().join(format!("shms-e2e-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_shms"))
            .arg("serve")
            .env("DATABASE_URL", db.url())
            .env("SHMS_BIND", format!("127.0.0.1:{port}"))
            .env("SHMS_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("SHMS_ADMIN_PASSWORD", PASSWORD)
            .env("SHMS_DB_POOL_SIZE", "24")
            .env("RUST_LOG", "warn")
            .env("SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE", "100000")
            .env("SHMS_LOGIN_PER_ADDRESS_PER_MINUTE", "100000")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn shms");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            db,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .build()
                .expect("client"),
            log,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = self
                .client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await;
            if ready.is_ok_and(|response| response.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("server did not become ready:\n{log}");
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("json body")
        };
        (status, value)
    }

    /// POSTs with an `Idempotency-Key`; also returns whether the answer was a replay.
    pub async fn post_keyed(
        &self,
        path: &str,
        token: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value, bool) {
        let response = self
            .client
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let retry_after = response.headers().get("retry-after").is_some();
        let bytes = response.bytes().await.expect("body");
        let mut value: Value = serde_json::from_slice(&bytes).expect("json body");
        if retry_after {
            value["__retry_after"] = Value::Bool(true);
        }
        (status, value, replayed)
    }

    /// Books a slot for a patient; returns (appointment id, payment id).
    pub async fn book(&self, token: &str, slot: &str) -> (String, String) {
        let (status, body) = self
            .post("/appointments", Some(token), json!({"slot_id": slot}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["appointment"]["id"].as_str().expect("id").to_owned(),
            body["payment"]["id"].as_str().expect("id").to_owned(),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN_EMAIL, PASSWORD).await
    }

    /// Registers and logs in a new patient; returns (token, id).
    pub async fn patient(&self) -> (String, String) {
        let email = format!("patient-{}@e2e.test", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": "Pat Ient",
                       "date_of_birth": "1990-04-01", "sex": "female"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        (self.login(&email, PASSWORD).await, id)
    }

    /// Creates a doctor (fee 50.00 EUR) and logs them in; returns (token, id).
    pub async fn doctor(&self, admin: &str) -> (String, String) {
        let email = format!("doctor-{}@e2e.test", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .post(
                "/doctors",
                Some(admin),
                json!({"email": email, "password": PASSWORD, "full_name": "Doc Tor", "specialty": "Cardiology",
                       "license_number": format!("LIC-{}", uuid::Uuid::new_v4().simple()),
                       "consultation_fee": {"amount_cents": 5000, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        (self.login(&email, PASSWORD).await, id)
    }

    /// Creates 30-minute slots at the given starts; returns their ids.
    pub async fn slots(&self, token: &str, doctor: &str, starts: &[DateTime<Utc>]) -> Vec<String> {
        let slots: Vec<Value> = starts
            .iter()
            .map(|start| json!({"starts_at": start, "ends_at": *start + Duration::minutes(30)}))
            .collect();
        let (status, body) = self
            .post(
                &format!("/doctors/{doctor}/slots"),
                Some(token),
                json!({"slots": slots}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_owned())
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.db.connect().await.expect("connect");
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .await
            .expect("count query")
            .n
    }

    pub async fn violations(&self) -> Vec<shms_postgres::invariants::Violation> {
        shms_postgres::invariants::check(self.db.url())
            .await
            .expect("invariants")
    }

    /// Runs `shms check` against this server's database; returns its exit success.
    pub fn shms_check(&self) -> bool {
        Command::new(env!("CARGO_BIN_EXE_shms"))
            .arg("check")
            .env("DATABASE_URL", self.db.url())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Sends SIGTERM; returns whether it was delivered.
    pub fn terminate(&self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits for the process to exit; its exit code, or `None` on timeout or signal death.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Asserts a problem+json answer with a status and code.
pub fn assert_problem(status: StatusCode, body: &Value, expected_status: StatusCode, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected_status.as_u16(), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(),
        "{body}"
    );
}

/// The n-th half hour from midnight UTC three days ahead: well beyond the cancellation cut-off.
pub fn later(half_hours: i64) -> DateTime<Utc> {
    let midnight = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    midnight + Duration::days(3) + Duration::minutes(30 * half_hours)
}

/// Whole minutes from now, for slots inside the cancellation cut-off.
pub fn soon(minutes: i64) -> DateTime<Utc> {
    let now = Utc::now();
    now - Duration::seconds(i64::from(chrono::Timelike::second(&now))) + Duration::minutes(minutes)
}
