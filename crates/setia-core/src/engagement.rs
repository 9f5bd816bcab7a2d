//! The engagement program (DESIGN §8): one TOML file per merchant with what setia does to
//! keep customers engaged, beside the loyalty program. Keys left out keep the defaults
//! below; an unknown key is an error that names it, so a misspelt setting never silently
//! falls back to a default.

use serde::{Deserialize, Serialize};

use crate::loyalty::Tier;

/// A merchant's engagement program, read from TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngagementProgram {
    /// A customer gets at most one marketing email (feedback request, win-back step,
    /// campaign, tier nudge) per this many days; 0 switches the cap off. Thank-you and
    /// birthday emails are exempt and do not count.
    pub marketing_cap_days: u32,
    pub feedback: FeedbackSettings,
    pub winback: WinbackSettings,
    pub referral: ReferralSettings,
    pub perks: PerksSettings,
    pub campaigns: CampaignSettings,
}

impl Default for EngagementProgram {
    fn default() -> Self {
        EngagementProgram {
            marketing_cap_days: 3,
            feedback: FeedbackSettings::default(),
            winback: WinbackSettings::default(),
            referral: ReferralSettings::default(),
            perks: PerksSettings::default(),
            campaigns: CampaignSettings::default(),
        }
    }
}

/// The scale a feedback request asks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    /// Customer satisfaction, 1 to 5.
    Csat,
    /// Net promoter score, 0 to 10.
    Nps,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Csat => "csat",
            FeedbackKind::Nps => "nps",
        }
    }

    pub fn parse(text: &str) -> Option<FeedbackKind> {
        [FeedbackKind::Csat, FeedbackKind::Nps]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The lowest and highest score of the scale.
    pub fn scale(self) -> (u8, u8) {
        match self {
            FeedbackKind::Csat => (1, 5),
            FeedbackKind::Nps => (0, 10),
        }
    }

    /// The score at or below which an answer opens a complaint unless the program says.
    pub fn default_alert(self) -> u8 {
        match self {
            FeedbackKind::Csat => 2,
            FeedbackKind::Nps => 6,
        }
    }
}

/// `[feedback]`: asking for a score after a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackSettings {
    pub enabled: bool,
    pub kind: FeedbackKind,
    /// Days after an attributed purchase the request is due.
    pub delay_days: u32,
    /// At most one request per customer in this many days.
    pub resurvey_days: u32,
    /// One reminder when the request is unanswered after 4 days.
    pub reminder: bool,
    /// An answer at or below this score opens a complaint; left out, 2 on the CSAT scale
    /// and 6 on the NPS one (the program as read always holds the number in force).
    pub alert_at_or_below: Option<u8>,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        FeedbackSettings {
            enabled: true,
            kind: FeedbackKind::Csat,
            delay_days: 3,
            resurvey_days: 90,
            reminder: true,
            alert_at_or_below: None,
        }
    }
}

impl FeedbackSettings {
    /// The alert level in force.
    pub fn alert_level(&self) -> u8 {
        self.alert_at_or_below
            .unwrap_or_else(|| self.kind.default_alert())
    }
}

/// `[winback]`: emails to customers the churn model says are slipping away, with a random
/// holdout that shows what they earned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WinbackSettings {
    /// Off unless the merchant turns it on: its vouchers are the merchant's money.
    pub enabled: bool,
    /// A repeat customer whose P(alive) in the latest snapshot is under this enters (0: this
    /// rule is off).
    pub p_alive_below: f64,
    /// A customer whose days since the last purchase reach this many times their median
    /// gap between purchases enters (0: this rule is off).
    pub overdue_factor: f64,
    /// Purchase days a customer needs to be considered (2: repeat customers).
    pub min_purchases: u32,
    /// The emails of an episode, by day after entry.
    pub steps: Vec<WinbackStep>,
    /// The voucher's discount and how many days it is valid from its email's day.
    pub voucher_percent: u32,
    pub voucher_days: u32,
    /// Days after an episode ends before the same customer can start another.
    pub cooldown_days: u32,
    /// Share of entered customers held out (mailed nothing), to measure the effect.
    pub holdout_percent: u32,
}

/// One email of a win-back episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WinbackStep {
    /// Days after the customer entered.
    pub day: u32,
    /// Carries a personal voucher code.
    #[serde(default)]
    pub voucher: bool,
}

impl Default for WinbackSettings {
    fn default() -> Self {
        WinbackSettings {
            enabled: false,
            p_alive_below: 0.5,
            overdue_factor: 2.0,
            min_purchases: 2,
            steps: vec![
                WinbackStep {
                    day: 0,
                    voucher: false,
                },
                WinbackStep {
                    day: 7,
                    voucher: true,
                },
            ],
            voucher_percent: 10,
            voucher_days: 14,
            cooldown_days: 90,
            holdout_percent: 10,
        }
    }
}

/// The most steps an episode may have, and the latest day one may fall on.
const MAX_WINBACK_STEPS: usize = 5;
const MAX_WINBACK_STEP_DAY: u32 = 90;

impl WinbackSettings {
    fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.p_alive_below) {
            return Err(format!(
                "winback.p_alive_below must be 0 (off) to 1, not {}",
                self.p_alive_below
            ));
        }
        if !(0.0..=100.0).contains(&self.overdue_factor) {
            return Err(format!(
                "winback.overdue_factor must be 0 (off) to 100, not {}",
                self.overdue_factor
            ));
        }
        if !(1..=100).contains(&self.min_purchases) {
            return Err("winback.min_purchases must be 1 to 100".into());
        }
        for (key, percent) in [
            ("voucher_percent", self.voucher_percent),
            ("holdout_percent", self.holdout_percent),
        ] {
            if percent > 100 {
                return Err(format!("winback.{key} must be 0 to 100, not {percent}"));
            }
        }
        if !(1..=365).contains(&self.voucher_days) {
            return Err("winback.voucher_days must be 1 to 365".into());
        }
        if self.cooldown_days > MAX_RESURVEY_DAYS {
            return Err(format!(
                "winback.cooldown_days must be 0 to {MAX_RESURVEY_DAYS}"
            ));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_WINBACK_STEPS {
            return Err(format!(
                "winback.steps must have 1 to {MAX_WINBACK_STEPS} steps"
            ));
        }
        let days: Vec<u32> = self.steps.iter().map(|s| s.day).collect();
        if days.windows(2).any(|pair| pair[0] >= pair[1])
            || days.iter().any(|d| *d > MAX_WINBACK_STEP_DAY)
        {
            return Err(format!(
                "winback.steps: each step's day must be later than the one before, at most {MAX_WINBACK_STEP_DAY}"
            ));
        }
        if self.steps.iter().any(|s| s.voucher) && self.voucher_percent == 0 {
            return Err(
                "winback.voucher_percent must be 1 to 100 when a step has a voucher".into(),
            );
        }
        Ok(())
    }
}

/// `[referral]`: customers bring friends, and are rewarded when the friend's first real
/// bank transfer has stood for `hold_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferralSettings {
    /// Off unless the merchant turns it on: its rewards and the friends' discount are the
    /// merchant's money.
    pub enabled: bool,
    /// Points the advocate earns per rewarded referral.
    pub advocate_points: u32,
    /// The friend's discount on their first order (the store applies it; setia shows it).
    pub friend_voucher_percent: u32,
    /// The friend's first payment must be at least this many whole Rupiah.
    pub min_first_order_rupiah: u64,
    /// Rewards an advocate may earn in one calendar month (merchant time).
    pub max_rewards_per_month: u32,
    /// Days a qualified referral waits before its reward; a refund meanwhile cancels it.
    pub hold_days: u32,
}

impl Default for ReferralSettings {
    fn default() -> Self {
        ReferralSettings {
            enabled: false,
            advocate_points: 200,
            friend_voucher_percent: 10,
            min_first_order_rupiah: 100_000,
            max_rewards_per_month: 10,
            hold_days: 7,
        }
    }
}

impl ReferralSettings {
    /// `min_first_order_rupiah` as money.
    pub fn min_first_order(&self) -> crate::Money {
        let rupiah = i64::try_from(self.min_first_order_rupiah).unwrap_or(i64::MAX);
        crate::Money::from_minor(rupiah.saturating_mul(100))
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.advocate_points) {
            return Err("referral.advocate_points must be 1 to 1000000".into());
        }
        if self.friend_voucher_percent > 100 {
            return Err(format!(
                "referral.friend_voucher_percent must be 0 to 100, not {}",
                self.friend_voucher_percent
            ));
        }
        if self.min_first_order_rupiah > 1_000_000_000_000 {
            return Err("referral.min_first_order_rupiah must be at most 1000000000000".into());
        }
        if !(1..=1_000).contains(&self.max_rewards_per_month) {
            return Err("referral.max_rewards_per_month must be 1 to 1000".into());
        }
        if self.hold_days > 365 {
            return Err("referral.hold_days must be 0 to 365".into());
        }
        Ok(())
    }
}

/// `[perks]`: what each loyalty tier gives a customer besides its points multiplier, the
/// welcome when a verified purchase first reaches a tier, and the nudge when the next one is
/// near.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerksSettings {
    /// Welcome emails, entry awards and nudges; the perks are shown either way.
    pub enabled: bool,
    /// A customer whose trailing spend is within this percent of the next tier's threshold
    /// (and below it) is told how close it is; 0 switches the nudge off.
    pub nudge_within_percent: u32,
    /// The loyalty program's first tier (`bronze`), where every customer starts.
    pub member: MemberPerks,
    pub silver: TierPerks,
    pub gold: TierPerks,
}

impl Default for PerksSettings {
    fn default() -> Self {
        PerksSettings {
            enabled: true,
            nudge_within_percent: 20,
            member: MemberPerks::default(),
            silver: TierPerks::default(),
            gold: TierPerks::default(),
        }
    }
}

/// `[campaigns]`: one-off emails a merchant writes to an audience, each with its holdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignSettings {
    /// Share of a campaign's audience held out (mailed nothing, recorded), to measure it.
    pub holdout_percent: u32,
    /// Days after a recipient's send (or, for the holdout, their wave's due time) in which
    /// verified purchases count in the campaign's result.
    pub result_days: u32,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        CampaignSettings {
            holdout_percent: 10,
            result_days: 14,
        }
    }
}

/// `[perks.member]`: a title and perks, and no entry award (nobody enters it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemberPerks {
    /// Left out: "Member" (the program as read always holds the title in force).
    pub title: Option<String>,
    pub perks: Vec<String>,
    /// Read only to refuse them with a reason: see [`PerksSettings::check`].
    #[serde(skip_serializing)]
    entry_points: Option<i64>,
    #[serde(skip_serializing)]
    entry_voucher_percent: Option<i64>,
}

/// `[perks.silver]` and `[perks.gold]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierPerks {
    /// Left out: "Silver" or "Gold".
    pub title: Option<String>,
    /// Lines shown to the customer (free shipping, early access…).
    pub perks: Vec<String>,
    /// Points awarded once, when a verified purchase first reaches the tier.
    pub entry_points: u32,
    /// A personal voucher in the welcome email, in percent; none when left out.
    pub entry_voucher_percent: Option<u32>,
}

/// What one tier gives, as the emails and the member page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierOffer {
    pub title: String,
    pub perks: Vec<String>,
    pub entry_points: u32,
    pub entry_voucher_percent: Option<u32>,
}

/// Lines a tier may list, and the longest line and title: enough for a phone's screen.
pub const MAX_PERK_LINES: usize = 10;
pub const MAX_PERK_LINE_CHARS: usize = 200;
pub const MAX_TIER_TITLE_CHARS: usize = 40;
const MAX_ENTRY_POINTS: u32 = 1_000_000;

fn check_lines(key: &str, title: &str, perks: &[String]) -> Result<(), String> {
    let title_chars = title.trim().chars().count();
    if title_chars == 0 || title.chars().count() > MAX_TIER_TITLE_CHARS {
        return Err(format!(
            "perks.{key}.title must be 1 to {MAX_TIER_TITLE_CHARS} characters"
        ));
    }
    if perks.len() > MAX_PERK_LINES {
        return Err(format!(
            "perks.{key}.perks may list at most {MAX_PERK_LINES} lines, not {}",
            perks.len()
        ));
    }
    if let Some(line) = perks
        .iter()
        .position(|line| line.trim().is_empty() || line.chars().count() > MAX_PERK_LINE_CHARS)
    {
        return Err(format!(
            "perks.{key}.perks line {} must be 1 to {MAX_PERK_LINE_CHARS} characters",
            line + 1
        ));
    }
    Ok(())
}

impl PerksSettings {
    /// What `tier` gives (its title written in).
    pub fn offer(&self, tier: Tier) -> TierOffer {
        match tier {
            Tier::Bronze => TierOffer {
                title: self.member.title.clone().unwrap_or_else(|| "Member".into()),
                perks: self.member.perks.clone(),
                entry_points: 0,
                entry_voucher_percent: None,
            },
            Tier::Silver | Tier::Gold => {
                let (settings, default_title) = if tier == Tier::Silver {
                    (&self.silver, "Silver")
                } else {
                    (&self.gold, "Gold")
                };
                TierOffer {
                    title: settings
                        .title
                        .clone()
                        .unwrap_or_else(|| default_title.into()),
                    perks: settings.perks.clone(),
                    entry_points: settings.entry_points,
                    entry_voucher_percent: settings.entry_voucher_percent,
                }
            }
        }
    }

    fn check(&mut self) -> Result<(), String> {
        if self.nudge_within_percent > 100 {
            return Err(format!(
                "perks.nudge_within_percent must be 0 (off) to 100, not {}",
                self.nudge_within_percent
            ));
        }
        for (key, present) in [
            ("entry_points", self.member.entry_points.is_some()),
            (
                "entry_voucher_percent",
                self.member.entry_voucher_percent.is_some(),
            ),
        ] {
            if present {
                return Err(format!(
                    "perks.member.{key}: every customer starts as a member, so the member tier \
                     has no entry award; set it under [perks.silver] or [perks.gold]"
                ));
            }
        }
        for (key, tier) in [("silver", &self.silver), ("gold", &self.gold)] {
            if tier.entry_points > MAX_ENTRY_POINTS {
                return Err(format!(
                    "perks.{key}.entry_points must be 0 to {MAX_ENTRY_POINTS}"
                ));
            }
            if let Some(percent) = tier
                .entry_voucher_percent
                .filter(|p| !(1..=100).contains(p))
            {
                return Err(format!(
                    "perks.{key}.entry_voucher_percent must be 1 to 100, not {percent}"
                ));
            }
        }
        for (key, tier) in [
            ("member", Tier::Bronze),
            ("silver", Tier::Silver),
            ("gold", Tier::Gold),
        ] {
            let offer = self.offer(tier);
            check_lines(key, &offer.title, &offer.perks)?;
        }
        // The titles in force are written in, so the program shown is the program in force.
        self.member.title = Some(self.offer(Tier::Bronze).title);
        self.silver.title = Some(self.offer(Tier::Silver).title);
        self.gold.title = Some(self.offer(Tier::Gold).title);
        Ok(())
    }
}

impl CampaignSettings {
    fn check(&self) -> Result<(), String> {
        if self.holdout_percent > 100 {
            return Err(format!(
                "campaigns.holdout_percent must be 0 to 100, not {}",
                self.holdout_percent
            ));
        }
        if !(1..=365).contains(&self.result_days) {
            return Err(format!(
                "campaigns.result_days must be 1 to 365, not {}",
                self.result_days
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngagementError {
    #[error("engagement program: {0}")]
    Toml(String),
    #[error("engagement program: {0}")]
    Invalid(String),
}

/// The longest cap, delay and resurvey window a program may set: a year, or two for the
/// resurvey window, beyond which a setting is surely a typo.
const MAX_CAP_DAYS: u32 = 365;
const MAX_DELAY_DAYS: u32 = 365;
const MAX_RESURVEY_DAYS: u32 = 730;

impl EngagementProgram {
    /// The defaults as they are in force: the program of a merchant who set none.
    pub fn standard() -> EngagementProgram {
        EngagementProgram::default()
            .validated()
            .expect("the defaults are in range")
    }

    pub fn from_toml(text: &str) -> Result<EngagementProgram, EngagementError> {
        let program: EngagementProgram =
            toml::from_str(text).map_err(|e| EngagementError::Toml(e.to_string()))?;
        program.validated()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a program serialises")
    }

    /// Checks the ranges and writes the defaults that depend on other keys in, so that the
    /// program shown is the program in force.
    fn validated(mut self) -> Result<EngagementProgram, EngagementError> {
        let invalid = |message: String| Err(EngagementError::Invalid(message));
        if self.marketing_cap_days > MAX_CAP_DAYS {
            return invalid(format!(
                "marketing_cap_days must be 0 (no cap) to {MAX_CAP_DAYS}"
            ));
        }
        let feedback = &mut self.feedback;
        if feedback.delay_days > MAX_DELAY_DAYS {
            return invalid(format!("feedback.delay_days must be 0 to {MAX_DELAY_DAYS}"));
        }
        if feedback.resurvey_days == 0 || feedback.resurvey_days > MAX_RESURVEY_DAYS {
            return invalid(format!(
                "feedback.resurvey_days must be 1 to {MAX_RESURVEY_DAYS}"
            ));
        }
        let (low, high) = feedback.kind.scale();
        let alert = feedback.alert_level();
        if !(low..high).contains(&alert) {
            return invalid(format!(
                "feedback.alert_at_or_below must be {low} to {} on the {} scale",
                high - 1,
                match feedback.kind {
                    FeedbackKind::Csat => "CSAT (1–5)",
                    FeedbackKind::Nps => "NPS (0–10)",
                }
            ));
        }
        feedback.alert_at_or_below = Some(alert);
        self.winback.check().map_err(EngagementError::Invalid)?;
        self.referral.check().map_err(EngagementError::Invalid)?;
        self.perks.check().map_err(EngagementError::Invalid)?;
        self.campaigns.check().map_err(EngagementError::Invalid)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_left_out_keep_their_defaults() {
        let program = EngagementProgram::from_toml("").unwrap();
        assert_eq!(program, EngagementProgram::standard());
        assert_eq!(program.marketing_cap_days, 3);
        assert_eq!(
            program.feedback,
            FeedbackSettings {
                alert_at_or_below: Some(2),
                ..FeedbackSettings::default()
            }
        );
        let nps =
            EngagementProgram::from_toml("marketing_cap_days = 7\n[feedback]\nkind = \"nps\"\n")
                .unwrap();
        assert_eq!(nps.marketing_cap_days, 7);
        assert_eq!(nps.feedback.kind, FeedbackKind::Nps);
        assert_eq!(nps.feedback.alert_level(), 6, "the NPS default");
        assert_eq!(nps.feedback.delay_days, 3);
    }

    #[test]
    fn a_program_reads_back_what_it_writes() {
        let program = EngagementProgram::from_toml(
            "[feedback]\nenabled = false\nkind = \"nps\"\ndelay_days = 5\nresurvey_days = 30\nreminder = false\nalert_at_or_below = 4\n",
        )
        .unwrap();
        assert_eq!(
            EngagementProgram::from_toml(&program.to_toml()).unwrap(),
            program
        );
    }

    #[test]
    fn winback_is_off_until_turned_on_and_reads_its_steps() {
        let standard = EngagementProgram::standard();
        assert!(!standard.winback.enabled);
        assert_eq!(standard.winback.steps.len(), 2);
        assert!(standard.winback.steps[1].voucher && standard.winback.steps[1].day == 7);
        let program = EngagementProgram::from_toml(
            "[winback]\nenabled = true\nholdout_percent = 20\n[[winback.steps]]\nday = 0\n\
             [[winback.steps]]\nday = 10\nvoucher = true\n[[winback.steps]]\nday = 20\n",
        )
        .unwrap();
        assert!(program.winback.enabled);
        assert_eq!(program.winback.holdout_percent, 20);
        assert_eq!(
            program
                .winback
                .steps
                .iter()
                .map(|s| (s.day, s.voucher))
                .collect::<Vec<_>>(),
            vec![(0, false), (10, true), (20, false)]
        );
        assert_eq!(
            EngagementProgram::from_toml(&program.to_toml()).unwrap(),
            program
        );
    }

    #[test]
    fn referral_is_off_until_turned_on() {
        let standard = EngagementProgram::standard();
        assert!(!standard.referral.enabled);
        let program = EngagementProgram::from_toml(
            "[referral]\nenabled = true\nadvocate_points = 300\nhold_days = 0\n",
        )
        .unwrap();
        assert!(program.referral.enabled);
        assert_eq!(
            (
                program.referral.advocate_points,
                program.referral.hold_days,
                program.referral.min_first_order_rupiah
            ),
            (300, 0, 100_000)
        );
        assert_eq!(
            EngagementProgram::from_toml(&program.to_toml()).unwrap(),
            program
        );
    }

    #[test]
    fn perks_are_on_with_titles_written_in() {
        let standard = EngagementProgram::standard();
        assert!(standard.perks.enabled);
        assert_eq!(standard.perks.nudge_within_percent, 20);
        assert_eq!(standard.perks.silver.title.as_deref(), Some("Silver"));
        assert_eq!(standard.perks.offer(Tier::Bronze).title, "Member");
        assert_eq!(standard.perks.offer(Tier::Gold).entry_voucher_percent, None);
        let program = EngagementProgram::from_toml(
            "[perks]\nnudge_within_percent = 15\n[perks.member]\nperks = [\"Poin tiap belanja\"]\n\
             [perks.silver]\ntitle = \"Perak\"\nperks = [\"Gratis ongkir\", \"Akses awal\"]\n\
             entry_points = 100\nentry_voucher_percent = 10\n[perks.gold]\nentry_points = 500\n",
        )
        .unwrap();
        let silver = program.perks.offer(Tier::Silver);
        assert_eq!(
            silver,
            TierOffer {
                title: "Perak".into(),
                perks: vec!["Gratis ongkir".into(), "Akses awal".into()],
                entry_points: 100,
                entry_voucher_percent: Some(10),
            }
        );
        assert_eq!(program.perks.offer(Tier::Gold).title, "Gold");
        assert_eq!(program.perks.offer(Tier::Gold).entry_points, 500);
        assert_eq!(
            program.perks.offer(Tier::Bronze).perks,
            vec!["Poin tiap belanja"]
        );
        let written = program.to_toml();
        assert!(written.contains("title = \"Member\""), "{written}");
        assert_eq!(EngagementProgram::from_toml(&written).unwrap(), program);
    }

    #[test]
    fn the_member_tier_has_no_entry_award() {
        for key in ["entry_points = 50", "entry_voucher_percent = 5"] {
            let error = EngagementProgram::from_toml(&format!("[perks.member]\n{key}\n"))
                .unwrap_err()
                .to_string();
            let name = key.split(' ').next().unwrap();
            assert!(
                error.contains(&format!("perks.member.{name}"))
                    && error.contains("every customer starts as a member"),
                "{error}"
            );
        }
    }

    #[test]
    fn campaigns_keep_a_holdout_and_a_result_window() {
        let standard = EngagementProgram::standard();
        assert_eq!(standard.campaigns, CampaignSettings::default());
        assert_eq!(
            (
                standard.campaigns.holdout_percent,
                standard.campaigns.result_days
            ),
            (10, 14)
        );
        let program =
            EngagementProgram::from_toml("[campaigns]\nholdout_percent = 0\nresult_days = 30\n")
                .unwrap();
        assert_eq!(
            (
                program.campaigns.holdout_percent,
                program.campaigns.result_days
            ),
            (0, 30)
        );
        assert_eq!(
            EngagementProgram::from_toml(&program.to_toml()).unwrap(),
            program
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("marketing_cap = 3\n", "marketing_cap"),
            ("[feedback]\ndelay = 3\n", "delay"),
            ("[feedbak]\n", "feedbak"),
        ] {
            let error = EngagementProgram::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(&format!("`{key}`")), "{key}: {error}");
        }
    }

    #[test]
    fn values_out_of_range_are_refused_with_the_key() {
        for (text, key) in [
            ("marketing_cap_days = 400\n", "marketing_cap_days"),
            ("marketing_cap_days = -1\n", "marketing_cap_days"),
            ("[feedback]\nresurvey_days = 0\n", "feedback.resurvey_days"),
            ("[feedback]\ndelay_days = 1000\n", "feedback.delay_days"),
            (
                "[feedback]\nalert_at_or_below = 5\n",
                "feedback.alert_at_or_below",
            ),
            (
                "[feedback]\nkind = \"nps\"\nalert_at_or_below = 10\n",
                "feedback.alert_at_or_below",
            ),
            ("[feedback]\nkind = \"ces\"\n", "kind"),
            (
                "[winback]\nholdout_percent = 101\n",
                "winback.holdout_percent",
            ),
            (
                "[winback]\nvoucher_percent = 150\n",
                "winback.voucher_percent",
            ),
            ("[winback]\ncooldown_days = -1\n", "cooldown_days"),
            ("[winback]\np_alive_below = 1.5\n", "winback.p_alive_below"),
            (
                "[winback]\noverdue_factor = -2.0\n",
                "winback.overdue_factor",
            ),
            ("[winback]\nvoucher_days = 0\n", "winback.voucher_days"),
            ("[winback]\nsteps = []\n", "winback.steps"),
            (
                "[[winback.steps]]\nday = 7\n[[winback.steps]]\nday = 3\n",
                "winback.steps",
            ),
            ("[[winback.steps]]\nday = -1\n", "day"),
            ("[winback]\nholdout = 5\n", "holdout"),
            (
                "[referral]\nadvocate_points = 0\n",
                "referral.advocate_points",
            ),
            (
                "[referral]\nfriend_voucher_percent = 101\n",
                "referral.friend_voucher_percent",
            ),
            (
                "[referral]\nmax_rewards_per_month = 0\n",
                "referral.max_rewards_per_month",
            ),
            ("[referral]\nhold_days = 400\n", "referral.hold_days"),
            (
                "[referral]\nmin_first_order_rupiah = -5\n",
                "min_first_order_rupiah",
            ),
            ("[referral]\nreward = 5\n", "reward"),
            (
                "[perks]\nnudge_within_percent = 101\n",
                "perks.nudge_within_percent",
            ),
            (
                "[perks.silver]\nentry_voucher_percent = 0\n",
                "perks.silver.entry_voucher_percent",
            ),
            (
                "[perks.gold]\nentry_voucher_percent = 101\n",
                "perks.gold.entry_voucher_percent",
            ),
            (
                "[perks.gold]\nentry_points = 2000000\n",
                "perks.gold.entry_points",
            ),
            ("[perks.silver]\nentry_points = -1\n", "entry_points"),
            ("[perks.silver]\ntitle = \"  \"\n", "perks.silver.title"),
            (
                "[perks.gold]\ntitle = \"A very long title that no email could fit in\"\n",
                "perks.gold.title",
            ),
            (
                "[perks.member]\nperks = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]\n",
                "perks.member.perks",
            ),
            ("[perks.silver]\nperks = [\"ok\", \"\"]\n", "perks.silver.perks line 2"),
            ("[perks.silver]\nperk = [\"x\"]\n", "perk"),
            ("[perks.platinum]\n", "platinum"),
            (
                "[campaigns]\nholdout_percent = 101\n",
                "campaigns.holdout_percent",
            ),
            ("[campaigns]\nresult_days = 0\n", "campaigns.result_days"),
            ("[campaigns]\nresult_days = 366\n", "campaigns.result_days"),
            ("[campaigns]\nholdout = 5\n", "holdout"),
        ] {
            let error = EngagementProgram::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(key), "{text:?}: {error}");
        }
        assert_eq!(
            EngagementProgram::from_toml("[feedback]\nkind = \"nps\"\nalert_at_or_below = 0\n")
                .unwrap()
                .feedback
                .alert_level(),
            0
        );
    }
}
