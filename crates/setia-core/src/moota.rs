//! Moota's webhook signature: hex HMAC-SHA256 of the raw body bytes, keyed with the
//! merchant's webhook secret. Checked on the bytes as received, never on re-serialised JSON.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::merchant::WebhookSecret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Signature header is missing")]
    Missing,
    #[error("the Signature header is not 64 hex digits")]
    Malformed,
    #[error("the Signature header does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// The reason recorded in the webhook audit log.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// Checks a `Signature` header value (upper- or lower-case hex) in constant time.
pub fn verify_signature(
    secret: &WebhookSecret,
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = header.trim_ascii();
    let mut expected = [0u8; 32];
    hex::decode_to_slice(header, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The signature Moota would send for `body`: what the sandbox simulator and tests sign with.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn mac(secret: &WebhookSecret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDK_BODY: &[u8] = include_bytes!("../../../tests/fixtures/moota/webhook-sdk-vector.json");
    const SDK_SIGNATURE: &str = "08b0c237eb830bcb321726fa2c6378122f6357a0b1b60cf4c4d362aa93380cca";
    const HISTORY_BODY: &[u8] =
        include_bytes!("../../../tests/fixtures/moota/webhook-history-vector.json");
    const HISTORY_SIGNATURE: &str =
        "48fd0e1eecf65f66196aa1e37a68b0139f8cf29bc5788dd63be6a6b5057cf166";

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::parse(text).unwrap()
    }

    #[test]
    fn mootas_own_vectors_verify() {
        assert_eq!(SDK_BODY.len(), 2483);
        assert_eq!(HISTORY_BODY.len(), 819);
        let sdk = secret("AElSnSQj");
        let history = secret("FcZnoVBN");
        assert_eq!(
            verify_signature(&sdk, SDK_BODY, Some(SDK_SIGNATURE.as_bytes())),
            Ok(())
        );
        assert_eq!(
            verify_signature(&history, HISTORY_BODY, Some(HISTORY_SIGNATURE.as_bytes())),
            Ok(())
        );
        assert_eq!(sign(&sdk, SDK_BODY), SDK_SIGNATURE);
        let upper = SDK_SIGNATURE.to_uppercase();
        assert_eq!(
            verify_signature(&sdk, SDK_BODY, Some(upper.as_bytes())),
            Ok(())
        );
    }

    #[test]
    fn anything_else_is_rejected() {
        let sdk = secret("AElSnSQj");
        let mut tampered = SDK_BODY.to_vec();
        tampered[100] ^= 1;
        let header = Some(SDK_SIGNATURE.as_bytes());
        assert_eq!(
            verify_signature(&sdk, &tampered, header),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&secret("FcZnoVBN"), SDK_BODY, header),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&sdk, SDK_BODY, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&sdk, b"", header),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "xyz",
            &SDK_SIGNATURE[..62],
            &format!("{SDK_SIGNATURE}00"),
            &SDK_SIGNATURE.replace('0', "g"),
        ] {
            assert_eq!(
                verify_signature(&sdk, SDK_BODY, Some(bad.as_bytes())),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
