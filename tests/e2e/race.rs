//! Concurrency for real: many clients booking the same slots at once through the API.
//! These fail without the exclusion constraints (see the adapter test
//! `without_the_exclusion_constraints_the_same_calls_double_book`).

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Server, later};

async fn patients(server: &Server, n: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(server.patient().await.0);
    }
    tokens
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_clients_one_slot_exactly_one_booking() {
    let server = std::sync::Arc::new(Server::start().await);
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let slot = server
        .slots(&doctor, &doctor_id, &[later(20)])
        .await
        .remove(0);
    let tokens = patients(&server, 64).await;

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let attempts: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (server, barrier, slot) = (server.clone(), barrier.clone(), slot.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                server
                    .post("/appointments", Some(&token), json!({"slot_id": slot}))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut conflicts = 0;
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT if body["code"] == "slot_unavailable" => conflicts += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, conflicts), (1, 63));
    assert_eq!(
        server.count("SELECT count(*) AS n FROM appointments").await,
        1
    );
    assert!(server.violations().await.is_empty());
    assert!(server.shms_check());
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_slots_twenty_clients_each_exactly_twenty_bookings() {
    let server = std::sync::Arc::new(Server::start().await);
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let starts: Vec<_> = (0..20).map(later).collect();
    let slots = server.slots(&doctor, &doctor_id, &starts).await;
    let tokens = patients(&server, 20).await;

    // every client tries every slot, all at once: 400 attempts, 20 per slot
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len() * slots.len()));
    let mut attempts = Vec::new();
    for token in &tokens {
        for slot in &slots {
            let (server, barrier, token, slot) =
                (server.clone(), barrier.clone(), token.clone(), slot.clone());
            attempts.push(tokio::spawn(async move {
                barrier.wait().await;
                let (status, body) = server
                    .post("/appointments", Some(&token), json!({"slot_id": slot}))
                    .await;
                (slot, status, body)
            }));
        }
    }
    let mut winners = std::collections::HashMap::new();
    for attempt in attempts {
        let (slot, status, body) = attempt.await.unwrap();
        match status {
            StatusCode::CREATED => *winners.entry(slot).or_insert(0) += 1,
            StatusCode::CONFLICT if body["code"] == "slot_unavailable" => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 20, "every slot booked");
    assert!(
        winners.values().all(|n| *n == 1),
        "a slot booked twice: {winners:?}"
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM appointments WHERE status = 'booked'")
            .await,
        20
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM slots WHERE status = 'busy'")
            .await,
        20
    );
    assert!(server.violations().await.is_empty());
    assert!(server.shms_check());
}
