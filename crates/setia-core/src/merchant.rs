//! What a merchant is made of: a name, a zone, the secret Moota signs with and the API token
//! that opens the merchant's data.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::customer::CustomerEmail;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerchantFieldError {
    #[error("merchant name is empty or longer than 200 characters")]
    BadName,
    #[error("webhook secret must be 8 to 256 printable ASCII characters")]
    BadWebhookSecret,
    #[error("report email {0:?} is not an email address")]
    BadReportEmail(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerchantName(String);

impl MerchantName {
    pub fn parse(text: &str) -> Result<MerchantName, MerchantFieldError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
            return Err(MerchantFieldError::BadName);
        }
        Ok(MerchantName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key of Moota's HMAC-SHA256 signature. Stored as given because verifying a signature
/// needs it; it never appears in a log (Debug is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<WebhookSecret, MerchantFieldError> {
        let ok = (8..=256).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(MerchantFieldError::BadWebhookSecret);
        }
        Ok(WebhookSecret(text.to_owned()))
    }

    /// 32 random bytes as hex: what `merchant create` uses when no secret is given.
    pub fn from_random_bytes(random: [u8; 32]) -> WebhookSecret {
        WebhookSecret(hex::encode(random))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A merchant's API token (`stk_` + 64 hex). Shown once at creation; only its SHA-256 is
/// stored. A plain hash is enough because the token is 256 random bits, not a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub const PREFIX: &'static str = "stk_";

    pub fn from_random_bytes(random: [u8; 32]) -> ApiToken {
        ApiToken(format!("{}{}", Self::PREFIX, hex::encode(random)))
    }

    /// Any presented token; a malformed one simply never matches a stored hash.
    pub fn presented(text: &str) -> ApiToken {
        ApiToken(text.trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// What the database keeps of an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn from_stored(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn parse_report_emails(emails: &[String]) -> Result<Vec<CustomerEmail>, MerchantFieldError> {
    emails
        .iter()
        .map(|e| CustomerEmail::parse(e).map_err(|_| MerchantFieldError::BadReportEmail(e.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_tokens_never_print() {
        let secret = WebhookSecret::from_random_bytes([1; 32]);
        assert_eq!(secret.expose().len(), 64);
        assert!(!format!("{secret:?}").contains(secret.expose()));
        let token = ApiToken::from_random_bytes([2; 32]);
        assert!(token.expose().starts_with("stk_"));
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(token.hash(), ApiToken::presented(token.expose()).hash());
        assert_ne!(token.hash(), ApiToken::presented("stk_other").hash());
    }

    #[test]
    fn fields_are_validated() {
        assert!(MerchantName::parse("Toko Demo").is_ok());
        assert!(MerchantName::parse("  ").is_err());
        assert!(WebhookSecret::parse("AElSnSQj").is_ok());
        assert!(WebhookSecret::parse("short").is_err());
        assert!(WebhookSecret::parse("has a space in it").is_err());
        assert!(parse_report_emails(&["ops@toko.id".into()]).is_ok());
        assert!(parse_report_emails(&["ops".into()]).is_err());
    }
}
