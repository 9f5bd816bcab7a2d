//! Referral rules (DESIGN §8, `[referral]`): a customer's personal code, whether a referral
//! stands when a store reports it, whether the friend's first verified payment qualifies it,
//! and when its reward falls due. Pure functions: the store gathers the facts and keeps the
//! referrals, setia-mail pays the rewards out.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

use crate::engagement::ReferralSettings;
use crate::mail_token::{MailSecret, CODE_ALPHABET};
use crate::{CustomerId, MerchantId, MerchantTimezone, Money};

/// A customer's personal referral code: 8 characters of Crockford base32 (no I, L, O or U),
/// unique across the store, so `/r/{code}` names the merchant too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferralCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferralCodeError {
    #[error("a referral code is {len} letters and digits", len = ReferralCode::LEN)]
    Malformed,
}

impl ReferralCode {
    pub const LEN: usize = 8;

    /// The code of `customer`; `attempt` > 0 gives another one when the first is taken by
    /// someone else (one chance in a trillion, but a unique key is a unique key).
    pub fn derive(
        secret: &MailSecret,
        merchant: &MerchantId,
        customer: CustomerId,
        attempt: u32,
    ) -> ReferralCode {
        ReferralCode(secret.code(
            "setia-referral-code-v1",
            &[
                merchant.as_str(),
                &customer.key().to_string(),
                &attempt.to_string(),
            ],
        ))
    }

    /// Reads a code as a person may type it: surrounding spaces, lower case, and the letters
    /// Crockford reads as digits (O as 0, I and L as 1) are forgiven.
    pub fn parse(text: &str) -> Result<ReferralCode, ReferralCodeError> {
        let text = text.trim();
        if text.len() != Self::LEN {
            return Err(ReferralCodeError::Malformed);
        }
        let code: String = text
            .chars()
            .map(|c| match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            })
            .collect();
        if code.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
            Ok(ReferralCode(code))
        } else {
            Err(ReferralCodeError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code's public link, `{public_url}/r/{code}` (`public_url` without a trailing
    /// slash).
    pub fn link(&self, public_url: &str) -> String {
        format!("{public_url}/r/{}", self.0)
    }
}

impl fmt::Display for ReferralCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralStatus {
    /// Reported by the store; waiting for the friend's first verified payment.
    Pending,
    /// The first payment came and passed the rules; the reward waits for the hold.
    Qualified,
    Rewarded,
    /// A rule refused it (the reason says which).
    Refused,
    /// Qualified, then the payment was refunded within the hold.
    Cancelled,
}

impl ReferralStatus {
    pub const ALL: [ReferralStatus; 5] = [
        ReferralStatus::Pending,
        ReferralStatus::Qualified,
        ReferralStatus::Rewarded,
        ReferralStatus::Refused,
        ReferralStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Pending => "pending",
            ReferralStatus::Qualified => "qualified",
            ReferralStatus::Rewarded => "rewarded",
            ReferralStatus::Refused => "refused",
            ReferralStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<ReferralStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a referral was refused or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralReason {
    /// The friend had a purchase before the referral.
    ExistingCustomer,
    /// The friend's account is older than [`ACCOUNT_GRACE`] before the referral.
    ExistingAccount,
    /// The advocate referred themselves.
    SameCustomer,
    SameEmail,
    SameVirtualAccount,
    /// The friend's payment came from a payer name the advocate pays with.
    SamePayerName,
    /// The friend was referred before (by anyone).
    AlreadyReferred,
    /// The advocate reached `max_rewards_per_month` this month.
    MonthlyCap,
    /// The friend's first payment was under `min_first_order_rupiah`.
    BelowMinimum,
    /// The qualifying payment was refunded within the hold.
    Refunded,
    /// The advocate was erased at their request before the reward was paid.
    AdvocateErased,
}

impl ReferralReason {
    pub const ALL: [ReferralReason; 11] = [
        ReferralReason::ExistingCustomer,
        ReferralReason::ExistingAccount,
        ReferralReason::SameCustomer,
        ReferralReason::SameEmail,
        ReferralReason::SameVirtualAccount,
        ReferralReason::SamePayerName,
        ReferralReason::AlreadyReferred,
        ReferralReason::MonthlyCap,
        ReferralReason::BelowMinimum,
        ReferralReason::Refunded,
        ReferralReason::AdvocateErased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReferralReason::ExistingCustomer => "existing_customer",
            ReferralReason::ExistingAccount => "existing_account",
            ReferralReason::SameCustomer => "self_same_customer",
            ReferralReason::SameEmail => "self_same_email",
            ReferralReason::SameVirtualAccount => "self_same_virtual_account",
            ReferralReason::SamePayerName => "self_same_payer_name",
            ReferralReason::AlreadyReferred => "already_referred",
            ReferralReason::MonthlyCap => "monthly_cap",
            ReferralReason::BelowMinimum => "below_minimum",
            ReferralReason::Refunded => "refunded",
            ReferralReason::AdvocateErased => "advocate_erased",
        }
    }

    pub fn parse(text: &str) -> Option<ReferralReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// How long before a referral the friend's account may have been made: a store often
/// creates the account at sign-up, moments before the first order carries the code.
pub const ACCOUNT_GRACE: TimeDelta = TimeDelta::days(1);

/// What the rules compare of the advocate and the friend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party<'a> {
    pub customer: CustomerId,
    pub email: Option<&'a str>,
    pub virtual_account: Option<&'a str>,
}

/// What the store knows when a referral is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReferralFacts<'a> {
    pub advocate: Party<'a>,
    pub friend: Party<'a>,
    pub friend_created_at: DateTime<Utc>,
    /// The friend's purchases (any source, refunded or not) before the referral.
    pub friend_purchases: u64,
    /// The friend has a referral already, by anyone.
    pub friend_referred: bool,
    pub referred_at: DateTime<Utc>,
}

/// Whether a referral reported now stands (it then waits for the friend's first payment).
pub fn referral_decision(facts: &NewReferralFacts<'_>) -> Result<(), ReferralReason> {
    let (advocate, friend) = (facts.advocate, facts.friend);
    if advocate.customer == friend.customer {
        return Err(ReferralReason::SameCustomer);
    }
    if facts.friend_referred {
        return Err(ReferralReason::AlreadyReferred);
    }
    if let (Some(a), Some(f)) = (advocate.email, friend.email) {
        if mailbox_identity(a) == mailbox_identity(f) {
            return Err(ReferralReason::SameEmail);
        }
    }
    if let (Some(a), Some(f)) = (advocate.virtual_account, friend.virtual_account) {
        if a.trim() == f.trim() {
            return Err(ReferralReason::SameVirtualAccount);
        }
    }
    if facts.friend_purchases > 0 {
        return Err(ReferralReason::ExistingCustomer);
    }
    if facts.referred_at - facts.friend_created_at > ACCOUNT_GRACE {
        return Err(ReferralReason::ExistingAccount);
    }
    Ok(())
}

/// The mailbox an address delivers to, as far as the big providers tell: case and a
/// `+tag` never change it, and Gmail ignores dots, so `Ani.S+promo@GMail.com` is
/// `anis@gmail.com`.
pub fn mailbox_identity(email: &str) -> String {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return email;
    };
    let local = local.split('+').next().unwrap_or(local);
    let domain = match domain {
        "googlemail.com" => "gmail.com",
        other => other,
    };
    if domain == "gmail.com" {
        format!("{}@{domain}", local.replace('.', ""))
    } else {
        format!("{local}@{domain}")
    }
}

/// What the store knows when a pending referral's friend makes a verified payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPaymentFacts<'a> {
    pub amount: Money,
    /// The payment's normalised payer name, when the bank gave one.
    pub payer_name: Option<&'a str>,
    /// The friend's other purchases before this one (any source).
    pub earlier_purchases: u64,
    /// The normalised payer names the advocate is known to pay with.
    pub advocate_payer_names: &'a [String],
    /// The advocate's referrals qualified or rewarded in this payment's reward month.
    pub advocate_rewards_this_month: u32,
}

/// What the friend's payment does to a pending referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualification {
    /// Qualified: rewarded at `reward_due_at` unless refunded before.
    Qualified {
        reward_due_at: DateTime<Utc>,
    },
    Refused(ReferralReason),
}

/// Whether the payment setia learnt of at `now` qualifies the referral.
pub fn qualification(
    settings: &ReferralSettings,
    payment: &FirstPaymentFacts<'_>,
    now: DateTime<Utc>,
) -> Qualification {
    if payment.earlier_purchases > 0 {
        return Qualification::Refused(ReferralReason::ExistingCustomer);
    }
    if let Some(payer) = payment.payer_name {
        if payment.advocate_payer_names.iter().any(|a| a == payer) {
            return Qualification::Refused(ReferralReason::SamePayerName);
        }
    }
    if payment.amount < settings.min_first_order() {
        return Qualification::Refused(ReferralReason::BelowMinimum);
    }
    if payment.advocate_rewards_this_month >= settings.max_rewards_per_month {
        return Qualification::Refused(ReferralReason::MonthlyCap);
    }
    Qualification::Qualified {
        reward_due_at: now + TimeDelta::days(i64::from(settings.hold_days)),
    }
}

/// The calendar month (merchant time) that holds `now`, as `[start, end)`: the window of
/// the advocate's monthly cap.
pub fn reward_month(zone: MerchantTimezone, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = zone.local_day(now);
    let first = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).expect("the 1st exists");
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .expect("a month after a real date");
    let start_of = |date: NaiveDate| {
        zone.instant_of(date.and_hms_opt(0, 0, 0).expect("midnight"))
            .unwrap_or(now)
    };
    (start_of(first), start_of(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    fn party(key: i64, email: &'static str, va: Option<&'static str>) -> Party<'static> {
        Party {
            customer: CustomerId::from_key(key),
            email: Some(email),
            virtual_account: va,
        }
    }

    fn new_facts() -> NewReferralFacts<'static> {
        NewReferralFacts {
            advocate: party(1, "ani@toko.example", Some("8808001")),
            friend: party(2, "budi@toko.example", Some("8808002")),
            friend_created_at: at(10, 9),
            friend_purchases: 0,
            friend_referred: false,
            referred_at: at(10, 10),
        }
    }

    #[test]
    fn a_new_friend_stands_and_each_refusal_has_its_reason() {
        assert_eq!(referral_decision(&new_facts()), Ok(()));
        let refused = |facts: NewReferralFacts<'static>| referral_decision(&facts).unwrap_err();
        assert_eq!(
            refused(NewReferralFacts {
                friend: party(1, "budi@toko.example", None),
                ..new_facts()
            }),
            ReferralReason::SameCustomer
        );
        assert_eq!(
            refused(NewReferralFacts {
                friend: party(2, " Ani+second@TOKO.example", None),
                ..new_facts()
            }),
            ReferralReason::SameEmail
        );
        assert_eq!(
            refused(NewReferralFacts {
                friend: party(2, "budi@toko.example", Some("8808001")),
                ..new_facts()
            }),
            ReferralReason::SameVirtualAccount
        );
        assert_eq!(
            refused(NewReferralFacts {
                friend_referred: true,
                ..new_facts()
            }),
            ReferralReason::AlreadyReferred
        );
        assert_eq!(
            refused(NewReferralFacts {
                friend_purchases: 1,
                ..new_facts()
            }),
            ReferralReason::ExistingCustomer
        );
        assert_eq!(
            refused(NewReferralFacts {
                friend_created_at: at(9, 9),
                ..new_facts()
            }),
            ReferralReason::ExistingAccount
        );
        // An account made at sign-up, a day before its first order: still new.
        assert_eq!(
            referral_decision(&NewReferralFacts {
                friend_created_at: at(9, 10),
                ..new_facts()
            }),
            Ok(())
        );
        // No address or no virtual account on one side is no match.
        assert_eq!(
            referral_decision(&NewReferralFacts {
                friend: Party {
                    customer: CustomerId::from_key(2),
                    email: None,
                    virtual_account: None,
                },
                advocate: Party {
                    customer: CustomerId::from_key(1),
                    email: None,
                    virtual_account: None,
                },
                ..new_facts()
            }),
            Ok(())
        );
    }

    #[test]
    fn mailboxes_are_compared_as_providers_deliver() {
        assert_eq!(
            mailbox_identity("Ani.S+promo@GoogleMail.com"),
            "anis@gmail.com"
        );
        assert_eq!(mailbox_identity("ani.s@toko.example"), "ani.s@toko.example");
        assert_ne!(
            mailbox_identity("ani.s@toko.example"),
            mailbox_identity("anis@toko.example")
        );
        assert_eq!(mailbox_identity("not an address"), "not an address");
    }

    fn payment() -> FirstPaymentFacts<'static> {
        FirstPaymentFacts {
            amount: Money::from_minor(15_000_000),
            payer_name: Some("BUDI SANTOSO"),
            earlier_purchases: 0,
            advocate_payer_names: &[],
            advocate_rewards_this_month: 0,
        }
    }

    #[test]
    fn the_first_payment_qualifies_after_the_rules() {
        let settings = ReferralSettings {
            enabled: true,
            ..ReferralSettings::default()
        };
        assert_eq!(
            qualification(&settings, &payment(), at(12, 8)),
            Qualification::Qualified {
                reward_due_at: at(19, 8)
            }
        );
        let refused = |facts: &FirstPaymentFacts<'_>| qualification(&settings, facts, at(12, 8));
        assert_eq!(
            refused(&FirstPaymentFacts {
                earlier_purchases: 1,
                ..payment()
            }),
            Qualification::Refused(ReferralReason::ExistingCustomer)
        );
        let advocate_names = ["BUDI SANTOSO".to_owned()];
        assert_eq!(
            refused(&FirstPaymentFacts {
                advocate_payer_names: &advocate_names,
                ..payment()
            }),
            Qualification::Refused(ReferralReason::SamePayerName)
        );
        assert_eq!(
            refused(&FirstPaymentFacts {
                advocate_payer_names: &advocate_names,
                payer_name: None,
                ..payment()
            }),
            refused(&payment()),
            "no payer name is no match"
        );
        // Rp 100.000 is the minimum, included.
        assert_eq!(
            refused(&FirstPaymentFacts {
                amount: Money::from_minor(9_999_999),
                ..payment()
            }),
            Qualification::Refused(ReferralReason::BelowMinimum)
        );
        assert!(matches!(
            refused(&FirstPaymentFacts {
                amount: Money::from_minor(10_000_000),
                ..payment()
            }),
            Qualification::Qualified { .. }
        ));
        assert_eq!(
            refused(&FirstPaymentFacts {
                advocate_rewards_this_month: 10,
                ..payment()
            }),
            Qualification::Refused(ReferralReason::MonthlyCap)
        );
        assert!(matches!(
            refused(&FirstPaymentFacts {
                advocate_rewards_this_month: 9,
                ..payment()
            }),
            Qualification::Qualified { .. }
        ));
    }

    #[test]
    fn the_reward_month_is_the_merchants_calendar_month() {
        let jakarta = MerchantTimezone::parse("Asia/Jakarta").unwrap();
        // 31 March 20:00 UTC is 1 April 03:00 in Jakarta.
        let (start, end) = reward_month(jakarta, at(31, 20));
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 3, 31, 17, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 4, 30, 17, 0, 0).unwrap());
        let (start, _) = reward_month(jakarta, at(15, 0));
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 2, 28, 17, 0, 0).unwrap());
    }

    #[test]
    fn codes_are_stable_unambiguous_and_read_as_typed() {
        let secret = MailSecret::from_random_bytes([7; 32]);
        let merchant = MerchantId::from_random_bytes([3; 20]);
        let code = ReferralCode::derive(&secret, &merchant, CustomerId::from_key(5), 0);
        assert_eq!(
            code,
            ReferralCode::derive(&secret, &merchant, CustomerId::from_key(5), 0)
        );
        assert_eq!(code.as_str().len(), ReferralCode::LEN);
        assert!(!code.as_str().contains(['I', 'L', 'O', 'U']));
        for other in [
            ReferralCode::derive(&secret, &merchant, CustomerId::from_key(6), 0),
            ReferralCode::derive(&secret, &merchant, CustomerId::from_key(5), 1),
        ] {
            assert_ne!(code, other);
        }
        assert_eq!(
            ReferralCode::parse(&format!(" {} ", code.as_str().to_lowercase())),
            Ok(code)
        );
        assert_eq!(
            ReferralCode::parse("abcdoil2").unwrap().as_str(),
            "ABCD0112"
        );
        for bad in [
            "",
            "ABC",
            "ABCDEFGHJ",
            "ABCD EFG",
            "ABCDEFGU",
            "<b>ABCD",
            "ÀBCDEFGH",
        ] {
            assert_eq!(
                ReferralCode::parse(bad),
                Err(ReferralCodeError::Malformed),
                "{bad:?}"
            );
        }
    }
}
