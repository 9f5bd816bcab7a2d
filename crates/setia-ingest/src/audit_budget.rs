//! A per-merchant, per-minute budget of rejected calls written to the audit log. Calls over
//! the budget are counted in memory and written as one count per merchant, minute and
//! reason, so a flood of bad calls costs a few rows, not a row each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use setia_store::SuppressedCalls;

/// Calls naming no known merchant share one budget, whatever id they made up.
pub const UNKNOWN_MERCHANT: &str = "(unknown)";

#[derive(Clone)]
pub struct AuditBudget {
    per_minute: u32,
    state: Arc<Mutex<State>>,
    /// Held from taking the counts until they are written, so that a flush waits for a
    /// periodic write already under way instead of finding nothing left to write.
    pub(crate) writing: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct State {
    used: HashMap<(String, DateTime<Utc>), u32>,
    suppressed: HashMap<(String, DateTime<Utc>, String), u64>,
}

fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

impl AuditBudget {
    pub fn new(per_minute: u32) -> AuditBudget {
        AuditBudget {
            per_minute,
            state: Arc::default(),
            writing: Arc::default(),
        }
    }

    /// True when this rejected call may have its own audit row; otherwise it is counted.
    pub fn admit(&self, merchant_key: &str, reason: &str, at: DateTime<Utc>) -> bool {
        let minute = minute_of(at);
        let mut state = self.state.lock().expect("audit budget lock");
        // Budgets of minutes that have passed are no longer needed.
        state.used.retain(|(_, m), _| *m >= minute);
        let used = state
            .used
            .entry((merchant_key.to_owned(), minute))
            .or_insert(0);
        if *used < self.per_minute {
            *used += 1;
            return true;
        }
        *state
            .suppressed
            .entry((merchant_key.to_owned(), minute, reason.to_owned()))
            .or_insert(0) += 1;
        false
    }

    /// The counts gathered since the last call, to be written to the store.
    pub fn take_suppressed(&self) -> Vec<SuppressedCalls> {
        let mut state = self.state.lock().expect("audit budget lock");
        state
            .suppressed
            .drain()
            .map(
                |((merchant, minute_start, reason), count)| SuppressedCalls {
                    merchant,
                    minute_start,
                    reason,
                    count,
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_the_budget_gets_rows_and_the_rest_is_counted() {
        let budget = AuditBudget::new(3);
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 1, 2, 3).unwrap();
        let admitted = (0..10)
            .filter(|_| budget.admit("mer_a", "signature_mismatch", at))
            .count();
        assert_eq!(admitted, 3);
        assert!(
            budget.admit("mer_b", "signature_mismatch", at),
            "budgets are per merchant"
        );
        assert!(
            budget.admit("mer_a", "signature_mismatch", at + TimeDelta::minutes(1)),
            "and per minute"
        );
        let suppressed = budget.take_suppressed();
        assert_eq!(suppressed.len(), 1);
        assert_eq!(suppressed[0].count, 7);
        assert_eq!(
            suppressed[0].minute_start,
            Utc.with_ymd_and_hms(2026, 11, 27, 1, 2, 0).unwrap()
        );
        assert!(budget.take_suppressed().is_empty());
    }
}
