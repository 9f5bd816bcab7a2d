//! Post-purchase feedback (DESIGN §8, `[feedback]`): the score and comment a customer gives,
//! the rules that decide when a request and its reminder are due, the marketing cap that
//! may defer them, and the satisfaction figures of a set of answers. Pure: the caller brings
//! the facts and the instant.

use chrono::{DateTime, TimeDelta, Utc};

use crate::engagement::{FeedbackKind, FeedbackSettings};

/// Days after a request its reminder is due, when it is still unanswered.
pub const REMINDER_AFTER_DAYS: i64 = 4;

/// The longest comment a customer may leave.
pub const MAX_COMMENT_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    #[error("score {0:?} is not a whole number")]
    NotANumber(String),
    #[error("score {score} is outside the {low}–{high} scale")]
    OutOfScale { score: i64, low: u8, high: u8 },
    #[error("is {0} characters long; at most {MAX_COMMENT_CHARS} are kept")]
    CommentTooLong(usize),
    #[error("holds a control character")]
    ControlCharacter,
}

/// A score on the program's scale (CSAT 1–5, NPS 0–10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedbackScore(u8);

impl FeedbackScore {
    pub fn parse(kind: FeedbackKind, text: &str) -> Result<FeedbackScore, FeedbackError> {
        let score: i64 = text
            .trim()
            .parse()
            .map_err(|_| FeedbackError::NotANumber(text.chars().take(20).collect()))?;
        Self::new(kind, score)
    }

    pub fn new(kind: FeedbackKind, score: i64) -> Result<FeedbackScore, FeedbackError> {
        let (low, high) = kind.scale();
        if score < i64::from(low) || score > i64::from(high) {
            return Err(FeedbackError::OutOfScale { score, low, high });
        }
        Ok(FeedbackScore(score as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// Whether this answer, given on `kind`'s scale, opens a complaint: at or below the
    /// program's level when the program asks on that scale, else the scale's default (the
    /// program changed scale after the request was sent).
    pub fn alerts(self, kind: FeedbackKind, settings: &FeedbackSettings) -> bool {
        let level = if settings.kind == kind {
            settings.alert_level()
        } else {
            kind.default_alert()
        };
        self.0 <= level
    }
}

/// A customer's comment: at most [`MAX_COMMENT_CHARS`] characters, line breaks and tabs
/// allowed, other control characters not; surrounding blanks trimmed; empty is no comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackComment(String);

impl FeedbackComment {
    pub fn parse(text: &str) -> Result<Option<FeedbackComment>, FeedbackError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let chars = text.chars().count();
        if chars > MAX_COMMENT_CHARS {
            return Err(FeedbackError::CommentTooLong(chars));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(FeedbackError::ControlCharacter);
        }
        Ok(Some(FeedbackComment(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is known of a customer when a purchase could earn a feedback request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCandidate {
    pub purchase_at: DateTime<Utc>,
    /// The purchase is sandbox money, or the merchant is a sandbox merchant.
    pub sandbox: bool,
    /// The customer consented to email and did not unsubscribe.
    pub reachable: bool,
    /// When the customer was last asked, by any request.
    pub last_request_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDecision {
    /// Ask at this instant (the marketing cap may still defer it).
    Due(DateTime<Utc>),
    Skip(SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Disabled,
    Sandbox,
    Unreachable,
    /// Asked less than `resurvey_days` before the request would be due.
    AskedRecently,
}

/// Whether a purchase earns a feedback request, and when: `delay_days` after it, unless the
/// customer was asked within `resurvey_days` of that instant.
pub fn request_decision(
    settings: &FeedbackSettings,
    candidate: &RequestCandidate,
) -> RequestDecision {
    if !settings.enabled {
        return RequestDecision::Skip(SkipReason::Disabled);
    }
    if candidate.sandbox {
        return RequestDecision::Skip(SkipReason::Sandbox);
    }
    if !candidate.reachable {
        return RequestDecision::Skip(SkipReason::Unreachable);
    }
    let due = candidate.purchase_at + TimeDelta::days(i64::from(settings.delay_days));
    let window = TimeDelta::days(i64::from(settings.resurvey_days));
    match candidate.last_request_at {
        Some(last) if due - last < window => RequestDecision::Skip(SkipReason::AskedRecently),
        _ => RequestDecision::Due(due),
    }
}

/// When the reminder of a request sent at `sent_at` is due; `None` when the program sends
/// none or the customer answered.
pub fn reminder_due_at(
    settings: &FeedbackSettings,
    sent_at: DateTime<Utc>,
    answered: bool,
) -> Option<DateTime<Utc>> {
    (settings.reminder && !answered).then(|| sent_at + TimeDelta::days(REMINDER_AFTER_DAYS))
}

/// The first instant at or after `due` when a marketing email may go to a customer whose
/// last one went at `last_marketing_at`: at most one per `cap_days` (0: no cap). Later than
/// `due` means the email waits (status `deferred`), never that it is dropped.
pub fn marketing_slot(
    cap_days: u32,
    last_marketing_at: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
) -> DateTime<Utc> {
    match last_marketing_at {
        Some(last) if cap_days > 0 => due.max(last + TimeDelta::days(i64::from(cap_days))),
        _ => due,
    }
}

/// The headline figure of a set of answers, given as (score, how many): CSAT, the share of
/// 4s and 5s; NPS, the share of promoters (9–10) minus that of detractors (0–6), from -1 to
/// 1. `None` without answers.
pub fn satisfaction(
    kind: FeedbackKind,
    counts: impl IntoIterator<Item = (u8, u64)>,
) -> Option<f64> {
    let (mut all, mut good, mut bad) = (0u64, 0u64, 0u64);
    for (score, n) in counts {
        all += n;
        match kind {
            FeedbackKind::Csat if score >= 4 => good += n,
            FeedbackKind::Nps if score >= 9 => good += n,
            FeedbackKind::Nps if score <= 6 => bad += n,
            _ => {}
        }
    }
    (all > 0).then(|| (good as f64 - bad as f64) / all as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::EngagementProgram;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, day, hour, 0, 0).unwrap()
    }

    fn settings() -> FeedbackSettings {
        EngagementProgram::standard().feedback
    }

    fn candidate(last_request_at: Option<DateTime<Utc>>) -> RequestCandidate {
        RequestCandidate {
            purchase_at: at(10, 14),
            sandbox: false,
            reachable: true,
            last_request_at,
        }
    }

    #[test]
    fn scores_are_read_on_the_programs_scale() {
        assert_eq!(
            FeedbackScore::parse(FeedbackKind::Csat, " 4 ")
                .unwrap()
                .get(),
            4
        );
        assert_eq!(
            FeedbackScore::parse(FeedbackKind::Csat, "0"),
            Err(FeedbackError::OutOfScale {
                score: 0,
                low: 1,
                high: 5
            })
        );
        assert!(FeedbackScore::parse(FeedbackKind::Nps, "0").is_ok());
        assert!(FeedbackScore::parse(FeedbackKind::Nps, "11").is_err());
        assert!(FeedbackScore::parse(FeedbackKind::Nps, "9.5").is_err());
        assert!(FeedbackScore::parse(FeedbackKind::Nps, "<b>").is_err());
        assert!(FeedbackScore::parse(FeedbackKind::Nps, "99999999999999999999").is_err());
    }

    #[test]
    fn low_scores_alert_at_the_programs_level() {
        let csat = settings();
        let score = |n| FeedbackScore::new(FeedbackKind::Csat, n).unwrap();
        assert!(
            score(2).alerts(FeedbackKind::Csat, &csat)
                && !score(3).alerts(FeedbackKind::Csat, &csat)
        );
        let nps = EngagementProgram::from_toml("[feedback]\nkind = \"nps\"\n")
            .unwrap()
            .feedback;
        let score = |n| FeedbackScore::new(FeedbackKind::Nps, n).unwrap();
        assert!(
            score(6).alerts(FeedbackKind::Nps, &nps) && !score(7).alerts(FeedbackKind::Nps, &nps)
        );
    }

    #[test]
    fn comments_are_bounded_and_printable() {
        assert_eq!(FeedbackComment::parse("  \n ").unwrap(), None);
        let kept = FeedbackComment::parse(" Kurirnya telat,\n tapi barang bagus <b> ")
            .unwrap()
            .unwrap();
        assert_eq!(kept.as_str(), "Kurirnya telat,\n tapi barang bagus <b>");
        assert!(FeedbackComment::parse(&"é".repeat(MAX_COMMENT_CHARS)).is_ok());
        assert_eq!(
            FeedbackComment::parse(&"é".repeat(MAX_COMMENT_CHARS + 1)),
            Err(FeedbackError::CommentTooLong(MAX_COMMENT_CHARS + 1))
        );
        assert_eq!(
            FeedbackComment::parse("a\u{0}b"),
            Err(FeedbackError::ControlCharacter)
        );
    }

    #[test]
    fn a_request_is_due_after_the_delay_unless_asked_within_the_window() {
        let s = settings();
        assert_eq!(
            request_decision(&s, &candidate(None)),
            RequestDecision::Due(at(13, 14))
        );
        // Asked 89 days before the due instant: too recent; 90 days: due again.
        let due = at(13, 14);
        assert_eq!(
            request_decision(&s, &candidate(Some(due - TimeDelta::days(89)))),
            RequestDecision::Skip(SkipReason::AskedRecently)
        );
        assert_eq!(
            request_decision(&s, &candidate(Some(due - TimeDelta::days(90)))),
            RequestDecision::Due(due)
        );
    }

    #[test]
    fn sandbox_unreachable_and_disabled_are_never_asked() {
        let s = settings();
        let sandbox = RequestCandidate {
            sandbox: true,
            ..candidate(None)
        };
        assert_eq!(
            request_decision(&s, &sandbox),
            RequestDecision::Skip(SkipReason::Sandbox)
        );
        let unreachable = RequestCandidate {
            reachable: false,
            ..candidate(None)
        };
        assert_eq!(
            request_decision(&s, &unreachable),
            RequestDecision::Skip(SkipReason::Unreachable)
        );
        let off = FeedbackSettings {
            enabled: false,
            ..settings()
        };
        assert_eq!(
            request_decision(&off, &candidate(None)),
            RequestDecision::Skip(SkipReason::Disabled)
        );
    }

    #[test]
    fn one_reminder_after_four_days_when_unanswered() {
        let s = settings();
        assert_eq!(reminder_due_at(&s, at(13, 14), false), Some(at(17, 14)));
        assert_eq!(reminder_due_at(&s, at(13, 14), true), None);
        let quiet = FeedbackSettings {
            reminder: false,
            ..settings()
        };
        assert_eq!(reminder_due_at(&quiet, at(13, 14), false), None);
    }

    #[test]
    fn the_marketing_cap_defers_and_never_drops() {
        assert_eq!(marketing_slot(3, None, at(13, 14)), at(13, 14));
        assert_eq!(
            marketing_slot(3, Some(at(12, 9)), at(13, 14)),
            at(15, 9),
            "one marketing email per 3 days: the next slot"
        );
        assert_eq!(marketing_slot(3, Some(at(1, 9)), at(13, 14)), at(13, 14));
        assert_eq!(marketing_slot(0, Some(at(13, 9)), at(13, 14)), at(13, 14));
    }

    #[test]
    fn csat_and_nps_of_a_set_of_answers() {
        let one_each = |scores: &[u8]| scores.iter().map(|&s| (s, 1)).collect::<Vec<_>>();
        assert_eq!(
            satisfaction(FeedbackKind::Csat, one_each(&[5, 4, 3, 1])),
            Some(0.5)
        );
        assert_eq!(
            satisfaction(FeedbackKind::Csat, [(5, 3), (2, 1)]),
            Some(0.75),
            "counted answers weigh by their count"
        );
        let nps = one_each(&[10, 9, 8, 7, 6, 0, 10, 9, 3, 10]);
        let figure = satisfaction(FeedbackKind::Nps, nps).unwrap();
        assert!((figure - (0.5 - 0.3)).abs() < 1e-12, "{figure}");
        assert_eq!(satisfaction(FeedbackKind::Nps, []), None);
        assert_eq!(satisfaction(FeedbackKind::Csat, [(5, 0)]), None);
    }
}
