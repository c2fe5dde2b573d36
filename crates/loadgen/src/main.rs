//! `shms-load`: drives a running SHMS server over HTTP, for `make bench` (throughput and
//! latency of one kind of request) and `make stress` (booking attempts whose every answer is
//! written down, to be compared with what the database holds).
//!
//! It works on the calendar of `sql/bench/generate.sql`, whose ids it computes, and logs
//! each virtual user in once before the clock starts: password hashing is the cost of a
//! login, not of a booking.

mod calendar;
mod client;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::calendar::{Calendar, Rng};
use crate::client::{Call, Client, Failure};
use crate::stats::Stats;

/// HTTP load and fault client for SHMS.
#[derive(Parser)]
#[command(name = "shms-load", version, about)]
struct Cli {
    /// The server (http://host:port).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Requests of one kind for a fixed time; prints a JSON summary.
    Bench(BenchArgs),
    /// Booking attempts with every answer written to a CSV file; prints a JSON summary.
    Stress(StressArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchScenario {
    /// POST /appointments on free slots (each virtual user books its own doctors' slots).
    Book,
    /// GET /slots?specialty=&from=&to= (one weekday, one specialty).
    Search,
    /// GET /doctors/{id}/slots?from=&to=&status=free (one weekday, one doctor).
    DoctorSlots,
    /// POST /auth/login of random patients.
    Login,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, value_enum)]
    scenario: BenchScenario,
    /// Concurrent connections (one virtual user each).
    #[arg(long, default_value_t = 32)]
    connections: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of load before measuring (opens the server's pool connections).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Report the peak resident memory of this process (the server).
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    calendar: Calendar,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StressMode {
    /// `attempts` bookings from all clients on the first `slots` slots of doctor 0.
    Contention,
    /// Each client books its own slots for `duration` seconds, whatever happens to the
    /// server or the database meanwhile.
    Steady,
    /// Each booking carries an Idempotency-Key; the first try is cut off after a few
    /// milliseconds and retried with the same key until it gets an answer.
    Idempotent,
}

#[derive(Args)]
struct StressArgs {
    #[arg(long, value_enum)]
    mode: StressMode,
    #[arg(long, default_value_t = 64)]
    connections: u64,
    /// Contention: booking attempts in all.
    #[arg(long, default_value_t = 10_000)]
    attempts: u64,
    /// Contention: how many slots they compete for.
    #[arg(long, default_value_t = 500)]
    slots: u64,
    /// Steady and idempotent: seconds of load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Per-request timeout in milliseconds (the idempotent mode's first tries use 1-60 ms).
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Also poll GET /health/ready every 100 ms and write its answers (kind `ready`).
    #[arg(long)]
    probe: bool,
    /// Where to write one CSV line per request.
    #[arg(long)]
    outcomes: PathBuf,
    /// Created once every client is logged in and the load starts (for fault scripts).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Steady and idempotent: also stop as soon as this file exists.
    #[arg(long)]
    stop_file: Option<PathBuf>,
    #[command(flatten)]
    calendar: Calendar,
}

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // one thread: the server and PostgreSQL need the other cores more than the client does
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shms-load: {error}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(cli)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shms-load: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<Value, BoxError> {
    let authority = cli
        .base
        .strip_prefix("http://")
        .ok_or("--base must be an http:// URL")?
        .trim_end_matches('/')
        .to_owned();
    match cli.command {
        Command::Bench(args) => bench(Rc::new(authority), args).await,
        Command::Stress(args) => stress(Rc::new(authority), args).await,
    }
}

const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs patient `p` in; retries a few times (the server may be starting).
async fn login(client: &mut Client, calendar: &Calendar, p: u64) -> Result<String, BoxError> {
    let body = json!({"email": calendar.patient_email(p), "password": calendar.password});
    let mut last = String::new();
    for _ in 0..20 {
        match client
            .send(Call::post("/api/v1/auth/login", &body), LOGIN_TIMEOUT)
            .await
        {
            Ok(reply) if reply.status == 200 => {
                return reply.json()["access_token"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "login answer without access_token".into());
            }
            Ok(reply) => last = format!("login of patient {p}: HTTP {}", reply.status),
            Err(failure) => last = format!("login of patient {p}: {failure}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(last.into())
}

/// The doctors whose slots virtual user `v` of `n` books: d ≡ v (mod n). Doctor d's slots
/// are booked as patient d, so no patient is ever in two overlapping appointments and no
/// two users ever want the same slot.
fn own_doctors(calendar: &Calendar, v: u64, n: u64) -> Vec<u64> {
    (0..calendar.doctors).filter(|d| d % n == v).collect()
}

/// What virtual user `v` books next: its i-th booking.
struct OwnSlots {
    doctors: Vec<u64>,
    tokens: Vec<String>,
    next: u64,
}

impl OwnSlots {
    async fn login(
        client: &mut Client,
        calendar: &Calendar,
        v: u64,
        n: u64,
    ) -> Result<Self, BoxError> {
        let doctors = own_doctors(calendar, v, n);
        let mut tokens = Vec::with_capacity(doctors.len());
        for &d in &doctors {
            tokens.push(login(client, calendar, d).await?);
        }
        Ok(Self {
            doctors,
            tokens,
            next: 0,
        })
    }

    /// The next (slot, token), or None when this user's slots are used up.
    fn next(&mut self, calendar: &Calendar) -> Option<(Uuid, usize)> {
        let k = self.doctors.len() as u64;
        if k == 0 {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let t = i / k;
        if t >= calendar.times() {
            return None;
        }
        let which = usize::try_from(i % k).ok()?;
        Some((calendar.slot(t, self.doctors[which]), which))
    }
}

fn check_shape(calendar: &Calendar, connections: u64) -> Result<(), BoxError> {
    if connections == 0 || connections > calendar.doctors || calendar.patients < calendar.doctors {
        return Err("need 0 < connections <= doctors <= patients".into());
    }
    Ok(())
}

async fn bench(authority: Rc<String>, args: BenchArgs) -> Result<Value, BoxError> {
    check_shape(&args.calendar, args.connections)?;
    let calendar = Rc::new(args.calendar.clone());
    let scenario = args.scenario;
    // log everybody in first, concurrently; the clock starts when all are ready
    let mut users = Vec::new();
    for v in 0..args.connections {
        let authority = Rc::clone(&authority);
        let calendar = Rc::clone(&calendar);
        let n = args.connections;
        users.push(tokio::task::spawn_local(async move {
            let mut client = Client::new(&authority);
            let own = if scenario == BenchScenario::Book {
                Some(OwnSlots::login(&mut client, &calendar, v, n).await?)
            } else {
                None
            };
            Ok::<_, BoxError>((client, own))
        }));
    }
    let mut ready = Vec::new();
    for user in users {
        ready.push(user.await??);
    }
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(args.warmup);
    let until = measure_from + Duration::from_secs(args.duration);
    // CPU of the server and the database over the measured window only (not the logins)
    let cpu_at_start = args.server_pid.map(|pid| {
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            stats::cpu_seconds(pid)
        })
    });
    let mut tasks = Vec::new();
    for (v, (mut client, mut own)) in (0_u64..).zip(ready) {
        let calendar = Rc::clone(&calendar);
        tasks.push(tokio::task::spawn_local(async move {
            let mut stats = Stats::default();
            let mut rng = Rng::new(v.wrapping_mul(7919).wrapping_add(1));
            let mut exhausted = false;
            while Instant::now() < until {
                let path;
                let body;
                let call = match (scenario, own.as_mut()) {
                    (BenchScenario::Book, Some(own)) => {
                        let Some((slot, which)) = own.next(&calendar) else {
                            exhausted = true;
                            break;
                        };
                        body = json!({"slot_id": slot, "reason": "bench"});
                        Call::post("/api/v1/appointments", &body).bearer(&own.tokens[which])
                    }
                    (BenchScenario::Search, _) => {
                        let day = calendar.day(rng.below(calendar.days()));
                        path = format!(
                            "/api/v1/slots?specialty=specialty{}&from={day}T00:00:00Z&to={}T00:00:00Z&limit=50",
                            rng.below(10),
                            day.succ_opt().unwrap_or(day)
                        );
                        Call::get(&path)
                    }
                    (BenchScenario::DoctorSlots, _) => {
                        let day = calendar.day(rng.below(calendar.days()));
                        path = format!(
                            "/api/v1/doctors/{}/slots?from={day}T00:00:00Z&to={}T00:00:00Z&status=free&limit=50",
                            calendar.doctor(rng.below(calendar.doctors)),
                            day.succ_opt().unwrap_or(day)
                        );
                        Call::get(&path)
                    }
                    (BenchScenario::Login, _) => {
                        let p = rng.below(calendar.patients);
                        body = json!({"email": calendar.patient_email(p), "password": calendar.password});
                        Call::post("/api/v1/auth/login", &body)
                    }
                    (BenchScenario::Book, None) => break,
                };
                let sent = Instant::now();
                let result = client.send(call, Duration::from_secs(10)).await;
                if sent < measure_from {
                    continue;
                }
                match result {
                    Ok(reply) => stats.answered(reply.status, sent.elapsed()),
                    Err(_) => stats.failed(),
                }
            }
            (stats, exhausted)
        }));
    }
    let mut total = Stats::default();
    let mut exhausted = false;
    for task in tasks {
        let (stats, done) = task.await?;
        total.merge(stats);
        exhausted |= done;
    }
    let measured = Instant::now()
        .saturating_duration_since(measure_from)
        .min(Duration::from_secs(args.duration));
    let expected = match scenario {
        BenchScenario::Book => 201,
        _ => 200,
    };
    let mut summary = total.summary(measured, expected);
    summary["scenario"] = json!(match scenario {
        BenchScenario::Book => "book",
        BenchScenario::Search => "search",
        BenchScenario::DoctorSlots => "doctor-slots",
        BenchScenario::Login => "login",
    });
    summary["connections"] = json!(args.connections);
    summary["calendar_exhausted"] = json!(exhausted);
    if let (Some(pid), Some(start)) = (args.server_pid, cpu_at_start) {
        let (server0, postgres0) = start.await?;
        let (server1, postgres1) = stats::cpu_seconds(pid);
        let ok = summary["succeeded"].as_f64().unwrap_or(0.0).max(1.0);
        let per_ok = |cpu: f64| (cpu * 1000.0 / ok * 100.0).round() / 100.0;
        summary["server_cpu_ms_per_ok"] = json!(per_ok(server1 - server0));
        summary["postgres_cpu_ms_per_ok"] = json!(per_ok(postgres1 - postgres0));
    }
    if let Some((peak, now)) = args.server_pid.and_then(stats::memory_kb) {
        summary["server_peak_rss_kb"] = json!(peak);
        summary["server_rss_kb"] = json!(now);
    }
    Ok(summary)
}

/// One request of a stress run, as written to the outcomes file.
struct Outcome {
    kind: &'static str,
    client: u64,
    key: String,
    slot: Option<Uuid>,
    attempt: u32,
    /// 0: no answer (transport error or timeout).
    status: u16,
    code: String,
    appointment: Option<Uuid>,
    started_ms: i64,
    finished_ms: i64,
}

impl Outcome {
    const HEADER: &'static str =
        "kind,client,key,slot_id,attempt,status,code,appointment_id,started_ms,finished_ms";

    fn csv(&self) -> String {
        let opt = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{},{}",
            self.kind,
            self.client,
            self.key,
            opt(self.slot),
            self.attempt,
            self.status,
            self.code,
            opt(self.appointment),
            self.started_ms,
            self.finished_ms
        )
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Books `slot` once; the outcome, with the appointment id of a 201 and the problem code
/// of an error.
async fn book_once(
    client: &mut Client,
    token: &str,
    slot: Uuid,
    key: Option<&str>,
    timeout: Duration,
) -> (u16, String, Option<Uuid>, Result<(), Failure>) {
    let body = json!({"slot_id": slot, "reason": "stress"});
    let mut call = Call::post("/api/v1/appointments", &body).bearer(token);
    if let Some(key) = key {
        call = call.idempotency_key(key);
    }
    match client.send(call, timeout).await {
        Ok(reply) => {
            let json = reply.json();
            let appointment = json["appointment"]["id"]
                .as_str()
                .and_then(|id| id.parse().ok());
            let code = json["code"].as_str().unwrap_or_default().to_owned();
            (reply.status, code, appointment, Ok(()))
        }
        Err(failure) => {
            let code = match failure {
                Failure::Timeout => "client_timeout",
                Failure::Transport(_) => "no_connection",
            };
            (0, code.to_owned(), None, Err(failure))
        }
    }
}

async fn stress(authority: Rc<String>, args: StressArgs) -> Result<Value, BoxError> {
    let calendar = Rc::new(args.calendar.clone());
    let n = args.connections;
    match args.mode {
        StressMode::Contention if args.slots > calendar.times() || n > calendar.patients => {
            return Err(
                "contention needs slots <= slots per doctor and clients <= patients".into(),
            );
        }
        StressMode::Steady | StressMode::Idempotent => check_shape(&calendar, n)?,
        StressMode::Contention => {}
    }
    let timeout = Duration::from_millis(args.timeout_ms);
    let mode = args.mode;
    let mut logins = Vec::new();
    for v in 0..n {
        let authority = Rc::clone(&authority);
        let calendar = Rc::clone(&calendar);
        logins.push(tokio::task::spawn_local(async move {
            let mut client = Client::new(&authority);
            let own = match mode {
                // client v books as patient v, on doctor 0's slots (never overlapping itself)
                StressMode::Contention => OwnSlots {
                    doctors: Vec::new(),
                    tokens: vec![login(&mut client, &calendar, v).await?],
                    next: 0,
                },
                _ => OwnSlots::login(&mut client, &calendar, v, n).await?,
            };
            Ok::<_, BoxError>((client, own))
        }));
    }
    let mut ready = Vec::new();
    for task in logins {
        ready.push(task.await??);
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, b"ready\n")?;
    }
    let until = Instant::now() + Duration::from_secs(args.duration);
    let stop_file = Rc::new(args.stop_file.clone());
    let stopped = move |stop_file: &Option<PathBuf>| {
        Instant::now() >= until || stop_file.as_ref().is_some_and(|path| path.exists())
    };
    let mut tasks = Vec::new();
    for (v, (mut client, mut own)) in (0_u64..).zip(ready) {
        let calendar = Rc::clone(&calendar);
        let stop_file = Rc::clone(&stop_file);
        let attempts = args.attempts / n + u64::from(v < args.attempts % n);
        let pool = args.slots;
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = Rng::new(v.wrapping_mul(104_729).wrapping_add(17));
            let mut outcomes = Vec::new();
            let mut done = 0_u64;
            loop {
                let (slot, which) = match mode {
                    StressMode::Contention => {
                        if done == attempts {
                            break;
                        }
                        (calendar.slot(rng.below(pool), 0), 0)
                    }
                    _ => {
                        if stopped(&stop_file) {
                            break;
                        }
                        match own.next(&calendar) {
                            Some(next) => next,
                            None => break,
                        }
                    }
                };
                done += 1;
                let token = own.tokens[which].clone();
                let key = (mode == StressMode::Idempotent).then(|| Uuid::new_v4().to_string());
                let mut attempt = 0_u32;
                loop {
                    attempt += 1;
                    // the first try of an idempotent booking may give up early, as a client
                    // on a bad network would; the retries wait for the answer
                    let limit = if mode == StressMode::Idempotent && attempt == 1 {
                        Duration::from_millis(1 + rng.below(60))
                    } else {
                        timeout
                    };
                    let started_ms = now_ms();
                    let (status, code, appointment, result) =
                        book_once(&mut client, &token, slot, key.as_deref(), limit).await;
                    outcomes.push(Outcome {
                        kind: "book",
                        client: v,
                        key: key.clone().unwrap_or_default(),
                        slot: Some(slot),
                        attempt,
                        status,
                        code: code.clone(),
                        appointment,
                        started_ms,
                        finished_ms: now_ms(),
                    });
                    let retry = mode == StressMode::Idempotent
                        && attempt < 50
                        && (result.is_err()
                            || code == "idempotency_request_in_progress"
                            || status >= 500);
                    if result.is_err() || status == 503 {
                        // the server or its database is down: do not spin (a 503 comes back
                        // at once, and every try takes a slot of the calendar)
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else if retry {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if !retry {
                        break;
                    }
                }
            }
            outcomes
        }));
    }
    let probe = args.probe.then(|| {
        let authority = Rc::clone(&authority);
        let stop_file = Rc::clone(&stop_file);
        tokio::task::spawn_local(async move {
            let mut client = Client::new(&authority);
            let mut outcomes = Vec::new();
            while !stopped(&stop_file) {
                let started_ms = now_ms();
                let status = match client
                    .send(Call::get("/health/ready"), Duration::from_secs(2))
                    .await
                {
                    Ok(reply) => reply.status,
                    Err(_) => 0,
                };
                outcomes.push(Outcome {
                    kind: "ready",
                    client: 0,
                    key: String::new(),
                    slot: None,
                    attempt: 1,
                    status,
                    code: String::new(),
                    appointment: None,
                    started_ms,
                    finished_ms: now_ms(),
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            outcomes
        })
    });
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    if let Some(probe) = probe {
        all.extend(probe.await?);
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&args.outcomes)?);
    writeln!(file, "{}", Outcome::HEADER)?;
    let mut by_status = serde_json::Map::new();
    for outcome in &all {
        writeln!(file, "{}", outcome.csv())?;
        if outcome.kind == "book" {
            let label = if outcome.code.is_empty() {
                outcome.status.to_string()
            } else {
                format!("{} {}", outcome.status, outcome.code)
            };
            let count = by_status.entry(label).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
        }
    }
    file.flush()?;
    Ok(json!({
        "mode": match mode {
            StressMode::Contention => "contention",
            StressMode::Steady => "steady",
            StressMode::Idempotent => "idempotent",
        },
        "clients": n,
        "requests": all.iter().filter(|o| o.kind == "book").count(),
        "answers": Value::Object(by_status),
    }))
}
