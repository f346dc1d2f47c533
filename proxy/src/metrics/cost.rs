//! What the invocations cost in dollars.
//!
//! The ledger ([`crate::cluster::ledger`]) knows what the provider billed:
//! invocations and GB-seconds, by purpose. Turning that into money needs
//! the provider's prices, which differ by region and architecture and
//! change over time, so they are settings (`[pricing]`), defaulting to AWS
//! Lambda's x86 prices.

use serde::{Deserialize, Serialize};

use crate::cluster::ledger::KindTotals;

/// Lambda prices (`[pricing]` in the proxy's settings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pricing {
    /// Dollars per GB-second of billed duration.
    pub usd_per_gb_second: f64,
    /// Dollars per million invocations.
    pub usd_per_million_requests: f64,
}

impl Default for Pricing {
    /// AWS Lambda on x86: $0.0000166667 per GB-second, $0.20 per million
    /// requests.
    fn default() -> Self {
        Pricing {
            usd_per_gb_second: 0.000_016_666_7,
            usd_per_million_requests: 0.20,
        }
    }
}

impl Pricing {
    /// What `totals` cost.
    pub fn cost(&self, totals: &KindTotals) -> f64 {
        totals.gb_seconds * self.usd_per_gb_second
            + totals.invocations as f64 * self.usd_per_million_requests / 1e6
    }

    /// Prices must be finite and not negative.
    pub fn validate(&self) -> Result<(), String> {
        for (name, price) in [
            ("usd_per_gb_second", self.usd_per_gb_second),
            ("usd_per_million_requests", self.usd_per_million_requests),
        ] {
            if !price.is_finite() || price < 0.0 {
                return Err(format!("{name} must be a price of 0 or more, got {price}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_gb_seconds_plus_requests() {
        let totals = KindTotals {
            invocations: 2_000_000,
            gb_seconds: 1000.0,
            ..KindTotals::default()
        };
        let cost = Pricing::default().cost(&totals);
        assert!((cost - (0.016_666_7 + 0.40)).abs() < 1e-12, "{cost}");
        assert_eq!(Pricing::default().cost(&KindTotals::default()), 0.0);
    }

    #[test]
    fn prices_are_settings() {
        let pricing: Pricing = toml::from_str("usd_per_gb_second = 0.0000133334").expect("parse");
        assert_eq!(pricing.usd_per_gb_second, 0.000_013_333_4);
        assert_eq!(pricing.usd_per_million_requests, 0.20);
        assert!(pricing.validate().is_ok());
        let negative = Pricing {
            usd_per_million_requests: -1.0,
            ..Pricing::default()
        };
        assert!(negative.validate().is_err());
        assert!(toml::from_str::<Pricing>("usd = 1").is_err());
    }
}
