//! Latency and status bookkeeping per virtual user, merged at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Default)]
pub struct Stats {
    /// Latency of every answered request, in microseconds.
    latencies_us: Vec<u32>,
    /// Answers by status code.
    statuses: BTreeMap<u16, u64>,
    /// Requests without an answer (transport errors, timeouts).
    failures: u64,
}

impl Stats {
    pub fn answered(&mut self, status: u16, latency: Duration) {
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        *self.statuses.entry(status).or_default() += 1;
    }

    pub fn failed(&mut self) {
        self.failures += 1;
    }

    pub fn merge(&mut self, other: Self) {
        self.latencies_us.extend(other.latencies_us);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.failures += other.failures;
    }

    fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        // nearest rank: the smallest value with at least p of the samples at or below it
        let rank = (p * sorted.len() as f64).ceil() as usize;
        let index = rank.clamp(1, sorted.len()) - 1;
        f64::from(sorted[index]) / 1000.0
    }

    /// The summary of a run that measured for `elapsed`; `ok` is the expected status.
    pub fn summary(mut self, elapsed: Duration, ok: u16) -> Value {
        self.latencies_us.sort_unstable();
        let answered = self.latencies_us.len() as u64;
        let succeeded = self.statuses.get(&ok).copied().unwrap_or(0);
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "requests": answered + self.failures,
            "succeeded": succeeded,
            "errors": answered - succeeded + self.failures,
            "no_answer": self.failures,
            "statuses": self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "seconds": round(seconds),
            "rps": round(answered as f64 / seconds),
            "ok_rps": round(succeeded as f64 / seconds),
            "p50_ms": round(Self::percentile_ms(&self.latencies_us, 0.50)),
            "p90_ms": round(Self::percentile_ms(&self.latencies_us, 0.90)),
            "p99_ms": round(Self::percentile_ms(&self.latencies_us, 0.99)),
            "max_ms": round(Self::percentile_ms(&self.latencies_us, 1.0)),
        })
    }
}

/// The server's peak and current resident set (kB), from /proc/<pid>/status.
pub fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// CPU seconds (user + system) used so far by one process, and by all processes named
/// `postgres` (the database's backends), from /proc.
pub fn cpu_seconds(pid: u32) -> (f64, f64) {
    fn used(stat: &str) -> Option<(&str, f64)> {
        let comm = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?;
        let mut fields = stat
            .get(stat.rfind(')')? + 2..)?
            .split_whitespace()
            .skip(11);
        let user: f64 = fields.next()?.parse().ok()?;
        let system: f64 = fields.next()?.parse().ok()?;
        // USER_HZ is 100 on every Linux this runs on
        Some((comm, (user + system) / 100.0))
    }
    let read = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let server = read(&pid.to_string())
        .as_deref()
        .and_then(used)
        .map_or(0.0, |(_, cpu)| cpu);
    let postgres = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| read(&entry.file_name().to_string_lossy()))
        .filter_map(|stat| {
            used(&stat)
                .filter(|(comm, _)| *comm == "postgres")
                .map(|(_, cpu)| cpu)
        })
        .sum();
    (server, postgres)
}
