//! The RFM segments of DESIGN §4: the ten cells of the usual R/F grid. Here rather than in
//! setia-analytics, which computes them, because a campaign's audience names them too.

use serde::{Deserialize, Serialize};

/// The ten segments of the usual R/F grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Champions,
    Loyal,
    PotentialLoyalists,
    NewCustomers,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLose,
    Hibernating,
}

impl Segment {
    pub const ALL: [Segment; 10] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalists,
        Segment::NewCustomers,
        Segment::Promising,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::CantLose,
        Segment::Hibernating,
    ];

    /// The JSON key, e.g. "potential_loyalists".
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalists => "potential_loyalists",
            Segment::NewCustomers => "new_customers",
            Segment::Promising => "promising",
            Segment::NeedAttention => "need_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::AtRisk => "at_risk",
            Segment::CantLose => "cant_lose",
            Segment::Hibernating => "hibernating",
        }
    }

    pub fn parse(text: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The grid: 5[4-5] champions, [3-4][4-5] loyal, [4-5][2-3] potential loyalists,
    /// 51 new, 41 promising, 33 need attention, 3[1-2] about to sleep, [1-2][3-4] at risk,
    /// [1-2]5 can't lose, [1-2][1-2] hibernating. Scores outside 1–5 are clamped.
    pub fn from_scores(recency_score: u8, frequency_score: u8) -> Segment {
        let r = recency_score.clamp(1, 5);
        let f = frequency_score.clamp(1, 5);
        match (r, f) {
            (5, 4..=5) => Segment::Champions,
            (3..=4, 4..=5) => Segment::Loyal,
            (4..=5, 2..=3) => Segment::PotentialLoyalists,
            (5, 1) => Segment::NewCustomers,
            (4, 1) => Segment::Promising,
            (3, 3) => Segment::NeedAttention,
            (3, 1..=2) => Segment::AboutToSleep,
            (1..=2, 3..=4) => Segment::AtRisk,
            (1..=2, 5) => Segment::CantLose,
            // (1..=2, 1..=2)
            _ => Segment::Hibernating,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for segment in Segment::ALL {
            assert_eq!(Segment::parse(segment.as_str()), Some(segment));
        }
        assert_eq!(Segment::parse("champion"), None);
    }
}
