//! Membership perks (DESIGN §8, `[perks]`): the scheduler's pass that enqueues tier nudges
//! (in bulk, in the store), and what the `tier_welcome` and `tier_nudge` emails say. Who
//! crosses into a tier is decided in the ledger's transaction; who is near the next one is
//! `setia_core::perks`'s rule, whose windows the store's selection uses.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::Serialize;
use setia_core::engagement::{EngagementProgram, PerksSettings};
use setia_core::loyalty::{LoyaltyProgram, Tier};
use setia_core::mail_token::{tier_voucher_code, MemberToken};
use setia_core::perks::{nudge_due, nudge_windows};
use setia_core::{format_rupiah, CustomerId};
use setia_store::mail::{EmailLanguage, MailCustomer, MailMerchant};
use setia_store::perks::TierWelcomePayload;

use crate::context::{Common, LoyaltyView};
use crate::{schedule, MailError, Mailer};

/// How often one process looks for customers to nudge: a nudge is once a year and not
/// urgent, and the look sums a year of a merchant's purchases.
pub const NUDGE_SCAN_EVERY: TimeDelta = TimeDelta::hours(1);

/// A tier as an email shows it: its title, the built-in points multiplier and the
/// merchant's perk lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierView {
    pub title: String,
    /// `1,25` / `1.25`: the points multiplier, none at ×1.
    pub points_multiplier: Option<String>,
    pub perks: Vec<String>,
}

impl TierView {
    pub fn of(
        language: EmailLanguage,
        perks: &PerksSettings,
        program: &LoyaltyProgram,
        tier: Tier,
    ) -> TierView {
        let offer = perks.offer(tier);
        TierView {
            title: offer.title,
            points_multiplier: multiplier_text(language, program.multiplier(tier)),
            perks: offer.perks,
        }
    }
}

/// `1,25` in Indonesian, `1.25` in English; none for ×1 (no perk to show).
pub fn multiplier_text(language: EmailLanguage, multiplier: f64) -> Option<String> {
    if multiplier <= 1.0 {
        return None;
    }
    let text = format!("{multiplier:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    Some(match language {
        EmailLanguage::Indonesian => text.replace('.', ","),
        EmailLanguage::English => text.to_owned(),
    })
}

/// The personal voucher of a welcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierVoucher {
    pub code: String,
    pub percent: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierWelcomeContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    pub tier: TierView,
    /// Entry points credited with the crossing (0: none, and the email says nothing of them).
    pub entry_points: i64,
    pub voucher: Option<TierVoucher>,
    pub loyalty: LoyaltyView,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierNudgeContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    /// The tier within reach.
    pub next_tier: TierView,
    /// What is left to spend to reach it, `Rp 250.000`.
    pub to_spend: String,
    pub loyalty: LoyaltyView,
}

/// A nudge's period: the tier and the merchant-local year, `gold-2027`.
pub(crate) fn nudge_period(tier: Tier, year: i32) -> String {
    format!("{}-{year}", tier.as_str())
}

fn parse_nudge_period(period: &str) -> Option<Tier> {
    let (tier, year) = period.split_once('-')?;
    year.parse::<i32>().ok()?;
    Tier::parse(tier).filter(|tier| *tier != Tier::Bronze)
}

/// The welcome of a claimed row: the payload frozen at the crossing, the voucher's code
/// derived again from the merchant's secret.
pub(crate) fn welcome_context(
    mail: &MailMerchant,
    program: &LoyaltyProgram,
    customer: &MailCustomer,
    payload: &TierWelcomePayload,
    tier: Tier,
    customer_name: String,
    common: Common,
) -> TierWelcomeContext {
    TierWelcomeContext {
        common,
        customer_name,
        tier: TierView {
            title: payload.title.clone(),
            points_multiplier: multiplier_text(mail.language, program.multiplier(tier)),
            perks: payload.perks.clone(),
        },
        entry_points: payload.entry_points,
        voucher: payload.voucher_percent.map(|percent| TierVoucher {
            code: tier_voucher_code(&mail.secret, &mail.merchant.id, customer.id, tier),
            percent,
        }),
        loyalty: LoyaltyView::of(customer, program),
    }
}

/// Reads a welcome row: its tier (the period) and payload, or why it cannot be sent.
pub(crate) fn parse_welcome(
    period: &str,
    payload: Option<&str>,
) -> Result<(Tier, TierWelcomePayload), String> {
    let tier = Tier::parse(period)
        .filter(|tier| *tier != Tier::Bronze)
        .ok_or_else(|| format!("period {period:?} is not a tier"))?;
    let payload: TierWelcomePayload = serde_json::from_str(payload.unwrap_or_default())
        .map_err(|error| format!("tier welcome payload: {error}"))?;
    Ok((tier, payload))
}

/// The nudge of a claimed row, or why it is no longer due: the customer reached the tier
/// meanwhile, or left its window.
pub(crate) fn nudge_context(
    language: EmailLanguage,
    perks: &PerksSettings,
    program: &LoyaltyProgram,
    customer: &MailCustomer,
    period: &str,
    customer_name: String,
    common: Common,
) -> Result<TierNudgeContext, String> {
    let tier = parse_nudge_period(period)
        .ok_or_else(|| format!("period {period:?} is not a tier nudge"))?;
    if customer.tier >= tier {
        return Err("the customer reached the tier".into());
    }
    // The window of the enqueueing is the rule; what is left is as of sending.
    let left = match nudge_due(program, perks.nudge_within_percent, customer.trailing_spend) {
        Some((due, left)) if due == tier => left,
        _ => return Err("the customer is no longer near the tier".into()),
    };
    Ok(TierNudgeContext {
        common,
        customer_name,
        next_tier: TierView::of(language, perks, program, tier),
        to_spend: format_rupiah(left),
        loyalty: LoyaltyView::of(customer, program),
    })
}

impl Mailer {
    /// Enqueues one merchant's tier nudges due at `now`: customers near their next tier,
    /// once per tier and merchant-local year. Each process looks at most every
    /// [`NUDGE_SCAN_EVERY`]: the look sums a year of the merchant's purchases.
    pub(crate) async fn schedule_tier_nudges(
        &self,
        mail: &MailMerchant,
        program: &EngagementProgram,
        now: DateTime<Utc>,
    ) -> Result<u64, MailError> {
        let perks = &program.perks;
        let merchant = &mail.merchant.id;
        // Sandbox merchants never mail their customers.
        if !perks.enabled
            || perks.nudge_within_percent == 0
            || mail.merchant.sandbox
            || !self.nudge_scans.due(merchant, now)
        {
            return Ok(0);
        }
        let loyalty = self.store.loyalty_program(merchant).await?;
        let windows = nudge_windows(&loyalty, perks.nudge_within_percent);
        let spends = self.store.spend_in_windows(merchant, &windows, now).await?;
        let mut by_tier: BTreeMap<Tier, Vec<CustomerId>> = BTreeMap::new();
        for spend in spends {
            if let Some(window) = windows.iter().find(|w| w.contains(spend.spent)) {
                by_tier.entry(window.tier).or_default().push(spend.customer);
            }
        }
        let zone = mail.merchant.timezone;
        let year = zone.local_day(now).year();
        let due_at = schedule::marketing_hours(zone, now);
        let mut enqueued = 0;
        for (tier, customers) in by_tier {
            enqueued += self
                .store
                .enqueue_tier_nudges(merchant, &nudge_period(tier, year), &customers, due_at, now)
                .await?;
        }
        Ok(enqueued)
    }

    /// The member page of a customer: `{public_url}/m/{token}`.
    pub(crate) fn member_url(&self, mail: &MailMerchant, customer: CustomerId) -> String {
        let token = MemberToken::sign(&mail.secret, &mail.merchant.id, customer);
        format!("{}/m/{token}", self.config.public_url)
    }
}

/// A welcome for previews: to the sample customer's next tier up from member (or their
/// own tier), with that tier's entry award and voucher as the program sets them.
pub(crate) fn sample_welcome(
    perks: &PerksSettings,
    customer: &MailCustomer,
) -> (Tier, TierWelcomePayload) {
    let tier = customer.tier.max(Tier::Silver);
    let offer = perks.offer(tier);
    let payload = TierWelcomePayload {
        tier: tier.as_str().to_owned(),
        title: offer.title,
        perks: offer.perks,
        entry_points: i64::from(offer.entry_points),
        voucher_percent: offer.entry_voucher_percent,
    };
    (tier, payload)
}

/// A nudge for previews: towards the customer's next tier, with what is left as of now (the
/// window is not checked: a preview shows the email whoever it is for).
pub(crate) fn sample_nudge(
    language: EmailLanguage,
    perks: &PerksSettings,
    program: &LoyaltyProgram,
    customer: &MailCustomer,
    customer_name: String,
    common: Common,
) -> TierNudgeContext {
    let (tier, left) = setia_core::perks::to_next_tier(program, customer.trailing_spend)
        .unwrap_or((Tier::Gold, setia_core::Money::from_minor(0)));
    TierNudgeContext {
        common,
        customer_name,
        next_tier: TierView::of(language, perks, program, tier),
        to_spend: format_rupiah(left),
        loyalty: LoyaltyView::of(customer, program),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use setia_core::Money;

    fn customer(tier: Tier, spent_rupiah: i64) -> MailCustomer {
        MailCustomer {
            id: CustomerId::from_key(3),
            external_id: "C3".into(),
            name: Some("Ani".into()),
            email: Some("ani@example.co.id".into()),
            consent: true,
            unsubscribed: false,
            birthday: None,
            tier,
            points_balance: 40,
            trailing_spend: Money::from_minor(spent_rupiah * 100),
            next_expiry: None,
        }
    }

    fn common() -> Common {
        Common {
            merchant_name: "Toko Kopi".into(),
            language: "id",
            unsubscribe_url: None,
            member_url: None,
            recommendations: Vec::new(),
        }
    }

    #[test]
    fn both_emails_render_the_perks_escaped_and_link_the_member_page() {
        use crate::templates::TemplateLoader;
        use setia_core::MerchantId;
        use setia_store::mail::OutboxKind;

        let mut perks = EngagementProgram::standard().perks;
        perks.gold.perks = vec!["Akses awal <b>koleksi</b> baru".into()];
        let program = LoyaltyProgram::default();
        let common = Common {
            unsubscribe_url: Some("https://setia.example/u/t".into()),
            member_url: Some("https://setia.example/m/t".into()),
            ..common()
        };
        let templates = TemplateLoader::new(None).load(
            &MerchantId::from_random_bytes([1; 20]),
            EmailLanguage::Indonesian,
        );
        let near = customer(Tier::Silver, 9_100_000);
        let nudge = nudge_context(
            EmailLanguage::Indonesian,
            &perks,
            &program,
            &near,
            "gold-2027",
            "Ani".into(),
            common.clone(),
        )
        .unwrap();
        let email = templates.render(OutboxKind::TierNudge, &nudge).unwrap();
        assert!(email.subject.contains("Rp 900.000") && email.subject.contains("Gold"));
        assert!(email.html.contains("Akses awal &lt;b&gt;koleksi"));
        assert!(!email.html.contains("<b>koleksi"));
        assert!(email.text.contains("- Akses awal <b>koleksi</b> baru"));
        assert!(email.text.contains("Poin 1,5×"));
        // HTML escapes the slashes of a link (minijinja writes `&#x2f;`).
        assert!(email.text.contains("https://setia.example/m/t"));
        assert!(email.html.contains("setia.example&#x2f;m&#x2f;t"));
        let payload = TierWelcomePayload {
            tier: "gold".into(),
            title: "Gold".into(),
            perks: perks.gold.perks.clone(),
            entry_points: 600,
            voucher_percent: Some(15),
        };
        let context = TierWelcomeContext {
            common,
            customer_name: "Ani".into(),
            tier: TierView {
                title: payload.title.clone(),
                points_multiplier: Some("1,5".into()),
                perks: payload.perks.clone(),
            },
            entry_points: payload.entry_points,
            voucher: Some(TierVoucher {
                code: "TIER-7K3MX9QA".into(),
                percent: 15,
            }),
            loyalty: LoyaltyView::of(&near, &program),
        };
        let email = templates.render(OutboxKind::TierWelcome, &context).unwrap();
        assert!(email.subject.contains("Gold"));
        for part in [&email.html, &email.text] {
            assert!(
                part.contains("600 poin") && part.contains("TIER-7K3MX9QA"),
                "{part}"
            );
            assert!(part.contains("15%"));
        }
        assert!(email.text.contains("https://setia.example/m/t"));
        assert!(email.html.contains("setia.example&#x2f;m&#x2f;t"));
        assert!(email.html.contains("&lt;b&gt;koleksi"));
    }

    #[test]
    fn multipliers_are_written_in_the_language() {
        assert_eq!(
            multiplier_text(EmailLanguage::Indonesian, 1.25).as_deref(),
            Some("1,25")
        );
        assert_eq!(
            multiplier_text(EmailLanguage::English, 1.5).as_deref(),
            Some("1.5")
        );
        assert_eq!(
            multiplier_text(EmailLanguage::English, 2.0).as_deref(),
            Some("2")
        );
        assert_eq!(multiplier_text(EmailLanguage::English, 1.0), None);
    }

    #[test]
    fn periods_name_a_tier_above_member() {
        assert_eq!(nudge_period(Tier::Gold, 2027), "gold-2027");
        assert_eq!(parse_nudge_period("gold-2027"), Some(Tier::Gold));
        assert_eq!(parse_nudge_period("bronze-2027"), None);
        assert_eq!(parse_nudge_period("gold"), None);
        assert_eq!(parse_nudge_period("gold-x"), None);
        assert!(parse_welcome("bronze", Some("{}")).is_err());
        assert!(parse_welcome("silver", Some("not json")).is_err());
    }

    #[test]
    fn a_nudge_says_what_is_left_and_lapses_once_the_tier_is_reached() {
        let perks = EngagementProgram::standard().perks;
        let program = LoyaltyProgram::default();
        let near = customer(Tier::Silver, 9_100_000);
        let context = nudge_context(
            EmailLanguage::Indonesian,
            &perks,
            &program,
            &near,
            "gold-2027",
            "Ani".into(),
            common(),
        )
        .unwrap();
        assert_eq!(context.to_spend, "Rp 900.000");
        assert_eq!(context.next_tier.title, "Gold");
        assert_eq!(context.next_tier.points_multiplier.as_deref(), Some("1,5"));
        let reached = customer(Tier::Gold, 10_000_000);
        assert!(nudge_context(
            EmailLanguage::Indonesian,
            &perks,
            &program,
            &reached,
            "gold-2027",
            "Ani".into(),
            common()
        )
        .is_err());
        // Refunds took the customer out of the window: no nudge.
        let far = customer(Tier::Silver, 3_000_000);
        assert!(nudge_context(
            EmailLanguage::Indonesian,
            &perks,
            &program,
            &far,
            "gold-2027",
            "Ani".into(),
            common()
        )
        .is_err());
    }
}
