//! Referrals (DESIGN §8, `[referral]`): the scheduler's pass that pays the rewards whose hold
//! is over (the store credits the points and enqueues the email in one transaction), what the
//! reward email says, and the offer a customer's emails carry with their personal code. Who
//! qualifies is `setia_core::referral`'s rule, decided in the ledger's transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use setia_core::engagement::{EngagementProgram, ReferralSettings};
use setia_core::referral::{ReferralCode, ReferralStatus};
use setia_core::{format_rupiah, CustomerId};
use setia_store::mail::{ClaimedEmail, MailCustomer, MailMerchant, OutboxKind};
use setia_store::referral::{Referral, ReferralParty, ReferralVia};

use crate::context::{Common, LoyaltyView};
use crate::{MailError, Mailer};

/// The offer a customer's email makes with their personal code: what a friend gets, what
/// they get, and the link to share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralOffer {
    pub code: String,
    /// `{public_url}/r/{code}`.
    pub url: String,
    /// The friend's discount on their first order, in percent.
    pub friend_percent: u32,
    /// The least first order that counts, `Rp 100.000`.
    pub min_first_order: String,
    /// Points the customer earns once the friend's first transfer has cleared.
    pub advocate_points: u32,
}

impl ReferralOffer {
    pub fn of(settings: &ReferralSettings, public_url: &str, code: &ReferralCode) -> ReferralOffer {
        ReferralOffer {
            code: code.to_string(),
            url: code.link(public_url),
            friend_percent: settings.friend_voucher_percent,
            min_first_order: format_rupiah(settings.min_first_order()),
            advocate_points: settings.advocate_points,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferralRewardContext {
    #[serde(flatten)]
    pub common: Common,
    pub customer_name: String,
    /// The friend's first name; none when the store gave no name, and the templates then
    /// say "your friend".
    pub friend_name: Option<String>,
    /// Points this referral earned.
    pub points: i64,
    /// The balance as of sending, the reward included.
    pub loyalty: LoyaltyView,
    /// The advocate's own code, to refer again; none once the program is off.
    pub referral: Option<ReferralOffer>,
}

/// A reward email's period: the referral's id.
pub(crate) fn parse_period(period: &str) -> Option<i64> {
    let id: i64 = period.parse().ok()?;
    (id > 0 && id.to_string() == period).then_some(id)
}

/// The first word of a name, for "Budi has made his first purchase": a friend's full name is
/// more than the advocate needs to be told.
pub(crate) fn first_name(name: Option<&str>) -> Option<String> {
    name?.split_whitespace().next().map(str::to_owned)
}

/// The referral a reward email is about, or why the email is not sent: it must still be the
/// advocate's, and rewarded.
pub(crate) fn rewarded(
    referral: Option<&Referral>,
    advocate: CustomerId,
) -> Result<&Referral, &'static str> {
    let Some(referral) = referral else {
        return Err("the referral no longer exists");
    };
    if referral.advocate.id != advocate {
        return Err("the referral is another customer's");
    }
    if referral.status != ReferralStatus::Rewarded.as_str() {
        return Err("the referral is not rewarded");
    }
    Ok(referral)
}

pub(crate) fn reward_context(
    referral: &Referral,
    customer_name: String,
    loyalty: LoyaltyView,
    offer: Option<ReferralOffer>,
    common: Common,
) -> ReferralRewardContext {
    ReferralRewardContext {
        common,
        customer_name,
        friend_name: first_name(referral.friend.name.as_deref()),
        points: referral.points.unwrap_or_default(),
        loyalty,
        referral: offer,
    }
}

fn offer_of(
    settings: &ReferralSettings,
    public_url: &str,
    codes: &HashMap<CustomerId, ReferralCode>,
    customer: CustomerId,
) -> Option<ReferralOffer> {
    let code = codes.get(&customer).filter(|_| settings.enabled)?;
    Some(ReferralOffer::of(settings, public_url, code))
}

/// Whether a customer's email can go out at all: a code made for one who cannot be mailed
/// would be a write for nothing.
fn mailable(customer: &MailCustomer) -> bool {
    customer.consent && !customer.unsubscribed && customer.email.is_some()
}

impl Mailer {
    /// Pays one merchant's referral rewards whose hold is over at `now`; returns how many
    /// (each with its email).
    pub(crate) async fn schedule_referral_rewards(
        &self,
        mail: &MailMerchant,
        program: &EngagementProgram,
        now: DateTime<Utc>,
    ) -> Result<u64, MailError> {
        let settings = &program.referral;
        if !settings.enabled {
            return Ok(0);
        }
        let paid = self
            .store
            .reward_due_referrals(&mail.merchant.id, settings.advocate_points, now)
            .await?;
        for reward in &paid {
            tracing::info!(
                merchant = %mail.merchant.id,
                referral = reward.referral,
                advocate = %reward.advocate,
                points = reward.points,
                "referral reward paid"
            );
        }
        Ok(paid.len() as u64)
    }

    /// The personal codes of the customers a claimed batch's thank-you and reward emails go
    /// to, in one call (made on first use); none while the program is off.
    pub(crate) async fn batch_referral_codes(
        &self,
        mail: &MailMerchant,
        program: &EngagementProgram,
        rows: &[ClaimedEmail],
        customers: &HashMap<CustomerId, MailCustomer>,
        now: DateTime<Utc>,
    ) -> Result<HashMap<CustomerId, ReferralCode>, MailError> {
        // A sandbox merchant's customers get no email.
        if !program.referral.enabled || mail.merchant.sandbox {
            return Ok(HashMap::new());
        }
        let mut seen = HashSet::new();
        let ids: Vec<CustomerId> = rows
            .iter()
            .filter(|row| matches!(row.kind, OutboxKind::ThankYou | OutboxKind::ReferralReward))
            .filter_map(|row| row.customer)
            .filter(|id| customers.get(id).is_some_and(mailable))
            .filter(|id| seen.insert(*id))
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .store
            .referral_codes(&mail.merchant.id, &mail.secret, &ids, now)
            .await?)
    }

    /// The offer of a customer whose code is in `codes`, when the program is on.
    pub(crate) fn referral_offer(
        &self,
        program: &EngagementProgram,
        codes: &HashMap<CustomerId, ReferralCode>,
        customer: CustomerId,
    ) -> Option<ReferralOffer> {
        offer_of(&program.referral, &self.config.public_url, codes, customer)
    }

    /// The offer a preview shows: a real customer's own code, or a sample code (which leads
    /// nowhere) for the sample customer.
    pub(crate) async fn preview_referral_offer(
        &self,
        mail: &MailMerchant,
        program: &EngagementProgram,
        customer: Option<&MailCustomer>,
        now: DateTime<Utc>,
    ) -> Result<Option<ReferralOffer>, MailError> {
        if !program.referral.enabled {
            return Ok(None);
        }
        let codes = match customer {
            Some(c) => {
                self.store
                    .referral_codes(&mail.merchant.id, &mail.secret, &[c.id], now)
                    .await?
            }
            None => HashMap::from([(
                SAMPLE_ADVOCATE,
                ReferralCode::parse(SAMPLE_CODE).expect("the sample code is a code"),
            )]),
        };
        let who = customer.map_or(SAMPLE_ADVOCATE, |c| c.id);
        Ok(self.referral_offer(program, &codes, who))
    }
}

/// The sample customer previews use, and a code that is no customer's (codes are HMACs).
const SAMPLE_ADVOCATE: CustomerId = CustomerId::from_key(1);
const SAMPLE_CODE: &str = "CTH00000";

/// A rewarded referral for previews: referral 0, which no merchant has.
pub(crate) fn sample(
    program: &EngagementProgram,
    advocate: &MailCustomer,
    now: DateTime<Utc>,
) -> Referral {
    let points = i64::from(program.referral.advocate_points);
    Referral {
        id: 0,
        advocate: ReferralParty {
            id: advocate.id,
            external_id: advocate.external_id.clone(),
            name: advocate.name.clone(),
        },
        friend: ReferralParty {
            id: CustomerId::from_key(0),
            external_id: "CONTOH-2".into(),
            name: Some("Budi Santoso".into()),
        },
        via: ReferralVia::Order,
        referred_at: now,
        status: ReferralStatus::Rewarded.as_str(),
        reason: None,
        purchase_id: None,
        purchase_amount: None,
        qualified_at: Some(now),
        reward_due_at: Some(now),
        rewarded_at: Some(now),
        points: Some(points),
    }
}

#[cfg(test)]
mod tests {
    use setia_core::loyalty::{LoyaltyProgram, Tier};

    use setia_store::mail::EmailLanguage;

    use super::*;
    use crate::templates::TemplateLoader;

    fn customer(name: Option<&str>) -> MailCustomer {
        MailCustomer {
            id: CustomerId::from_key(7),
            external_id: "C7".into(),
            name: name.map(str::to_owned),
            email: Some("ani@example.co.id".into()),
            consent: true,
            unsubscribed: false,
            birthday: None,
            tier: Tier::Bronze,
            points_balance: 215,
            trailing_spend: setia_core::Money::from_minor(15_000_000),
            next_expiry: None,
        }
    }

    fn settings() -> ReferralSettings {
        ReferralSettings {
            enabled: true,
            ..ReferralSettings::default()
        }
    }

    fn code() -> ReferralCode {
        ReferralCode::parse("7K3MX9QA").unwrap()
    }

    fn common(language: &'static str) -> Common {
        Common {
            merchant_name: "Toko Kopi".into(),
            language,
            unsubscribe_url: Some("https://setia.example/u/t".into()),
            member_url: Some("https://setia.example/m/t".into()),
            recommendations: Vec::new(),
        }
    }

    fn a_rewarded_referral(friend: Option<&str>) -> Referral {
        let program = EngagementProgram {
            referral: settings(),
            ..EngagementProgram::default()
        };
        let mut referral = sample(&program, &customer(Some("Ani")), DateTime::UNIX_EPOCH);
        referral.id = 12;
        referral.friend.name = friend.map(str::to_owned);
        referral
    }

    #[test]
    fn the_offer_says_what_each_side_gets_and_links_the_code() {
        let offer = ReferralOffer::of(&settings(), "https://toko.example", &code());
        assert_eq!(
            offer,
            ReferralOffer {
                code: "7K3MX9QA".into(),
                url: "https://toko.example/r/7K3MX9QA".into(),
                friend_percent: 10,
                min_first_order: "Rp 100.000".into(),
                advocate_points: 200,
            }
        );
        let huge = ReferralSettings {
            min_first_order_rupiah: u64::MAX,
            ..settings()
        };
        // Absurd settings still give an amount, not a panic.
        assert!(ReferralOffer::of(&huge, "https://toko.example", &code())
            .min_first_order
            .starts_with("Rp "));
    }

    #[test]
    fn periods_are_referral_ids() {
        assert_eq!(parse_period("12"), Some(12));
        for bad in ["", "0", "-3", "012", "+12", "12-0", "2027-03-14"] {
            assert_eq!(parse_period(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_friend_is_named_by_their_first_name() {
        assert_eq!(first_name(Some("  Budi Santoso ")), Some("Budi".into()));
        assert_eq!(first_name(Some("Citra")), Some("Citra".into()));
        assert_eq!(first_name(Some("   ")), None);
        assert_eq!(first_name(None), None);
    }

    #[test]
    fn only_a_rewarded_referral_of_the_advocate_is_mailed() {
        let advocate = CustomerId::from_key(7);
        let referral = a_rewarded_referral(Some("Budi"));
        assert_eq!(rewarded(Some(&referral), advocate), Ok(&referral));
        assert_eq!(
            rewarded(None, advocate),
            Err("the referral no longer exists")
        );
        assert_eq!(
            rewarded(Some(&referral), CustomerId::from_key(8)),
            Err("the referral is another customer's")
        );
        for status in [ReferralStatus::Qualified, ReferralStatus::Cancelled] {
            let other = Referral {
                status: status.as_str(),
                ..referral.clone()
            };
            assert_eq!(
                rewarded(Some(&other), advocate),
                Err("the referral is not rewarded")
            );
        }
    }

    #[test]
    fn the_reward_email_in_both_languages() {
        let program = LoyaltyProgram::default();
        let merchant = setia_core::MerchantId::from_random_bytes([5; 20]);
        let offer = ReferralOffer::of(&settings(), "https://toko.example", &code());
        for (language, code_name, says, neutral) in [
            (
                EmailLanguage::Indonesian,
                "id",
                "Anda mendapat 200 poin",
                "Teman yang Anda ajak",
            ),
            (
                EmailLanguage::English,
                "en",
                "You earned 200 points",
                "The friend you invited",
            ),
        ] {
            let templates = TemplateLoader::new(None).load(&merchant, language);
            let advocate = customer(Some("Ani <b>Lestari</b>"));
            let context = reward_context(
                &a_rewarded_referral(Some("Budi <i>Santoso</i>")),
                crate::context::greeting_name(language, advocate.name.as_deref()),
                LoyaltyView::of(&advocate, &program),
                Some(offer.clone()),
                common(code_name),
            );
            let email = templates
                .render(OutboxKind::ReferralReward, &context)
                .unwrap();
            assert!(email.subject.contains("200"), "{}", email.subject);
            assert!(email.subject.starts_with("Ani <b>Lestari</b>"));
            assert!(email.text.contains(says), "{}", email.text);
            assert!(email.text.contains("Budi"), "{}", email.text);
            assert!(!email.text.contains("Santoso"), "first name only");
            assert!(email.text.contains("215"), "the balance: {}", email.text);
            assert!(email.text.contains("https://toko.example/r/7K3MX9QA"));
            assert!(email.text.contains("https://setia.example/u/t"));
            let html = email.html.replace("&#x2f;", "/");
            assert!(html.contains("Ani &lt;b&gt;Lestari&lt;/b&gt;"), "{html}");
            assert!(!html.contains("<b>Lestari"));
            assert!(html.contains("href=\"https://toko.example/r/7K3MX9QA\""));
            assert!(html.contains("7K3MX9QA"));

            // No name for the friend, and the program off since: no code to share.
            let bare = reward_context(
                &a_rewarded_referral(None),
                "Ani".into(),
                LoyaltyView::of(&advocate, &program),
                None,
                common(code_name),
            );
            let email = templates.render(OutboxKind::ReferralReward, &bare).unwrap();
            assert!(email.text.contains(neutral), "{}", email.text);
            assert!(!email.text.contains("/r/") && !email.html.contains("&#x2f;r&#x2f;"));
        }
    }

    #[test]
    fn a_thank_you_carries_the_offer_only_when_there_is_one() {
        let merchant = setia_core::MerchantId::from_random_bytes([6; 20]);
        let offer = ReferralOffer::of(&settings(), "https://toko.example", &code());
        for (language, code_name, sentence) in [
            (
                EmailLanguage::Indonesian,
                "id",
                "teman Anda mendapat diskon 10% untuk belanja pertama minimal Rp 100.000, dan \
                 Anda mendapat 200 poin setelah transfer pertamanya kami terima",
            ),
            (
                EmailLanguage::English,
                "en",
                "your friend gets 10% off a first order of at least Rp 100.000, and you get \
                 200 points once their first transfer has cleared",
            ),
        ] {
            let templates = TemplateLoader::new(None).load(&merchant, language);
            let context = |referral: Option<ReferralOffer>| crate::context::ThankYouContext {
                common: common(code_name),
                customer_name: "Ani".into(),
                day: "14 Maret 2027".into(),
                purchases: vec![crate::context::PurchaseView {
                    amount: "Rp 150.000".into(),
                    time: "10:00".into(),
                    points: 15,
                }],
                total: "Rp 150.000".into(),
                points_earned: 15,
                loyalty: LoyaltyView::of(&customer(None), &LoyaltyProgram::default()),
                referral,
            };
            let with = templates
                .render(OutboxKind::ThankYou, &context(Some(offer.clone())))
                .unwrap();
            let text = with.text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(text.contains(sentence), "{text}");
            assert!(text.contains("7K3MX9QA"));
            assert!(text.contains("https://toko.example/r/7K3MX9QA"));
            let html = with.html.replace("&#x2f;", "/");
            let html_text = html.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(html_text.contains(sentence), "{html_text}");
            assert!(html.contains("href=\"https://toko.example/r/7K3MX9QA\""));

            let without = templates
                .render(OutboxKind::ThankYou, &context(None))
                .unwrap();
            assert!(!without.text.contains("7K3MX9QA") && !without.text.contains("/r/"));
            assert!(!without.html.contains("&#x2f;r&#x2f;"));
        }
    }

    #[test]
    fn the_offer_needs_the_program_on_and_a_code() {
        let codes = HashMap::from([(CustomerId::from_key(7), code())]);
        let offer = |settings: &ReferralSettings, customer: i64| {
            offer_of(
                settings,
                "https://toko.example",
                &codes,
                CustomerId::from_key(customer),
            )
        };
        assert_eq!(
            offer(&settings(), 7).map(|o| o.url),
            Some("https://toko.example/r/7K3MX9QA".into())
        );
        assert_eq!(offer(&settings(), 8), None, "no code, no offer");
        assert_eq!(
            offer(&ReferralSettings::default(), 7),
            None,
            "off by default"
        );
    }
}
