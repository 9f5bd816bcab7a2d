//! Campaigns (issue 25, DESIGN §8): a one-off email a merchant writes to an audience and
//! schedules. This module is the campaign's parsed input (audience, name, subject, Markdown
//! body with placeholders, send time, early access) and the rules that decide who gets it
//! when: the early-access waves and the holdout draw. The store selects the audience and
//! keeps the recipients; setia-mail renders and sends.
//!
//! **Audience.** `tier:member|silver|gold` (the loyalty tier as every email computes it:
//! spend in the 365 days before, `member` being the program's lowest tier), `segment:NAME`
//! (the RFM segment of the latest analytics run, one of [`Segment::ALL`]), `at_risk` and
//! `all` (every customer), joined with `+` into a union. `at_risk` is the churn model's at
//! risk, as the dashboard, the weekly report and `customers_at_risk` count it: a repeat
//! customer (two or more purchase days) whose P(alive) in the latest run is under 0.5. The
//! RFM cell of that name is `segment:at_risk`, a different group (recency and frequency
//! scores, not the model).
//!
//! **Placeholders** are `{{name}}`, `{{tier}}` and `{{points}}` (spaces inside the braces
//! allowed) in the subject and the body. Any other `{{…}}` is refused when the campaign is
//! written, naming it, so a typo never reaches a customer as braces.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engagement::CampaignSettings;
use crate::loyalty::Tier;
use crate::segment::Segment;
use crate::{CampaignId, CustomerId, MerchantId};

/// The longest body, in bytes of Markdown.
pub const MAX_BODY_BYTES: usize = 100 * 1024;
/// The longest subject and name, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_NAME_CHARS: usize = 100;
/// The longest early access, in days per wave.
pub const MAX_EARLY_ACCESS_DAYS: u32 = 90;
/// How far in the past a send time may be and still mean "now": a form filled in a minute
/// ago, or a clock a little behind.
pub const SEND_AT_GRACE: TimeDelta = TimeDelta::seconds(60);
/// How far ahead a campaign may be scheduled: a year (366 days, so the same date next year
/// always fits). Later is a typo that would sit "scheduled" for ever.
pub const MAX_SEND_AHEAD: TimeDelta = TimeDelta::days(366);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("the audience is empty; use tier:member|silver|gold, segment:NAME, at_risk or all, joined with +")]
    EmptyAudience,
    #[error("unknown audience {0:?}; use tier:member|silver|gold, segment:NAME, at_risk or all, joined with +")]
    UnknownAudience(String),
    #[error("unknown tier {0:?} in the audience; tiers are member, silver and gold")]
    UnknownTier(String),
    #[error("unknown segment {0:?} in the audience; segments are {names}", names = Segment::ALL.map(Segment::as_str).join(", "))]
    UnknownSegment(String),
    #[error("the name is empty")]
    EmptyName,
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    LongName,
    #[error("the subject is empty")]
    EmptySubject,
    #[error("the subject must be one line")]
    MultilineSubject,
    #[error("the subject is longer than {MAX_SUBJECT_CHARS} characters")]
    LongSubject,
    #[error("the body is empty")]
    EmptyBody,
    #[error("the body is {0} bytes; at most {MAX_BODY_BYTES} (100 KB)")]
    LongBody(usize),
    #[error("unknown placeholder {{{{{name}}}}}; use {{{{name}}}}, {{{{tier}}}} or {{{{points}}}}", name = .0)]
    UnknownPlaceholder(String),
    #[error("send_at {0} is in the past")]
    SendAtInPast(DateTime<Utc>),
    #[error("send_at {0} is more than a year ahead")]
    SendAtTooFar(DateTime<Utc>),
    #[error("early_access_days must be 0 to {MAX_EARLY_ACCESS_DAYS}, not {0}")]
    EarlyAccessDays(u32),
}

/// The audience word of a tier: `member` for the program's lowest tier.
pub fn tier_word(tier: Tier) -> &'static str {
    match tier {
        Tier::Bronze => "member",
        Tier::Silver => "silver",
        Tier::Gold => "gold",
    }
}

/// One term of an audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AudiencePart {
    All,
    Tier(Tier),
    Segment(Segment),
    AtRisk,
}

impl AudiencePart {
    fn parse(text: &str) -> Result<AudiencePart, CampaignError> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(CampaignError::EmptyAudience);
        }
        if let Some(tier) = text.strip_prefix("tier:") {
            return [Tier::Bronze, Tier::Silver, Tier::Gold]
                .into_iter()
                .find(|t| tier_word(*t) == tier)
                .map(AudiencePart::Tier)
                .ok_or_else(|| CampaignError::UnknownTier(tier.to_owned()));
        }
        if let Some(segment) = text.strip_prefix("segment:") {
            return Segment::parse(segment)
                .map(AudiencePart::Segment)
                .ok_or_else(|| CampaignError::UnknownSegment(segment.to_owned()));
        }
        match text.as_str() {
            "all" => Ok(AudiencePart::All),
            "at_risk" => Ok(AudiencePart::AtRisk),
            _ => Err(CampaignError::UnknownAudience(text)),
        }
    }
}

impl fmt::Display for AudiencePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudiencePart::All => f.write_str("all"),
            AudiencePart::AtRisk => f.write_str("at_risk"),
            AudiencePart::Tier(tier) => write!(f, "tier:{}", tier_word(*tier)),
            AudiencePart::Segment(segment) => write!(f, "segment:{}", segment.as_str()),
        }
    }
}

/// Who a campaign is for: a union of terms, sorted and without repeats (`all` alone when
/// it is one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(Vec<AudiencePart>);

impl Audience {
    pub fn parse(text: &str) -> Result<Audience, CampaignError> {
        let mut parts = text
            .split('+')
            .map(AudiencePart::parse)
            .collect::<Result<Vec<_>, _>>()?;
        parts.sort();
        parts.dedup();
        if parts.contains(&AudiencePart::All) {
            parts = vec![AudiencePart::All];
        }
        Ok(Audience(parts))
    }

    pub fn parts(&self) -> &[AudiencePart] {
        &self.0
    }

    pub fn is_all(&self) -> bool {
        self.0 == [AudiencePart::All]
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Audience::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The customer's name as the email greets them.
    Name,
    /// Their loyalty tier's name.
    Tier,
    /// Their points balance.
    Points,
}

impl Placeholder {
    pub const ALL: [Placeholder; 3] = [Placeholder::Name, Placeholder::Tier, Placeholder::Points];

    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::Name => "name",
            Placeholder::Tier => "tier",
            Placeholder::Points => "points",
        }
    }
}

/// A piece of placeholder text: literal text or a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Slot(Placeholder),
}

/// Splits `text` at its `{{…}}`; an unknown name inside braces is an error naming it. An
/// opening `{{` with no closing `}}` is text.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, CampaignError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        let inner = rest[open + 2..open + 2 + close].trim();
        let slot = Placeholder::ALL
            .into_iter()
            .find(|p| p.as_str() == inner)
            .ok_or_else(|| CampaignError::UnknownPlaceholder(inner.chars().take(40).collect()))?;
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Slot(slot));
        rest = &rest[open + 2 + close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The values a recipient's placeholders take, already written out for the language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    pub name: String,
    pub tier: String,
    pub points: String,
}

impl Personal {
    fn get(&self, placeholder: Placeholder) -> &str {
        match placeholder {
            Placeholder::Name => &self.name,
            Placeholder::Tier => &self.tier,
            Placeholder::Points => &self.points,
        }
    }
}

/// `text` with its placeholders filled in. Text that was checked on the way in (a
/// [`CampaignSubject`], a [`CampaignBody`], pieces of them) has only known placeholders;
/// anything else is returned as it is.
pub fn fill(text: &str, personal: &Personal) -> String {
    match pieces(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text,
                Piece::Slot(slot) => personal.get(slot),
            })
            .collect(),
        Err(_) => text.to_owned(),
    }
}

/// A campaign's name, as the merchant's lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CampaignName(String);

impl CampaignName {
    pub fn parse(text: &str) -> Result<CampaignName, CampaignError> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return Err(CampaignError::EmptyName);
        }
        if text.chars().count() > MAX_NAME_CHARS {
            return Err(CampaignError::LongName);
        }
        Ok(CampaignName(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The email's subject: one line, at most [`MAX_SUBJECT_CHARS`], known placeholders only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CampaignSubject(String);

impl CampaignSubject {
    pub fn parse(text: &str) -> Result<CampaignSubject, CampaignError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(CampaignError::EmptySubject);
        }
        if text.contains(['\n', '\r']) {
            return Err(CampaignError::MultilineSubject);
        }
        if text.chars().count() > MAX_SUBJECT_CHARS {
            return Err(CampaignError::LongSubject);
        }
        pieces(text)?;
        Ok(CampaignSubject(
            text.chars().filter(|c| !c.is_control()).collect(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn fill(&self, personal: &Personal) -> String {
        fill(&self.0, personal)
    }
}

/// The email's body: Markdown, at most [`MAX_BODY_BYTES`], known placeholders only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CampaignBody(String);

impl CampaignBody {
    pub fn parse(text: &str) -> Result<CampaignBody, CampaignError> {
        if text.len() > MAX_BODY_BYTES {
            return Err(CampaignError::LongBody(text.len()));
        }
        if text.trim().is_empty() {
            return Err(CampaignError::EmptyBody);
        }
        pieces(text)?;
        Ok(CampaignBody(text.replace("\r\n", "\n")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When the first wave goes: `send_at`, or now when it is left out (or within
/// [`SEND_AT_GRACE`] of now); earlier, or more than [`MAX_SEND_AHEAD`] later, is refused.
pub fn first_send(
    send_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, CampaignError> {
    // Checked: `now` is a caller's clock (a CLI flag may set it), and chrono panics at its ends.
    let earliest = now.checked_sub_signed(SEND_AT_GRACE).unwrap_or(now);
    let latest = now.checked_add_signed(MAX_SEND_AHEAD).unwrap_or(now);
    match send_at {
        None => Ok(now),
        Some(at) if at < earliest => Err(CampaignError::SendAtInPast(at)),
        Some(at) if at > latest => Err(CampaignError::SendAtTooFar(at)),
        Some(at) => Ok(at.max(now)),
    }
}

/// Days between waves, when the campaign gives early access.
pub fn early_access(days: Option<u32>) -> Result<Option<u32>, CampaignError> {
    match days {
        Some(days) if days > MAX_EARLY_ACCESS_DAYS => Err(CampaignError::EarlyAccessDays(days)),
        Some(0) | None => Ok(None),
        Some(days) => Ok(Some(days)),
    }
}

/// A campaign as a merchant writes it, before it is parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignInput<'a> {
    pub name: &'a str,
    pub audience: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub send_at: Option<DateTime<Utc>>,
    pub early_access_days: Option<u32>,
}

/// A campaign ready to be stored: every field checked, with the holdout share and result
/// window of the program in force when it was written (a later change of the program does
/// not change a campaign already written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignDraft {
    pub name: CampaignName,
    pub audience: Audience,
    pub subject: CampaignSubject,
    pub body: CampaignBody,
    pub send_at: DateTime<Utc>,
    pub early_access_days: Option<u32>,
    pub holdout_percent: u32,
    pub result_days: u32,
}

impl CampaignDraft {
    pub fn parse(
        input: &CampaignInput<'_>,
        settings: &CampaignSettings,
        now: DateTime<Utc>,
    ) -> Result<CampaignDraft, CampaignError> {
        Ok(CampaignDraft {
            name: CampaignName::parse(input.name)?,
            audience: Audience::parse(input.audience)?,
            subject: CampaignSubject::parse(input.subject)?,
            body: CampaignBody::parse(input.body)?,
            send_at: first_send(input.send_at, now)?,
            early_access_days: early_access(input.early_access_days)?,
            holdout_percent: settings.holdout_percent,
            result_days: settings.result_days,
        })
    }
}

/// The early-access wave a recipient is in: gold first, silver next, everyone else last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wave {
    Gold,
    Silver,
    Rest,
}

impl Wave {
    pub const ALL: [Wave; 3] = [Wave::Gold, Wave::Silver, Wave::Rest];

    pub fn of(tier: Tier) -> Wave {
        match tier {
            Tier::Gold => Wave::Gold,
            Tier::Silver => Wave::Silver,
            Tier::Bronze => Wave::Rest,
        }
    }

    pub fn index(self) -> u32 {
        self as u32
    }

    pub fn from_index(index: i64) -> Option<Wave> {
        Wave::ALL
            .into_iter()
            .find(|w| i64::from(w.index()) == index)
    }

    /// When this wave is due: with early access of `days`, gold at `send_at`, silver
    /// `days` later and the rest `days` after that; without it, everyone at `send_at`.
    pub fn due_at(self, send_at: DateTime<Utc>, early_access_days: Option<u32>) -> DateTime<Utc> {
        let days = i64::from(early_access_days.unwrap_or(0));
        send_at + TimeDelta::days(days * i64::from(self.index()))
    }
}

/// Whether `customer` is in `campaign`'s holdout: DESIGN §8's seeded draw, with the campaign
/// as the episode, so a campaign's groups never change once drawn.
pub fn in_holdout(
    merchant: &MerchantId,
    campaign: CampaignId,
    customer: CustomerId,
    holdout_percent: u32,
) -> bool {
    crate::holdout::held_out(
        "setia-campaign-holdout-v1",
        merchant,
        customer,
        &campaign.key().to_le_bytes(),
        holdout_percent,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_audience_form_parses_and_writes_back() {
        for (text, shown) in [
            ("all", "all"),
            ("at_risk", "at_risk"),
            ("tier:member", "tier:member"),
            ("tier:silver", "tier:silver"),
            ("TIER:Gold", "tier:gold"),
            ("segment:champions", "segment:champions"),
            ("segment:at_risk", "segment:at_risk"),
            (
                "tier:gold + segment:cant_lose+at_risk",
                "tier:gold+segment:cant_lose+at_risk",
            ),
            ("tier:gold+tier:gold", "tier:gold"),
            ("segment:loyal+all", "all"),
        ] {
            let audience = Audience::parse(text).unwrap();
            assert_eq!(audience.to_string(), shown, "{text}");
            assert_eq!(Audience::parse(shown).unwrap(), audience);
        }
        assert_eq!(
            Audience::parse("tier:member").unwrap().parts(),
            [AudiencePart::Tier(Tier::Bronze)]
        );
        for segment in Segment::ALL {
            let text = format!("segment:{}", segment.as_str());
            assert_eq!(
                Audience::parse(&text).unwrap().parts(),
                [AudiencePart::Segment(segment)]
            );
        }
    }

    #[test]
    fn unknown_audiences_are_named() {
        for (text, error, named) in [
            (
                "tier:platinum",
                CampaignError::UnknownTier("platinum".into()),
                "platinum",
            ),
            (
                "tier:bronze",
                CampaignError::UnknownTier("bronze".into()),
                "bronze",
            ),
            (
                "segment:whales",
                CampaignError::UnknownSegment("whales".into()),
                "whales",
            ),
            (
                "tier:gold+vips",
                CampaignError::UnknownAudience("vips".into()),
                "vips",
            ),
            ("", CampaignError::EmptyAudience, "empty"),
            ("tier:gold+", CampaignError::EmptyAudience, "empty"),
        ] {
            let found = Audience::parse(text).unwrap_err();
            assert_eq!(found, error, "{text}");
            assert!(found.to_string().contains(named), "{found}");
        }
    }

    #[test]
    fn early_access_sends_gold_then_silver_then_the_rest() {
        let send_at = Utc.with_ymd_and_hms(2027, 5, 1, 2, 0, 0).unwrap();
        let due = |tier| Wave::of(tier).due_at(send_at, Some(3));
        assert_eq!(due(Tier::Gold), send_at);
        assert_eq!(due(Tier::Silver), send_at + TimeDelta::days(3));
        assert_eq!(due(Tier::Bronze), send_at + TimeDelta::days(6));
        assert!(due(Tier::Gold) < due(Tier::Silver) && due(Tier::Silver) < due(Tier::Bronze));
        for tier in [Tier::Gold, Tier::Silver, Tier::Bronze] {
            assert_eq!(
                Wave::of(tier).due_at(send_at, None),
                send_at,
                "no early access"
            );
        }
        assert_eq!(early_access(Some(0)), Ok(None));
        assert_eq!(early_access(Some(7)), Ok(Some(7)));
        assert_eq!(
            early_access(Some(91)),
            Err(CampaignError::EarlyAccessDays(91))
        );
        for wave in Wave::ALL {
            assert_eq!(Wave::from_index(i64::from(wave.index())), Some(wave));
        }
    }

    #[test]
    fn a_send_time_in_the_past_is_refused() {
        let now = Utc.with_ymd_and_hms(2027, 5, 1, 2, 0, 0).unwrap();
        assert_eq!(first_send(None, now), Ok(now));
        let later = now + TimeDelta::hours(5);
        assert_eq!(first_send(Some(later), now), Ok(later));
        assert_eq!(first_send(Some(now - TimeDelta::seconds(30)), now), Ok(now));
        let past = now - TimeDelta::days(1);
        assert_eq!(
            first_send(Some(past), now),
            Err(CampaignError::SendAtInPast(past))
        );
    }

    #[test]
    fn the_holdout_is_stable_per_campaign() {
        let merchant = MerchantId::from_random_bytes([9; 20]);
        let draw = |campaign: i64| -> Vec<bool> {
            (1..=20_000)
                .map(|c| {
                    in_holdout(
                        &merchant,
                        CampaignId::from_key(campaign),
                        CustomerId::from_key(c),
                        10,
                    )
                })
                .collect()
        };
        let first = draw(1);
        assert_eq!(first, draw(1), "a campaign's groups never change");
        assert_ne!(first, draw(2), "each campaign draws afresh");
        let share = first.iter().filter(|h| **h).count() as f64 / first.len() as f64;
        assert!((0.09..0.11).contains(&share), "{share}");
        // Not win-back's draw for the same numbers.
        let winback: Vec<bool> = (1..=20_000)
            .map(|c| crate::winback::in_holdout(&merchant, CustomerId::from_key(c), 1, 10))
            .collect();
        assert_ne!(first, winback);
    }

    #[test]
    fn a_draft_takes_the_program_and_refuses_bad_input_whole() {
        let now = Utc.with_ymd_and_hms(2027, 5, 1, 2, 0, 0).unwrap();
        let settings = CampaignSettings {
            holdout_percent: 20,
            result_days: 7,
        };
        let input = CampaignInput {
            name: "Lebaran",
            audience: "tier:gold+segment:loyal",
            subject: "Hi {{name}}",
            body: "**Early access** for you",
            send_at: None,
            early_access_days: Some(2),
        };
        let draft = CampaignDraft::parse(&input, &settings, now).unwrap();
        assert_eq!(
            (
                draft.send_at,
                draft.early_access_days,
                draft.holdout_percent,
                draft.result_days
            ),
            (now, Some(2), 20, 7)
        );
        for (bad, error) in [
            (
                CampaignInput {
                    audience: "tier:diamond",
                    ..input.clone()
                },
                CampaignError::UnknownTier("diamond".into()),
            ),
            (
                CampaignInput {
                    subject: "",
                    ..input.clone()
                },
                CampaignError::EmptySubject,
            ),
            (
                CampaignInput {
                    send_at: Some(now - TimeDelta::days(2)),
                    ..input.clone()
                },
                CampaignError::SendAtInPast(now - TimeDelta::days(2)),
            ),
            (
                // `+200000-01-01` was once stored and stayed scheduled for ever.
                CampaignInput {
                    send_at: Some(now + MAX_SEND_AHEAD + TimeDelta::seconds(1)),
                    ..input.clone()
                },
                CampaignError::SendAtTooFar(now + MAX_SEND_AHEAD + TimeDelta::seconds(1)),
            ),
            (
                CampaignInput {
                    body: "Hi {{voucher}}",
                    ..input.clone()
                },
                CampaignError::UnknownPlaceholder("voucher".into()),
            ),
        ] {
            assert_eq!(CampaignDraft::parse(&bad, &settings, now), Err(error));
        }
    }

    #[test]
    fn send_at_is_from_now_to_a_year_ahead() {
        let now = Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap();
        let year_ahead = now + MAX_SEND_AHEAD;
        assert_eq!(first_send(Some(year_ahead), now), Ok(year_ahead));
        let far = Utc.with_ymd_and_hms(200_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            first_send(Some(far), now),
            Err(CampaignError::SendAtTooFar(far))
        );
        assert_eq!(
            first_send(Some(DateTime::<Utc>::MIN_UTC), now),
            Err(CampaignError::SendAtInPast(DateTime::<Utc>::MIN_UTC))
        );
        // A clock at chrono's ends does not panic.
        assert!(first_send(Some(now), DateTime::<Utc>::MAX_UTC).is_err());
        assert!(first_send(Some(now), DateTime::<Utc>::MIN_UTC).is_err());
    }

    #[test]
    fn subjects_and_bodies_are_bounded() {
        assert_eq!(
            CampaignSubject::parse("  "),
            Err(CampaignError::EmptySubject)
        );
        assert_eq!(
            CampaignSubject::parse("one\ntwo"),
            Err(CampaignError::MultilineSubject)
        );
        assert_eq!(
            CampaignSubject::parse(&"x".repeat(201)),
            Err(CampaignError::LongSubject)
        );
        assert!(CampaignSubject::parse(&"x".repeat(200)).is_ok());
        assert_eq!(CampaignBody::parse("\n \n"), Err(CampaignError::EmptyBody));
        let at_limit = "a".repeat(MAX_BODY_BYTES);
        assert!(CampaignBody::parse(&at_limit).is_ok());
        assert_eq!(
            CampaignBody::parse(&format!("{at_limit}b")),
            Err(CampaignError::LongBody(MAX_BODY_BYTES + 1))
        );
        assert_eq!(CampaignName::parse(" \t"), Err(CampaignError::EmptyName));
        assert_eq!(
            CampaignName::parse(" Lebaran   sale\n").unwrap().as_str(),
            "Lebaran sale"
        );
        assert_eq!(
            CampaignName::parse(&"n".repeat(101)),
            Err(CampaignError::LongName)
        );
    }

    #[test]
    fn placeholders_fill_in_and_unknown_ones_are_named() {
        let personal = Personal {
            name: "Siti".into(),
            tier: "Gold".into(),
            points: "1.240".into(),
        };
        let body = CampaignBody::parse(
            "Hi {{name}}, {{ tier }} member with {{points}} points. {{ not closed",
        )
        .unwrap();
        assert_eq!(
            fill(body.as_str(), &personal),
            "Hi Siti, Gold member with 1.240 points. {{ not closed"
        );
        let subject = CampaignSubject::parse("{{name}}: early access").unwrap();
        assert_eq!(subject.fill(&personal), "Siti: early access");
        for text in ["Hi {{ nama }}", "{{}} x", "{{first_name}}"] {
            let error = CampaignBody::parse(text).unwrap_err();
            assert!(
                matches!(error, CampaignError::UnknownPlaceholder(_)),
                "{text}"
            );
        }
        assert_eq!(
            CampaignSubject::parse("Hi {{nama}}")
                .unwrap_err()
                .to_string(),
            "unknown placeholder {{nama}}; use {{name}}, {{tier}} or {{points}}"
        );
    }
}
