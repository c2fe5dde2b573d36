//! The default payment gateway: a deterministic simulation, so everything runs offline.
//! Test tokens follow the big providers' conventions:
//!
//! | card token | outcome |
//! |---|---|
//! | `tok_visa`, `tok_mastercard` | charged |
//! | `tok_chargeDeclined` | declined (`card_declined`) |
//! | `tok_gateway_error` | provider unavailable, nothing charged |
//! | anything else | invalid token |
//!
//! Like a real provider it is idempotent per key: a repeated key returns the first outcome
//! and never charges twice. A real provider plugs in by implementing `PaymentGateway` and
//! changing one line of `wiring.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shms_domain::ids::AttemptId;
use shms_domain::ports::{ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway};

/// The simulated provider.
#[derive(Clone, Default)]
pub struct SimulatedGateway {
    /// Outcomes by idempotency key: what the provider remembers.
    charges: Arc<Mutex<HashMap<AttemptId, ChargeOutcome>>>,
}

impl SimulatedGateway {
    /// How many distinct charges succeeded (for tests: "charged at most once").
    #[cfg(test)]
    #[must_use]
    pub fn successful_charges(&self) -> usize {
        self.charges
            .lock()
            .map(|charges| {
                charges
                    .values()
                    .filter(|c| matches!(c, ChargeOutcome::Succeeded { .. }))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        let mut charges = self
            .charges
            .lock()
            .map_err(|_| GatewayError::Unavailable("simulator poisoned".into()))?;
        if let Some(previous) = charges.get(&request.idempotency_key) {
            return Ok(previous.clone());
        }
        let outcome = match request.card_token.as_str() {
            "tok_visa" | "tok_mastercard" => ChargeOutcome::Succeeded {
                reference: format!("sim_ch_{}", request.idempotency_key.as_uuid().simple()),
            },
            "tok_chargeDeclined" => ChargeOutcome::Declined {
                reason: "card_declined".into(),
            },
            "tok_gateway_error" => {
                return Err(GatewayError::Unavailable(
                    "simulated provider outage".into(),
                ));
            }
            _ => return Err(GatewayError::InvalidToken),
        };
        charges.insert(request.idempotency_key, outcome.clone());
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use shms_domain::payment::Money;

    use super::*;

    fn charge(key: AttemptId, token: &str) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key,
            amount: Money {
                amount_cents: 5000,
                currency: "EUR".into(),
            },
            card_token: token.into(),
        }
    }

    #[tokio::test]
    async fn outcomes_follow_the_test_tokens_and_keys_charge_once() {
        let gateway = SimulatedGateway::default();
        let key = AttemptId::new();
        let first = gateway.charge(charge(key, "tok_visa")).await;
        assert!(matches!(first, Ok(ChargeOutcome::Succeeded { .. })));
        assert_eq!(gateway.charge(charge(key, "tok_visa")).await, first);
        assert_eq!(gateway.successful_charges(), 1);
        assert!(matches!(
            gateway
                .charge(charge(AttemptId::new(), "tok_chargeDeclined"))
                .await,
            Ok(ChargeOutcome::Declined { .. })
        ));
        assert!(matches!(
            gateway
                .charge(charge(AttemptId::new(), "tok_gateway_error"))
                .await,
            Err(GatewayError::Unavailable(_))
        ));
        assert_eq!(
            gateway.charge(charge(AttemptId::new(), "tok_bogus")).await,
            Err(GatewayError::InvalidToken)
        );
        assert_eq!(gateway.successful_charges(), 1);
    }
}
