//! Signed values in customer email: the unsubscribe token of `/u/{token}`, the feedback
//! token of `/f/{token}`, the personal birthday offer and win-back voucher codes, and the
//! referral codes of `/r/{code}`. All are HMAC-SHA256 under the merchant's mail secret (32
//! random bytes the store makes on first use), each with its own domain prefix, so none can
//! be forged, guessed or turned into another.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{CustomerId, MerchantId};

type HmacSha256 = Hmac<Sha256>;

/// A merchant's key for signed mail links and codes. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct MailSecret([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailTokenError {
    #[error("a mail secret is 64 hex digits")]
    BadSecret,
    #[error("not an unsubscribe token")]
    BadToken,
    #[error("not a feedback token")]
    BadFeedbackToken,
    #[error("not a member token")]
    BadMemberToken,
}

impl MailSecret {
    pub fn from_random_bytes(random: [u8; 32]) -> MailSecret {
        MailSecret(random)
    }

    /// Reads the stored form, 64 hex digits.
    pub fn from_hex(text: &str) -> Result<MailSecret, MailTokenError> {
        let bytes = hex::decode(text.trim()).map_err(|_| MailTokenError::BadSecret)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| MailTokenError::BadSecret)?;
        Ok(MailSecret(bytes))
    }

    /// The stored form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, domain: &str, parts: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        for part in parts {
            mac.update(b"|");
            mac.update(part.as_bytes());
        }
        mac
    }
}

impl fmt::Debug for MailSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailSecret(…)")
    }
}

const TOKEN_MAC_LEN: usize = 16;

/// The first [`TOKEN_MAC_LEN`] bytes of a tag: what a token carries.
fn truncated(tag: HmacSha256) -> [u8; TOKEN_MAC_LEN] {
    let tag = tag.finalize().into_bytes();
    let mut mac = [0u8; TOKEN_MAC_LEN];
    mac.copy_from_slice(&tag[..TOKEN_MAC_LEN]);
    mac
}

/// A positive number in its one spelling (no sign, no leading zero), so that one value has
/// one token.
fn canonical_number(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && !text.starts_with(['+', '0']))
}

/// A token's MAC as written: 32 lower-case hex digits.
fn parse_mac(text: &str) -> Option<[u8; TOKEN_MAC_LEN]> {
    if text.len() != TOKEN_MAC_LEN * 2 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

/// `{merchant}.{customer key}.{32 hex digits}` signed under one domain: the shape of the
/// links that name a customer and never expire (unsubscribe, member page).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CustomerLink {
    merchant: MerchantId,
    customer: CustomerId,
    mac: [u8; TOKEN_MAC_LEN],
}

impl CustomerLink {
    fn sign(
        domain: &str,
        secret: &MailSecret,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> Self {
        CustomerLink {
            merchant: merchant.clone(),
            customer,
            mac: truncated(Self::tag(domain, secret, merchant, customer)),
        }
    }

    fn tag(
        domain: &str,
        secret: &MailSecret,
        merchant: &MerchantId,
        customer: CustomerId,
    ) -> HmacSha256 {
        secret.mac(domain, &[merchant.as_str(), &customer.key().to_string()])
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (Some(merchant), Some(customer), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(CustomerLink {
            merchant: MerchantId::parse(merchant).ok()?,
            customer: canonical_number(customer).map(CustomerId::from_key)?,
            mac: parse_mac(mac)?,
        })
    }

    /// True when the token was signed with `secret` under `domain` (constant-time).
    fn verify(&self, domain: &str, secret: &MailSecret) -> bool {
        Self::tag(domain, secret, &self.merchant, self.customer)
            .verify_truncated_left(&self.mac)
            .is_ok()
    }
}

impl fmt::Display for CustomerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.merchant,
            self.customer.key(),
            hex::encode(self.mac)
        )
    }
}

/// A signed customer link type: its own HMAC domain, so a token of one kind is never
/// valid as another.
macro_rules! customer_link {
    ($(#[$doc:meta])* $name:ident, $domain:literal, $error:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(CustomerLink);

        impl $name {
            const DOMAIN: &'static str = $domain;

            pub fn sign(secret: &MailSecret, merchant: &MerchantId, customer: CustomerId) -> Self {
                $name(CustomerLink::sign(Self::DOMAIN, secret, merchant, customer))
            }

            /// Reads a token's shape; whether it is genuine needs the merchant's secret
            /// (`verify`).
            pub fn parse(text: &str) -> Result<Self, MailTokenError> {
                CustomerLink::parse(text).map($name).ok_or($error)
            }

            /// True when the token was signed with `secret` (constant-time).
            pub fn verify(&self, secret: &MailSecret) -> bool {
                self.0.verify(Self::DOMAIN, secret)
            }

            pub fn merchant(&self) -> &MerchantId {
                &self.0.merchant
            }

            pub fn customer(&self) -> CustomerId {
                self.0.customer
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

customer_link!(
    /// `{merchant}.{customer key}.{32 hex digits}`: says who to unsubscribe from which
    /// merchant, signed so that nobody can unsubscribe someone else.
    UnsubscribeToken,
    "setia-unsubscribe-v1",
    MailTokenError::BadToken
);

customer_link!(
    /// The member page's token (`/m/{token}`), same shape as [`UnsubscribeToken`] under its
    /// own domain. It does not expire, like the unsubscribe link: the page it opens shows
    /// no more than a first name, a tier and points, and changes nothing.
    MemberToken,
    "setia-member-v1",
    MailTokenError::BadMemberToken
);

/// Crockford base32 without the letters that read as digits (no I, L, O, U).
pub(crate) const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl MailSecret {
    /// 8 characters of the code alphabet, from the MAC of `parts` under `domain`.
    pub(crate) fn code(&self, domain: &str, parts: &[&str]) -> String {
        let tag = self.mac(domain, parts).finalize().into_bytes();
        // 256 is a multiple of the alphabet's 32 letters: each is equally likely.
        tag[..8]
            .iter()
            .map(|b| CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char)
            .collect()
    }
}

/// A customer's birthday offer code for one year, `BDAY-` and 8 characters: the same on
/// every run (a retried email shows the same code), different for every customer and year,
/// and not guessable without the merchant's secret.
pub fn birthday_offer_code(
    secret: &MailSecret,
    merchant: &MerchantId,
    customer: CustomerId,
    year: i32,
) -> String {
    let code = secret.code(
        "setia-birthday-offer-v1",
        &[
            merchant.as_str(),
            &customer.key().to_string(),
            &year.to_string(),
        ],
    );
    format!("BDAY-{code}")
}

/// A win-back voucher's code, `WB-` and 8 characters: one per customer, episode and step,
/// the same if the episode is written again, and not guessable without the merchant's
/// secret.
pub fn winback_voucher_code(
    secret: &MailSecret,
    merchant: &MerchantId,
    customer: CustomerId,
    episode_number: u32,
    step: usize,
) -> String {
    let code = secret.code(
        "setia-winback-voucher-v1",
        &[
            merchant.as_str(),
            &customer.key().to_string(),
            &episode_number.to_string(),
            &step.to_string(),
        ],
    );
    format!("WB-{code}")
}

/// The personal voucher of a tier's welcome email, `TIER-` and 8 characters: one per
/// customer and tier (the welcome is sent once per tier), the same if the email is retried,
/// and not guessable without the merchant's secret.
pub fn tier_voucher_code(
    secret: &MailSecret,
    merchant: &MerchantId,
    customer: CustomerId,
    tier: crate::loyalty::Tier,
) -> String {
    let code = secret.code(
        "setia-tier-voucher-v1",
        &[
            merchant.as_str(),
            &customer.key().to_string(),
            tier.as_str(),
        ],
    );
    format!("TIER-{code}")
}

/// How long a feedback link works: DESIGN §8.
pub const FEEDBACK_TOKEN_DAYS: i64 = 30;

/// `{merchant}.{request key}.{expiry, unix seconds}.{32 hex digits}`: the link of one
/// feedback request, which lets its customer answer it (and change the answer) until it
/// expires. Signed with the expiry, so it cannot be stretched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackToken {
    merchant: MerchantId,
    request: i64,
    expires_at: i64,
    mac: [u8; TOKEN_MAC_LEN],
}

impl FeedbackToken {
    /// A token for a request sent at `sent_at`, valid [`FEEDBACK_TOKEN_DAYS`].
    pub fn sign(
        secret: &MailSecret,
        merchant: &MerchantId,
        request: i64,
        sent_at: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let expires_at = (sent_at + chrono::TimeDelta::days(FEEDBACK_TOKEN_DAYS)).timestamp();
        FeedbackToken {
            merchant: merchant.clone(),
            request,
            expires_at,
            mac: truncated(Self::tag(secret, merchant, request, expires_at)),
        }
    }

    fn tag(
        secret: &MailSecret,
        merchant: &MerchantId,
        request: i64,
        expires_at: i64,
    ) -> HmacSha256 {
        secret.mac(
            "setia-feedback-v1",
            &[
                merchant.as_str(),
                &request.to_string(),
                &expires_at.to_string(),
            ],
        )
    }

    /// Reads a token's shape; whether it is genuine and current needs the merchant's secret
    /// and the time ([`FeedbackToken::verify`]).
    pub fn parse(text: &str) -> Result<Self, MailTokenError> {
        let bad = || MailTokenError::BadFeedbackToken;
        let mut parts = text.split('.');
        let (Some(merchant), Some(request), Some(expires_at), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let merchant = MerchantId::parse(merchant).map_err(|_| bad())?;
        let request = canonical_number(request).ok_or_else(bad)?;
        let expires_at = canonical_number(expires_at).ok_or_else(bad)?;
        let mac = parse_mac(mac).ok_or_else(bad)?;
        Ok(FeedbackToken {
            merchant,
            request,
            expires_at,
            mac,
        })
    }

    /// True when the token was signed with `secret` (constant-time) and has not expired at
    /// `now`.
    pub fn verify(&self, secret: &MailSecret, now: chrono::DateTime<chrono::Utc>) -> bool {
        now.timestamp() < self.expires_at
            && Self::tag(secret, &self.merchant, self.request, self.expires_at)
                .verify_truncated_left(&self.mac)
                .is_ok()
    }

    pub fn merchant(&self) -> &MerchantId {
        &self.merchant
    }

    /// The feedback request's key.
    pub fn request(&self) -> i64 {
        self.request
    }
}

impl fmt::Display for FeedbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.merchant,
            self.request,
            self.expires_at,
            hex::encode(self.mac)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(n: u8) -> MerchantId {
        MerchantId::from_random_bytes([n; 20])
    }

    fn secret(n: u8) -> MailSecret {
        MailSecret::from_random_bytes([n; 32])
    }

    #[test]
    fn a_token_round_trips_and_verifies_only_under_its_secret() {
        let token = UnsubscribeToken::sign(&secret(1), &merchant(1), CustomerId::from_key(42));
        let text = token.to_string();
        assert!(text.starts_with(&format!("{}.42.", merchant(1))), "{text}");
        let parsed = UnsubscribeToken::parse(&text).unwrap();
        assert_eq!(parsed, token);
        assert!(parsed.verify(&secret(1)));
        assert!(!parsed.verify(&secret(2)));
        assert_eq!(parsed.customer(), CustomerId::from_key(42));
        assert_eq!(parsed.merchant(), &merchant(1));
    }

    #[test]
    fn a_token_for_another_customer_or_merchant_does_not_verify() {
        let token = UnsubscribeToken::sign(&secret(1), &merchant(1), CustomerId::from_key(42));
        let text = token.to_string();
        let mac = text.rsplit('.').next().unwrap();
        for forged in [
            format!("{}.43.{mac}", merchant(1)),
            format!("{}.42.{mac}", merchant(2)),
        ] {
            let parsed = UnsubscribeToken::parse(&forged).unwrap();
            assert!(!parsed.verify(&secret(1)), "{forged}");
        }
        let mut flipped = text.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!UnsubscribeToken::parse(&flipped)
            .unwrap()
            .verify(&secret(1)));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = UnsubscribeToken::sign(&secret(1), &merchant(1), CustomerId::from_key(7));
        let mac = good.to_string().rsplit('.').next().unwrap().to_owned();
        let m = merchant(1);
        for bad in [
            String::new(),
            "x".into(),
            format!("{m}.7"),
            format!("{m}.7.{mac}.extra"),
            format!("{m}.07.{mac}"),
            format!("{m}.0.{mac}"),
            format!("{m}.-7.{mac}"),
            format!("{m}.seven.{mac}"),
            format!("{m}.7.{}", &mac[..30]),
            format!("{m}.7.{}", mac.to_uppercase()),
            format!("{m}.7.{}zz", &mac[..30]),
            format!("mer_short.7.{mac}"),
        ] {
            assert_eq!(
                UnsubscribeToken::parse(&bad),
                Err(MailTokenError::BadToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_member_token_is_its_own_kind_of_token() {
        let customer = CustomerId::from_key(42);
        let member = MemberToken::sign(&secret(1), &merchant(1), customer);
        let text = member.to_string();
        let parsed = MemberToken::parse(&text).unwrap();
        assert!(parsed.verify(&secret(1)) && !parsed.verify(&secret(2)));
        assert_eq!(
            (parsed.merchant(), parsed.customer()),
            (&merchant(1), customer)
        );
        // Same shape, other domain: an unsubscribe token is no member token, nor the reverse.
        let unsubscribe = UnsubscribeToken::sign(&secret(1), &merchant(1), customer).to_string();
        assert_ne!(unsubscribe, text);
        assert!(!MemberToken::parse(&unsubscribe).unwrap().verify(&secret(1)));
        assert!(!UnsubscribeToken::parse(&text).unwrap().verify(&secret(1)));
        let mac = text.rsplit('.').next().unwrap();
        let other_customer = format!("{}.43.{mac}", merchant(1));
        assert!(!MemberToken::parse(&other_customer)
            .unwrap()
            .verify(&secret(1)));
        assert_eq!(
            MemberToken::parse(&format!("{text}0")),
            Err(MailTokenError::BadMemberToken)
        );
        assert_eq!(
            MemberToken::parse(&"a".repeat(5000)),
            Err(MailTokenError::BadMemberToken)
        );
    }

    #[test]
    fn tier_vouchers_are_stable_and_personal() {
        use crate::loyalty::Tier;
        let code = |s, m, c, tier| {
            tier_voucher_code(&secret(s), &merchant(m), CustomerId::from_key(c), tier)
        };
        let silver = code(1, 1, 5, Tier::Silver);
        assert_eq!(silver, code(1, 1, 5, Tier::Silver));
        assert!(
            silver.starts_with("TIER-") && silver.len() == 13,
            "{silver}"
        );
        for other in [
            code(1, 1, 5, Tier::Gold),
            code(1, 1, 6, Tier::Silver),
            code(1, 2, 5, Tier::Silver),
            code(2, 1, 5, Tier::Silver),
        ] {
            assert_ne!(silver, other);
        }
    }

    #[test]
    fn secrets_round_trip_through_hex_and_never_show_in_debug() {
        let s = secret(9);
        assert_eq!(MailSecret::from_hex(&s.to_hex()).unwrap(), s);
        assert_eq!(format!("{s:?}"), "MailSecret(…)");
        assert!(MailSecret::from_hex("abcd").is_err());
        assert!(MailSecret::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn offer_codes_are_stable_and_personal() {
        let code = birthday_offer_code(&secret(1), &merchant(1), CustomerId::from_key(5), 2027);
        assert_eq!(
            code,
            birthday_offer_code(&secret(1), &merchant(1), CustomerId::from_key(5), 2027)
        );
        assert!(code.starts_with("BDAY-") && code.len() == 13, "{code}");
        assert!(code[5..].bytes().all(|b| CODE_ALPHABET.contains(&b)));
        for other in [
            birthday_offer_code(&secret(1), &merchant(1), CustomerId::from_key(6), 2027),
            birthday_offer_code(&secret(1), &merchant(1), CustomerId::from_key(5), 2028),
            birthday_offer_code(&secret(1), &merchant(2), CustomerId::from_key(5), 2027),
            birthday_offer_code(&secret(2), &merchant(1), CustomerId::from_key(5), 2027),
        ] {
            assert_ne!(code, other);
        }
    }

    #[test]
    fn voucher_codes_are_stable_and_personal() {
        let code = |s, m, c, n, step| {
            winback_voucher_code(&secret(s), &merchant(m), CustomerId::from_key(c), n, step)
        };
        let first = code(1, 1, 5, 1, 1);
        assert_eq!(first, code(1, 1, 5, 1, 1));
        assert!(first.starts_with("WB-") && first.len() == 11, "{first}");
        for other in [
            code(1, 1, 6, 1, 1),
            code(1, 1, 5, 2, 1),
            code(1, 1, 5, 1, 2),
            code(1, 2, 5, 1, 1),
            code(2, 1, 5, 1, 1),
        ] {
            assert_ne!(first, other);
        }
    }

    #[test]
    fn a_feedback_token_works_for_its_request_until_it_expires() {
        use chrono::{TimeDelta, TimeZone, Utc};
        let sent = Utc.with_ymd_and_hms(2027, 3, 13, 7, 0, 0).unwrap();
        let token = FeedbackToken::sign(&secret(1), &merchant(1), 42, sent);
        let text = token.to_string();
        let read = FeedbackToken::parse(&text).unwrap();
        assert_eq!((read.merchant(), read.request()), (&merchant(1), 42));
        assert!(read.verify(&secret(1), sent + TimeDelta::days(29)));
        assert!(
            !read.verify(&secret(1), sent + TimeDelta::days(30)),
            "expired"
        );
        assert!(!read.verify(&secret(2), sent), "another merchant's secret");

        // Forged: another request, a stretched expiry, a changed mac, another merchant.
        let parts: Vec<&str> = text.split('.').collect();
        let forged = [
            format!("{}.43.{}.{}", parts[0], parts[2], parts[3]),
            format!(
                "{}.42.{}.{}",
                parts[0],
                parts[2].parse::<i64>().unwrap() + 86_400,
                parts[3]
            ),
            format!(
                "{}.42.{}.{}{}",
                parts[0],
                parts[2],
                &parts[3][..31],
                if parts[3].ends_with('0') { '1' } else { '0' }
            ),
            format!("{}.42.{}.{}", merchant(2), parts[2], parts[3]),
        ];
        for forged in forged {
            let parsed = FeedbackToken::parse(&forged).unwrap();
            assert!(!parsed.verify(&secret(1), sent), "{forged} verified");
        }
        for malformed in [
            "",
            "x",
            &format!("{}.042.{}.{}", parts[0], parts[2], parts[3]),
            &format!("{}.42.{}.{}", parts[0], parts[2], parts[3].to_uppercase()),
            &format!("{text}.1"),
            &format!("{}.-1.{}.{}", parts[0], parts[2], parts[3]),
        ] {
            assert!(FeedbackToken::parse(malformed).is_err(), "{malformed}");
        }
        let unsubscribe =
            UnsubscribeToken::sign(&secret(1), &merchant(1), CustomerId::from_key(42));
        assert!(FeedbackToken::parse(&unsubscribe.to_string()).is_err());
    }
}
