//! How often this process runs a scheduler pass that reads much for little news. The
//! scheduler comes round every 30 seconds; the feedback pass (a week of purchases) and the
//! nudge pass (a year of them) look at most once per interval per merchant. Each process
//! keeps its own clock: a restart or a second node looks once more, which the outbox's
//! keys make harmless.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use setia_core::MerchantId;

#[derive(Debug)]
pub(crate) struct PassClock {
    every: TimeDelta,
    last: Mutex<HashMap<MerchantId, DateTime<Utc>>>,
}

impl PassClock {
    pub(crate) fn every(every: TimeDelta) -> PassClock {
        PassClock {
            every,
            last: Mutex::default(),
        }
    }

    /// Whether to look at `now`, noting that this look happens. A clock that went back looks
    /// again.
    pub(crate) fn due(&self, merchant: &MerchantId, now: DateTime<Utc>) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match last.get(merchant) {
            Some(at) if *at <= now && now - *at < self.every => false,
            _ => {
                last.insert(merchant.clone(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merchant_is_looked_at_once_per_interval() {
        let clock = PassClock::every(TimeDelta::minutes(15));
        let merchant = MerchantId::from_random_bytes([1; 20]);
        let t0 = DateTime::parse_from_rfc3339("2027-03-14T02:00:00Z")
            .unwrap()
            .to_utc();
        assert!(clock.due(&merchant, t0));
        assert!(!clock.due(&merchant, t0 + TimeDelta::minutes(14)));
        assert!(clock.due(&merchant, t0 + TimeDelta::minutes(15)));
        assert!(
            clock.due(&merchant, t0),
            "a clock that went back looks again"
        );
        let other = MerchantId::from_random_bytes([2; 20]);
        assert!(clock.due(&other, t0));
    }
}
