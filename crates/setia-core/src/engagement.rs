//! The engagement program (DESIGN §8): one TOML file per merchant with what setia does to
//! keep customers engaged, beside the loyalty program. Keys left out keep the defaults
//! below; an unknown key is an error that names it, so a misspelt setting never silently
//! falls back to a default.

use serde::{Deserialize, Serialize};

/// A merchant's engagement program, read from TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngagementProgram {
    /// A customer gets at most one marketing email (feedback request, win-back step,
    /// campaign, tier nudge) per this many days; 0 switches the cap off. Thank-you and
    /// birthday emails are exempt and do not count.
    pub marketing_cap_days: u32,
    pub feedback: FeedbackSettings,
}

impl Default for EngagementProgram {
    fn default() -> Self {
        EngagementProgram {
            marketing_cap_days: 3,
            feedback: FeedbackSettings::default(),
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
        let mut program = EngagementProgram::default();
        program.feedback.alert_at_or_below = Some(program.feedback.alert_level());
        program
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
