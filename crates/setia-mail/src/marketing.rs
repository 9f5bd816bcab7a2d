//! The marketing cap at delivery (DESIGN §8): a customer gets at most one marketing email per
//! `marketing_cap_days`, none while a complaint of theirs is open, and one held back by the
//! cap waits (`deferred`) for its next slot in marketing hours. Decided when a batch is sent,
//! from what was really sent, so a deferral or a failure never uses up the slot.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use setia_core::feedback::marketing_slot;
use setia_core::{CustomerId, MerchantId, MerchantTimezone};
use setia_store::mail::{ClaimedEmail, DeliveryOutcome};
use setia_store::{Store, StoreResult};

use crate::schedule;

/// One merchant's batch as the cap sees it.
pub(crate) struct MarketingGate {
    cap_days: u32,
    zone: MerchantTimezone,
    open_complaints: HashSet<CustomerId>,
    /// When each customer was last sent marketing email, this batch's sends included.
    last_sent: HashMap<CustomerId, DateTime<Utc>>,
}

impl MarketingGate {
    /// Reads what the batch's marketing rows need; nothing when it has none.
    pub(crate) async fn load(
        store: &dyn Store,
        merchant: &MerchantId,
        cap_days: u32,
        zone: MerchantTimezone,
        rows: &[ClaimedEmail],
    ) -> StoreResult<MarketingGate> {
        let customers: Vec<CustomerId> = rows
            .iter()
            .filter(|row| row.kind.is_marketing())
            .filter_map(|row| row.customer)
            .collect();
        let (open_complaints, last_sent) = if customers.is_empty() {
            (HashSet::new(), HashMap::new())
        } else {
            (
                store
                    .customers_with_open_complaints(merchant, &customers)
                    .await?,
                store.last_marketing_sent(merchant, &customers).await?,
            )
        };
        Ok(MarketingGate {
            cap_days,
            zone,
            open_complaints,
            last_sent,
        })
    }

    /// `None` when a marketing email may go to `customer` at `now`; otherwise its outcome:
    /// suppressed for an open complaint, deferred to the cap's next slot.
    pub(crate) fn hold(&self, customer: CustomerId, now: DateTime<Utc>) -> Option<DeliveryOutcome> {
        if self.open_complaints.contains(&customer) {
            return Some(DeliveryOutcome::Suppressed {
                reason: "the customer has an open complaint".into(),
            });
        }
        let slot = marketing_slot(self.cap_days, self.last_sent.get(&customer).copied(), now);
        (slot > now).then(|| DeliveryOutcome::Deferred {
            until: schedule::marketing_hours(self.zone, slot),
            reason: format!(
                "marketing cap: one marketing email per {} days",
                self.cap_days
            ),
        })
    }

    /// Counts a marketing email about to be sent against the cap.
    pub(crate) fn sending(&mut self, customer: CustomerId, now: DateTime<Utc>) {
        self.last_sent.insert(customer, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_cap_defers_to_the_next_slot_in_marketing_hours_and_complaints_suppress() {
        let (ani, budi, citra) = (
            CustomerId::from_key(1),
            CustomerId::from_key(2),
            CustomerId::from_key(3),
        );
        let mut gate = MarketingGate {
            cap_days: 3,
            zone: MerchantTimezone::parse("Asia/Jakarta").unwrap(),
            open_complaints: [citra].into_iter().collect(),
            // Budi's last one went on 12 March at 21:00 in Jakarta.
            last_sent: [(budi, at("2027-03-12T14:00:00Z"))].into_iter().collect(),
        };
        let now = at("2027-03-14T03:00:00Z");
        assert_eq!(gate.hold(ani, now), None);
        // Three days after 21:00 is 21:00 on the 15th: night, so 09:00 on the 16th.
        match gate.hold(budi, now) {
            Some(DeliveryOutcome::Deferred { until, reason }) => {
                assert_eq!(until, at("2027-03-16T02:00:00Z"));
                assert!(reason.contains("3 days"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            gate.hold(citra, now),
            Some(DeliveryOutcome::Suppressed { .. })
        ));
        // A send in this batch counts for the next row of the same customer.
        gate.sending(ani, now);
        assert!(matches!(
            gate.hold(ani, now),
            Some(DeliveryOutcome::Deferred { .. })
        ));
        gate.cap_days = 0;
        assert_eq!(gate.hold(budi, now), None, "no cap");
    }

    #[test]
    fn feedback_win_back_tier_nudges_and_campaigns_are_marketing_and_the_rest_is_not() {
        use setia_store::mail::OutboxKind;
        let marketing: Vec<OutboxKind> = OutboxKind::ALL
            .into_iter()
            .filter(|kind| kind.is_marketing())
            .collect();
        assert_eq!(
            marketing,
            vec![
                OutboxKind::FeedbackRequest,
                OutboxKind::Winback,
                OutboxKind::TierNudge,
                OutboxKind::Campaign
            ],
            "thank-you, birthday, reward, tier welcome and merchant emails are exempt from the cap"
        );
    }
}
