//! Post-purchase feedback email (DESIGN §8, `[feedback]`): the scheduler's pass that turns
//! due purchases into requests, the reminder a sent request schedules, and the contexts of
//! the request a customer gets and of the alert a low score sends the merchant. Who is due is
//! `setia_core::feedback`'s rule; this module only feeds it and writes what it decides.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use setia_core::engagement::EngagementProgram;
use setia_core::feedback::{reminder_due_at, request_decision, RequestCandidate, RequestDecision};
use setia_core::mail_token::FeedbackToken;
use setia_core::{format_rupiah, CustomerId, MerchantTimezone, Money, PurchaseId};
use setia_store::engagement::{
    Complaint, ComplaintStatus, FeedbackAnswer, FeedbackRequest, NewFeedbackRequest,
};
use setia_store::mail::{DeliveryOutcome, FollowUp, MailCustomer, MailMerchant, OutboxKind};

use crate::context::{long_date, Common, FeedbackAlertContext, FeedbackRequestContext, ScoreLink};
use crate::{schedule, MailError, Mailer};

/// How often one process looks for purchases whose request fell due: they are due to the
/// day, and the look reads a week of a merchant's purchases.
pub const FEEDBACK_SCAN_EVERY: TimeDelta = TimeDelta::minutes(15);

/// Candidate purchases read per query.
const CANDIDATE_PAGE: u32 = 5_000;

/// A feedback email's period key: the request, or its reminder.
pub(crate) fn parse_period(period: &str) -> Option<(i64, bool)> {
    let (key, reminder) = match period.strip_suffix("-reminder") {
        Some(key) => (key, true),
        None => (period, false),
    };
    let request: i64 = key.parse().ok()?;
    (request > 0 && request.to_string() == key).then_some((request, reminder))
}

impl Mailer {
    /// Writes the feedback requests due at `now` for one merchant;
    /// returns how many. Each process looks at most every [`FEEDBACK_SCAN_EVERY`].
    pub(crate) async fn schedule_feedback(
        &self,
        mail: &MailMerchant,
        program: &EngagementProgram,
        now: DateTime<Utc>,
    ) -> Result<u64, MailError> {
        let settings = &program.feedback;
        let merchant = &mail.merchant.id;
        if !settings.enabled || mail.merchant.sandbox || !self.feedback_scans.due(merchant, now) {
            return Ok(0);
        }
        let zone = mail.merchant.timezone;
        let (from, until) = schedule::feedback_purchase_window(now, settings.delay_days);
        // Requests decided in this pass, so a customer's second purchase of the week sees the
        // first one's request.
        let mut asked: HashMap<CustomerId, DateTime<Utc>> = HashMap::new();
        let mut after = None;
        let mut written = 0;
        loop {
            let candidates = self
                .store
                .feedback_candidates(merchant, from, until, after, CANDIDATE_PAGE)
                .await?;
            let Some(last) = candidates.last() else {
                break;
            };
            after = Some((last.occurred_at, last.purchase));
            let mut requests = Vec::new();
            for candidate in &candidates {
                let decision = request_decision(
                    settings,
                    &RequestCandidate {
                        purchase_at: candidate.occurred_at,
                        sandbox: candidate.sandbox,
                        reachable: candidate.reachable,
                        last_request_at: candidate
                            .last_request_at
                            .max(asked.get(&candidate.customer).copied()),
                    },
                );
                if let RequestDecision::Due(at) = decision {
                    let due_at = schedule::marketing_hours(zone, at);
                    asked.insert(candidate.customer, due_at);
                    requests.push(NewFeedbackRequest {
                        customer: candidate.customer,
                        purchase: candidate.purchase,
                        kind: settings.kind,
                        due_at,
                    });
                }
            }
            written += self
                .store
                .create_feedback_requests(merchant, &requests, now)
                .await?
                .len() as u64;
            if candidates.len() < CANDIDATE_PAGE as usize {
                break;
            }
        }
        Ok(written)
    }

    /// A request email's context (its links signed at `now`).
    pub(crate) fn feedback_request_context(
        &self,
        mail: &MailMerchant,
        request: &FeedbackRequest,
        reminder: bool,
        customer_name: String,
        common: Common,
        now: DateTime<Utc>,
    ) -> FeedbackRequestContext {
        let token = FeedbackToken::sign(&mail.secret, &mail.merchant.id, request.id, now);
        let page_url = format!("{}/f/{token}", self.config.public_url);
        let (low, high) = request.kind.scale();
        let language = mail.language;
        FeedbackRequestContext {
            common,
            customer_name,
            reminder,
            kind: request.kind.as_str(),
            purchase_day: long_date(
                language,
                mail.merchant.timezone.local_day(request.purchased_at),
            ),
            purchase_amount: format_rupiah(request.purchase_amount),
            scores: (low..=high)
                .map(|score| ScoreLink {
                    score,
                    url: format!("{page_url}?score={score}"),
                })
                .collect(),
            page_url,
        }
    }

    /// The alert of a complaint, for the merchant's report addresses.
    pub(crate) fn feedback_alert_context(
        &self,
        mail: &MailMerchant,
        complaint: &Complaint,
        common: Common,
    ) -> FeedbackAlertContext {
        alert_context(
            &self.config.public_url,
            mail.language,
            mail.merchant.timezone,
            complaint,
            common,
        )
    }
}

fn alert_context(
    public_url: &str,
    language: setia_store::mail::EmailLanguage,
    zone: MerchantTimezone,
    complaint: &Complaint,
    common: Common,
) -> FeedbackAlertContext {
    let answer = &complaint.answer;
    FeedbackAlertContext {
        common,
        customer_name: answer.customer_name.clone(),
        customer_external_id: answer.customer_external_id.clone(),
        kind: answer.kind.as_str(),
        score: answer.score,
        scale_high: answer.kind.scale().1,
        comment: answer.comment.clone(),
        purchase_day: long_date(language, zone.local_day(complaint.purchased_at)),
        purchase_amount: format_rupiah(complaint.purchase_amount),
        complaint_url: format!("{public_url}/dashboard/feedback#complaint-{}", complaint.id),
    }
}

/// The reminder a request email sent at `now` schedules, when the program sends reminders.
pub(crate) fn reminder_of(
    program: &EngagementProgram,
    zone: MerchantTimezone,
    request: &FeedbackRequest,
    now: DateTime<Utc>,
) -> Option<FollowUp> {
    reminder_due_at(&program.feedback, now, request.answer.is_some()).map(|due| FollowUp {
        kind: OutboxKind::FeedbackRequest,
        period_key: format!("{}-reminder", request.id),
        due_at: schedule::marketing_hours(zone, due),
    })
}

/// Why a request email does not go at `now`, if it does not: an answered request needs no
/// more asking, the reminder of a request never sent is moot, and a reminder whose four days
/// since the request are not over (the request itself was deferred) waits.
pub(crate) fn request_hold(
    program: &EngagementProgram,
    zone: MerchantTimezone,
    request: &FeedbackRequest,
    reminder: bool,
    now: DateTime<Utc>,
) -> Option<DeliveryOutcome> {
    let answered = request.answer.is_some();
    let suppressed = |reason: &str| {
        Some(DeliveryOutcome::Suppressed {
            reason: reason.to_owned(),
        })
    };
    if answered {
        return suppressed("the customer answered");
    }
    if !reminder {
        return None;
    }
    let Some(asked_at) = request.asked_at else {
        return suppressed("the request it reminds of was not sent");
    };
    match reminder_due_at(&program.feedback, asked_at, answered) {
        None => suppressed("the program sends no reminders"),
        Some(due) if due > now => Some(DeliveryOutcome::Deferred {
            until: schedule::marketing_hours(zone, due),
            reason: "a reminder waits four days after its request".into(),
        }),
        Some(_) => None,
    }
}

/// A request and the complaint its low answer opened, for previews: request 0, which no
/// merchant has, so the preview's links lead nowhere.
pub(crate) struct Sample {
    pub request: FeedbackRequest,
    pub complaint: Complaint,
}

pub(crate) fn sample(
    program: &EngagementProgram,
    customer: &MailCustomer,
    now: DateTime<Utc>,
) -> Sample {
    let kind = program.feedback.kind;
    let purchased_at = now - TimeDelta::days(i64::from(program.feedback.delay_days));
    let amount = Money::from_minor(12_500_000);
    let answer = FeedbackAnswer {
        id: 0,
        request_id: 0,
        customer_id: customer.id,
        customer_external_id: customer.external_id.clone(),
        customer_name: customer.name.clone(),
        kind,
        score: kind.default_alert().min(kind.scale().0 + 1),
        comment: Some("Paketnya datang terlambat dan kemasannya penyok.".into()),
        answered_at: now,
        updated_at: now,
    };
    Sample {
        request: FeedbackRequest {
            id: 0,
            customer: customer.id,
            customer_external_id: customer.external_id.clone(),
            customer_name: customer.name.clone(),
            purchase: 0,
            purchase_amount: amount,
            purchased_at,
            kind,
            due_at: now,
            asked_at: None,
            answer: None,
        },
        complaint: Complaint {
            id: 0,
            status: ComplaintStatus::Open,
            note: None,
            resolved_by: None,
            resolved_at: None,
            created_at: now,
            updated_at: now,
            answer,
            purchase_id: PurchaseId::from_key(0),
            purchase_amount: amount,
            purchased_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_name_a_request_or_its_reminder() {
        assert_eq!(parse_period("42"), Some((42, false)));
        assert_eq!(parse_period("42-reminder"), Some((42, true)));
        for bad in [
            "",
            "-reminder",
            "042",
            "+42",
            "0",
            "-1",
            "42-reminder-reminder",
            "2027-03-14",
        ] {
            assert_eq!(parse_period(bad), None, "{bad:?}");
        }
    }
}
