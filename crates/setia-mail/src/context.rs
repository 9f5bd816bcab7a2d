//! What the templates are filled with. Every amount is already written the Indonesian way
//! (`Rp 1.250.000`) and every date in the merchant's language, so a template (and an
//! override a merchant writes) only places values.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use setia_core::engagement::FeedbackKind;
use setia_core::loyalty::{LoyaltyProgram, Tier};
use setia_core::{format_rupiah, Money};
use setia_store::catalog::Product;
use setia_store::mail::{EmailLanguage, LoyaltyTotals, MailCustomer, OutboxKind};

const MONTHS_ID: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `14 Maret 2027` / `14 March 2027`.
pub fn long_date(language: EmailLanguage, day: NaiveDate) -> String {
    let months = match language {
        EmailLanguage::Indonesian => &MONTHS_ID,
        EmailLanguage::English => &MONTHS_EN,
    };
    format!(
        "{} {} {}",
        day.day(),
        months[day.month0() as usize],
        day.year()
    )
}

/// `14 Mar` / `14 Mar`: for chart labels and short lists.
pub fn short_date(language: EmailLanguage, day: NaiveDate) -> String {
    let months = match language {
        EmailLanguage::Indonesian => &MONTHS_ID,
        EmailLanguage::English => &MONTHS_EN,
    };
    format!("{} {}", day.day(), &months[day.month0() as usize][..3])
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Bronze => "Bronze",
        Tier::Silver => "Silver",
        Tier::Gold => "Gold",
    }
}

/// The merchant and the link every email carries.
#[derive(Debug, Clone, Serialize)]
pub struct Common {
    pub merchant_name: String,
    pub language: &'static str,
    /// The one-click unsubscribe page (customer mail only).
    pub unsubscribe_url: Option<String>,
    /// The customer's member page, `/m/{token}`: tier, points, their expiry, perks (customer
    /// mail only).
    pub member_url: Option<String>,
    /// The recommendations block of a customer email: empty for reports and for a merchant
    /// without products, and then the block is left out.
    pub recommendations: Vec<ProductCard>,
}

/// Products in a customer email's recommendations block: few enough to read on a phone.
pub const EMAIL_RECOMMENDATIONS: usize = 4;

/// A product as the recommendations block shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductCard {
    pub name: String,
    /// `Rp 89.000`; none when the merchant gave no price.
    pub price: Option<String>,
    /// The product page, tagged so the merchant's web analytics credit the email.
    pub url: Option<String>,
    pub image_url: Option<String>,
}

impl ProductCard {
    pub fn of(product: &Product, kind: OutboxKind) -> ProductCard {
        ProductCard {
            name: product.name.clone(),
            price: product.price.map(format_rupiah),
            url: product.url.as_deref().map(|url| tagged_link(url, kind)),
            image_url: product.image_url.clone(),
        }
    }
}

/// The link with `utm_source=setia`, `utm_medium=email` and the email kind as campaign, unless
/// the merchant's link already names a source (their own tagging wins).
fn tagged_link(link: &str, kind: OutboxKind) -> String {
    match url::Url::parse(link) {
        Ok(mut parsed) if !parsed.query_pairs().any(|(key, _)| key == "utm_source") => {
            parsed
                .query_pairs_mut()
                .append_pair("utm_source", "setia")
                .append_pair("utm_medium", "email")
                .append_pair("utm_campaign", kind.as_str());
            parsed.into()
        }
        _ => link.to_owned(),
    }
}

/// The customer's loyalty standing as of sending.
#[derive(Debug, Clone, Serialize)]
pub struct LoyaltyView {
    pub points_balance: i64,
    pub tier: &'static str,
    /// The next tier and what is left to spend to reach it (none at gold).
    pub next_tier: Option<&'static str>,
    pub to_next_tier: Option<String>,
}

impl LoyaltyView {
    pub fn of(customer: &MailCustomer, program: &LoyaltyProgram) -> LoyaltyView {
        let next = program.next_tier(customer.tier);
        LoyaltyView {
            points_balance: customer.points_balance,
            tier: tier_name(customer.tier),
            next_tier: next.map(|(tier, _)| tier_name(tier)),
            to_next_tier: next.map(|(_, threshold)| {
                // Saturating: an unreachable threshold is i64::MAX (see `next_tier`).
                let left = threshold
                    .minor()
                    .saturating_sub(customer.trailing_spend.minor());
                format_rupiah(Money::from_minor(left.max(0)))
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PurchaseView {
    pub amount: String,
    pub time: String,
    pub points: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThankYouContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    pub day: String,
    pub purchases: Vec<PurchaseView>,
    pub total: String,
    pub points_earned: i64,
    pub loyalty: LoyaltyView,
    /// The customer's code and what it offers, while the merchant runs `[referral]`.
    pub referral: Option<crate::referral::ReferralOffer>,
}

/// What a birthday offer row carries, frozen when it is enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirthdayPayload {
    pub offer_code: String,
    pub offer_expires_on: NaiveDate,
    pub birthday_points: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BirthdayContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    pub offer_code: String,
    pub offer_expires: String,
    pub birthday_points: i64,
    pub loyalty: LoyaltyView,
}

/// One score in a feedback request's row of links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreLink {
    pub score: u8,
    /// The feedback page with this score chosen; following it records nothing.
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedbackRequestContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    /// The second asking, four days after the first.
    pub reminder: bool,
    /// `csat` (1–5) or `nps` (0–10).
    pub kind: &'static str,
    pub purchase_day: String,
    pub purchase_amount: String,
    pub scores: Vec<ScoreLink>,
    /// The feedback page without a score chosen.
    pub page_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedbackAlertContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: Option<String>,
    pub customer_external_id: String,
    pub kind: &'static str,
    pub score: u8,
    /// The top of the scale the score was given on (5 or 10).
    pub scale_high: u8,
    pub comment: Option<String>,
    pub purchase_day: String,
    pub purchase_amount: String,
    /// The complaint in the dashboard's queue.
    pub complaint_url: String,
}

/// One week's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekFigures {
    /// Customers whose first purchase ever was in the week.
    pub new_customers: u64,
    /// Customers who bought in the week and had bought before it.
    pub returning_customers: u64,
    pub purchases: u64,
    pub revenue_minor: i64,
}

impl WeekFigures {
    /// Returning customers as a share of the week's customers.
    pub fn repeat_rate(&self) -> Option<f64> {
        let active = self.new_customers + self.returning_customers;
        (active > 0).then(|| self.returning_customers as f64 / active as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtRiskEntry {
    pub customer: i64,
    pub external_id: String,
    pub name: Option<String>,
    pub p_alive: f64,
    pub clv_12m_minor: Option<i64>,
    pub monetary_minor: i64,
    pub recency_days: i64,
}

/// A report's figures, frozen when it is enqueued (Monday's numbers stay Monday's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportPayload {
    pub week: String,
    /// The 14 days covered, oldest first, and each day's revenue.
    pub days: Vec<NaiveDate>,
    pub daily_revenue_minor: Vec<i64>,
    pub current: WeekFigures,
    pub previous: WeekFigures,
    /// The latest analytics run's date, if there was one.
    pub scores_as_of: Option<String>,
    pub at_risk_total: u64,
    /// The most valuable at-risk customers (at most [`crate::report::AT_RISK_KEPT`]).
    pub at_risk: Vec<AtRiskEntry>,
    /// Which of them were not at risk in the previous week's report.
    pub newly_at_risk: Vec<i64>,
    pub loyalty: LoyaltyTotals,
    /// Customer feedback in the two weeks; absent when the merchant asks for none and has
    /// none (and in reports frozen before feedback existed).
    #[serde(default)]
    pub feedback: Option<FeedbackWeeks>,
    /// Payments of the last 7 days that no webhook brought and reconciliation found;
    /// absent when the merchant has no Moota token and none were found.
    #[serde(default)]
    pub missed_by_webhook: Option<u64>,
    /// The win-back flow against its holdout; absent when the merchant has it off and no
    /// episode (and in reports frozen before win-back existed).
    #[serde(default)]
    pub winback: Option<WinbackFigures>,
}

/// The win-back line of a report: the episodes that entered 30 to 90 days before it (so
/// their 30 days after entry are over), treated against held out (DESIGN §8 "Holdout").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WinbackFigures {
    /// The first and last local day of entry covered.
    pub entered_from: NaiveDate,
    pub entered_until: NaiveDate,
    pub treated: u64,
    pub holdout: u64,
    /// Within 30 days of entry: how many more treated customers bought than the holdout's
    /// share would give them, and how much more they paid (minor units), each with its 95%
    /// Welch interval; none when a group has fewer than two customers or neither varies.
    pub extra_customers: Option<Estimate>,
    pub extra_revenue_minor: Option<Estimate>,
}

/// An estimate ± the half-width of its (symmetric) interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub margin: f64,
}

/// The feedback section of a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeedbackWeeks {
    /// The scale asked on now: `csat` or `nps`.
    pub kind: FeedbackKind,
    pub responses: u64,
    pub previous_responses: u64,
    /// CSAT (0–1) or NPS (-1–1) of each week's answers on that scale.
    pub satisfaction: Option<f64>,
    pub previous_satisfaction: Option<f64>,
    /// Complaints opened in the last 7 days, and those not resolved when the report was made.
    pub new_complaints: u64,
    pub unresolved_complaints: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeekView {
    pub new_customers: u64,
    pub returning_customers: u64,
    pub active_customers: u64,
    pub purchases: u64,
    pub repeat_rate: String,
    pub revenue: String,
}

impl WeekView {
    fn of(figures: &WeekFigures) -> WeekView {
        WeekView {
            new_customers: figures.new_customers,
            returning_customers: figures.returning_customers,
            active_customers: figures.new_customers + figures.returning_customers,
            purchases: figures.purchases,
            repeat_rate: figures
                .repeat_rate()
                .map(|r| format!("{:.0}%", r * 100.0))
                .unwrap_or_else(|| "–".into()),
            revenue: format_rupiah(Money::from_minor(figures.revenue_minor)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AtRiskView {
    pub name: String,
    pub external_id: String,
    pub p_alive: String,
    pub clv_12m: Option<String>,
    pub average_purchase: String,
    pub days_since_last_purchase: i64,
}

impl AtRiskView {
    fn of(entry: &AtRiskEntry, language: EmailLanguage) -> AtRiskView {
        let p_alive = format!("{:.2}", entry.p_alive);
        AtRiskView {
            name: entry
                .name
                .clone()
                .unwrap_or_else(|| entry.external_id.clone()),
            external_id: entry.external_id.clone(),
            // Indonesian writes decimals with a comma.
            p_alive: match language {
                EmailLanguage::Indonesian => p_alive.replace('.', ","),
                EmailLanguage::English => p_alive,
            },
            clv_12m: entry
                .clv_12m_minor
                .map(|m| format_rupiah(Money::from_minor(m))),
            average_purchase: format_rupiah(Money::from_minor(entry.monetary_minor)),
            days_since_last_purchase: entry.recency_days,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    #[serde(flatten)]
    pub common: Common,
    pub week: String,
    pub period: String,
    pub previous_period: String,
    pub current: WeekView,
    pub previous: WeekView,
    /// `+12%`, `-3%`, or none when the week before had no revenue.
    pub revenue_change: Option<String>,
    pub scores_available: bool,
    pub scores_as_of: Option<String>,
    pub at_risk_total: u64,
    pub newly_at_risk: Vec<AtRiskView>,
    pub win_back: Vec<AtRiskView>,
    pub loyalty: LoyaltyTotals,
    pub feedback: Option<FeedbackView>,
    pub missed_by_webhook: Option<u64>,
    pub winback: Option<WinbackView>,
    /// `cid:` of the inline chart.
    pub chart_src: String,
}

/// The feedback section as written: `82%` CSAT or `+35` NPS.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackView {
    /// `CSAT` or `NPS`.
    pub label: &'static str,
    pub responses: u64,
    pub previous_responses: u64,
    pub figure: String,
    pub previous_figure: String,
    pub new_complaints: u64,
    pub unresolved_complaints: u64,
}

impl FeedbackView {
    fn of(weeks: &FeedbackWeeks) -> FeedbackView {
        let written = |figure: Option<f64>| match (figure, weeks.kind) {
            (None, _) => "–".to_owned(),
            (Some(share), FeedbackKind::Csat) => format!("{:.0}%", share * 100.0),
            (Some(share), FeedbackKind::Nps) => format!("{:+.0}", share * 100.0),
        };
        FeedbackView {
            label: match weeks.kind {
                FeedbackKind::Csat => "CSAT",
                FeedbackKind::Nps => "NPS",
            },
            responses: weeks.responses,
            previous_responses: weeks.previous_responses,
            figure: written(weeks.satisfaction),
            previous_figure: written(weeks.previous_satisfaction),
            new_complaints: weeks.new_complaints,
            unresolved_complaints: weeks.unresolved_complaints,
        }
    }
}

/// The win-back line as written: magnitudes, and whether each is more or less than the
/// holdout, so the template words it ("lebih banyak" / "lebih sedikit").
#[derive(Debug, Clone, Serialize)]
pub struct WinbackView {
    /// `1 Desember 2026 – 30 Januari 2027`: the days of entry covered.
    pub entered: String,
    pub treated: u64,
    pub holdout: u64,
    /// Both figures have an interval; otherwise the line says there is not enough data.
    pub enough: bool,
    /// Whole customers, `12`, and the interval's half-width, `9`.
    pub customers: String,
    pub customers_margin: String,
    pub customers_fewer: bool,
    /// `Rp 1.250.000` and `Rp 900.000`.
    pub revenue: String,
    pub revenue_margin: String,
    pub revenue_less: bool,
}

impl WinbackView {
    fn of(figures: &WinbackFigures, language: EmailLanguage) -> WinbackView {
        let whole = |x: f64| format!("{}", x.abs().round() as i64);
        // Whole rupiah: an estimate has no meaningful sen. Capped so the sen fit in i64: a
        // wild estimate is a huge amount, not an overflow.
        let rupiah = |x: f64| {
            let whole = ((x.abs() / 100.0).round() as i64).min(i64::MAX / 100);
            format_rupiah(Money::from_minor(whole * 100))
        };
        let (customers, revenue) = match (figures.extra_customers, figures.extra_revenue_minor) {
            (Some(customers), Some(revenue)) => (customers, revenue),
            _ => (
                Estimate {
                    value: 0.0,
                    margin: 0.0,
                },
                Estimate {
                    value: 0.0,
                    margin: 0.0,
                },
            ),
        };
        WinbackView {
            entered: format!(
                "{} – {}",
                long_date(language, figures.entered_from),
                long_date(language, figures.entered_until)
            ),
            treated: figures.treated,
            holdout: figures.holdout,
            enough: figures.extra_customers.is_some() && figures.extra_revenue_minor.is_some(),
            customers: whole(customers.value),
            customers_margin: whole(customers.margin),
            // A difference that rounds to zero is written as "0 more".
            customers_fewer: customers.value.round() < 0.0,
            revenue: rupiah(revenue.value),
            revenue_margin: rupiah(revenue.margin),
            revenue_less: (revenue.value / 100.0).round() < 0.0,
        }
    }
}

/// How many customers the win-back list shows.
pub const WIN_BACK_SHOWN: usize = 10;
/// How many newly-at-risk customers are listed by name.
pub const NEWLY_AT_RISK_SHOWN: usize = 25;
pub const CHART_CID: &str = "weekly-chart@setia";

impl ReportContext {
    pub fn of(common: Common, payload: &ReportPayload, language: EmailLanguage) -> ReportContext {
        let range = |days: &[NaiveDate]| match (days.first(), days.last()) {
            (Some(first), Some(last)) => format!(
                "{} – {}",
                short_date(language, *first),
                long_date(language, *last)
            ),
            _ => String::new(),
        };
        let (previous_days, current_days) = payload.days.split_at(payload.days.len().min(7));
        let revenue_change = (payload.previous.revenue_minor > 0).then(|| {
            let change = (payload.current.revenue_minor - payload.previous.revenue_minor) as f64
                / payload.previous.revenue_minor as f64;
            format!("{:+.0}%", change * 100.0)
        });
        ReportContext {
            common,
            week: payload.week.clone(),
            period: range(current_days),
            previous_period: range(previous_days),
            current: WeekView::of(&payload.current),
            previous: WeekView::of(&payload.previous),
            revenue_change,
            scores_available: payload.scores_as_of.is_some(),
            scores_as_of: payload.scores_as_of.clone(),
            at_risk_total: payload.at_risk_total,
            newly_at_risk: payload
                .at_risk
                .iter()
                .filter(|e| payload.newly_at_risk.contains(&e.customer))
                .take(NEWLY_AT_RISK_SHOWN)
                .map(|e| AtRiskView::of(e, language))
                .collect(),
            win_back: payload
                .at_risk
                .iter()
                .take(WIN_BACK_SHOWN)
                .map(|e| AtRiskView::of(e, language))
                .collect(),
            loyalty: payload.loyalty,
            feedback: payload.feedback.as_ref().map(FeedbackView::of),
            missed_by_webhook: payload.missed_by_webhook,
            winback: payload
                .winback
                .as_ref()
                .map(|figures| WinbackView::of(figures, language)),
            chart_src: format!("cid:{CHART_CID}"),
        }
    }
}

/// The name a customer is greeted with.
pub fn greeting_name(language: EmailLanguage, name: Option<&str>) -> String {
    match (name.map(str::trim).filter(|n| !n.is_empty()), language) {
        (Some(name), _) => name.to_owned(),
        (None, EmailLanguage::Indonesian) => "Pelanggan setia".to_owned(),
        (None, EmailLanguage::English) => "valued customer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_links_are_tagged_unless_the_merchant_tagged_them() {
        assert_eq!(
            tagged_link("https://toko.id/p/kopi?warna=hitam#ulasan", OutboxKind::ThankYou),
            "https://toko.id/p/kopi?warna=hitam&utm_source=setia&utm_medium=email&utm_campaign=thank_you#ulasan"
        );
        assert_eq!(
            tagged_link(
                "https://toko.id/p/kopi?utm_source=ig",
                OutboxKind::BirthdayOffer
            ),
            "https://toko.id/p/kopi?utm_source=ig"
        );
    }

    use setia_core::CustomerId;

    #[test]
    fn dates_in_both_languages() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 14).unwrap();
        assert_eq!(long_date(EmailLanguage::Indonesian, day), "14 Maret 2027");
        assert_eq!(long_date(EmailLanguage::English, day), "14 March 2027");
        assert_eq!(short_date(EmailLanguage::Indonesian, day), "14 Mar");
        let may = NaiveDate::from_ymd_opt(2027, 5, 1).unwrap();
        assert_eq!(short_date(EmailLanguage::Indonesian, may), "1 Mei");
        assert_eq!(
            short_date(
                EmailLanguage::Indonesian,
                NaiveDate::from_ymd_opt(2027, 8, 17).unwrap()
            ),
            "17 Agu"
        );
    }

    fn customer(tier: Tier, spent_rupiah: i64) -> MailCustomer {
        MailCustomer {
            id: CustomerId::from_key(1),
            external_id: "C1".into(),
            name: None,
            email: None,
            consent: true,
            unsubscribed: false,
            birthday: None,
            tier,
            points_balance: 120,
            trailing_spend: Money::from_minor(spent_rupiah * 100),
            next_expiry: None,
        }
    }

    #[test]
    fn what_is_left_to_the_next_tier() {
        let program = LoyaltyProgram::default();
        let bronze = LoyaltyView::of(&customer(Tier::Bronze, 750_000), &program);
        assert_eq!(
            (
                bronze.tier,
                bronze.next_tier,
                bronze.to_next_tier.as_deref()
            ),
            ("Bronze", Some("Silver"), Some("Rp 1.250.000"))
        );
        let gold = LoyaltyView::of(&customer(Tier::Gold, 12_000_000), &program);
        assert_eq!((gold.next_tier, gold.to_next_tier), (None, None));
    }

    #[test]
    fn an_unreachable_tier_overflows_nothing() {
        // A program built without validation: `next_tier` saturates its threshold, and a
        // spend below zero must not overflow what is left.
        let program = LoyaltyProgram {
            silver_threshold_rupiah: i64::MAX,
            gold_threshold_rupiah: i64::MAX,
            ..LoyaltyProgram::default()
        };
        let view = LoyaltyView::of(&customer(Tier::Bronze, -1), &program);
        assert_eq!(
            view.to_next_tier.as_deref(),
            Some("Rp 92.233.720.368.547.758,07")
        );
    }

    #[test]
    fn week_figures_and_change() {
        let figures = WeekFigures {
            new_customers: 1,
            returning_customers: 3,
            purchases: 5,
            revenue_minor: 15_000_000,
        };
        assert_eq!(figures.repeat_rate(), Some(0.75));
        assert_eq!(WeekFigures::default().repeat_rate(), None);
        let payload = ReportPayload {
            week: "2027-W10".into(),
            days: (0..14)
                .map(|i| NaiveDate::from_ymd_opt(2027, 2, 22).unwrap() + chrono::TimeDelta::days(i))
                .collect(),
            daily_revenue_minor: vec![0; 14],
            current: figures,
            previous: WeekFigures {
                revenue_minor: 12_000_000,
                ..WeekFigures::default()
            },
            scores_as_of: None,
            at_risk_total: 0,
            at_risk: vec![],
            newly_at_risk: vec![],
            loyalty: LoyaltyTotals::default(),
            feedback: Some(FeedbackWeeks {
                kind: FeedbackKind::Nps,
                responses: 20,
                previous_responses: 0,
                satisfaction: Some(0.35),
                previous_satisfaction: None,
                new_complaints: 2,
                unresolved_complaints: 3,
            }),
            missed_by_webhook: Some(2),
            winback: Some(WinbackFigures {
                entered_from: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                entered_until: NaiveDate::from_ymd_opt(2027, 1, 29).unwrap(),
                treated: 180,
                holdout: 20,
                extra_customers: Some(Estimate {
                    value: 12.4,
                    margin: 9.2,
                }),
                extra_revenue_minor: Some(Estimate {
                    value: -125_000_049.0,
                    margin: 90_000_000.0,
                }),
            }),
        };
        let common = Common {
            merchant_name: "Toko".into(),
            language: "id",
            unsubscribe_url: None,
            member_url: None,
            recommendations: Vec::new(),
        };
        let view = ReportContext::of(common, &payload, EmailLanguage::Indonesian);
        assert_eq!(view.revenue_change.as_deref(), Some("+25%"));
        assert_eq!(view.current.repeat_rate, "75%");
        assert_eq!(view.current.revenue, "Rp 150.000");
        assert_eq!(view.period, "1 Mar – 7 Maret 2027");
        assert_eq!(view.previous_period, "22 Feb – 28 Februari 2027");
        assert_eq!(view.missed_by_webhook, Some(2));
        let winback = view.winback.unwrap();
        assert_eq!(winback.entered, "1 Desember 2026 – 29 Januari 2027");
        assert_eq!(
            (
                winback.enough,
                winback.customers.as_str(),
                winback.customers_margin.as_str(),
                winback.customers_fewer
            ),
            (true, "12", "9", false)
        );
        assert_eq!(
            (
                winback.revenue.as_str(),
                winback.revenue_margin.as_str(),
                winback.revenue_less
            ),
            ("Rp 1.250.000", "Rp 900.000", true)
        );
        let thin = WinbackView::of(
            &WinbackFigures {
                extra_revenue_minor: None,
                ..payload.winback.unwrap()
            },
            EmailLanguage::English,
        );
        assert!(!thin.enough);
        // An estimate past i64 sen (a wild interval on few customers) is a huge amount.
        let wild = WinbackView::of(
            &WinbackFigures {
                extra_revenue_minor: Some(Estimate {
                    value: 1e30,
                    margin: f64::INFINITY,
                }),
                ..payload.winback.unwrap()
            },
            EmailLanguage::English,
        );
        assert_eq!(wild.revenue, "Rp 92.233.720.368.547.758");
        assert_eq!(wild.revenue_margin, wild.revenue);
        // The line in both languages, and what it says with too little data.
        let templates = |language| {
            crate::templates::TemplateLoader::new(None).load(
                &setia_core::MerchantId::from_random_bytes([3; 20]),
                language,
            )
        };
        let common = |language: &'static str| Common {
            merchant_name: "Toko".into(),
            language,
            unsubscribe_url: None,
            member_url: None,
            recommendations: Vec::new(),
        };
        let rendered = |payload: &ReportPayload, language| {
            let code = match language {
                EmailLanguage::Indonesian => "id",
                EmailLanguage::English => "en",
            };
            templates(language)
                .render(
                    OutboxKind::WeeklyChurnReport,
                    &ReportContext::of(common(code), payload, language),
                )
                .unwrap()
        };
        let id = rendered(&payload, EmailLanguage::Indonesian);
        assert!(
            id.text.contains(
                "Win-back: 180 pelanggan dikirimi email, 20 kontrol (masuk 1 Desember 2026 – \
                 29 Januari 2027); dalam 30 hari 12 (± 9) pelanggan lebih banyak kembali belanja \
                 dan pendapatan Rp 1.250.000 (± Rp 900.000) lebih sedikit dibanding kelompok \
                 kontrol (interval 95%)."
            ),
            "{}",
            id.text
        );
        assert!(id
            .html
            .contains("<strong>Rp 1.250.000</strong> (± Rp 900.000) lebih sedikit"));
        let en = rendered(&payload, EmailLanguage::English);
        assert!(
            en.text.contains(
                "Win-back: 180 customers emailed, 20 held out (entered 1 December 2026 – \
                 29 January 2027); within 30 days 12 (± 9) more customers came back and revenue \
                 was Rp 1.250.000 (± Rp 900.000) lower than in the holdout (95% interval)."
            ),
            "{}",
            en.text
        );
        let too_few = ReportPayload {
            winback: Some(WinbackFigures {
                extra_customers: None,
                extra_revenue_minor: None,
                ..payload.winback.unwrap()
            }),
            ..payload.clone()
        };
        let id = rendered(&too_few, EmailLanguage::Indonesian);
        assert!(
            id.text
                .contains("kontrol (masuk 1 Desember 2026 – 29 Januari 2027); belum cukup data"),
            "{}",
            id.text
        );
        assert!(!id.text.contains("interval 95%"));
        let en = rendered(&too_few, EmailLanguage::English);
        assert!(en.html.contains("Not enough data yet"), "{}", en.html);
        let off = rendered(
            &ReportPayload {
                winback: None,
                ..payload.clone()
            },
            EmailLanguage::English,
        );
        assert!(!off.text.contains("Win-back:") && !off.html.contains(">Win-back<"));
        // A report frozen before win-back existed reads back without it.
        let mut old = serde_json::to_value(&payload).unwrap();
        old.as_object_mut().unwrap().remove("winback");
        let old: ReportPayload = serde_json::from_value(old).unwrap();
        assert_eq!(old.winback, None);
        let feedback = view.feedback.unwrap();
        assert_eq!(
            (
                feedback.label,
                feedback.figure.as_str(),
                feedback.previous_figure.as_str()
            ),
            ("NPS", "+35", "–")
        );
        let csat = FeedbackView::of(&FeedbackWeeks {
            kind: FeedbackKind::Csat,
            satisfaction: Some(0.824),
            ..payload.feedback.unwrap()
        });
        assert_eq!((csat.label, csat.figure.as_str()), ("CSAT", "82%"));
    }
}
