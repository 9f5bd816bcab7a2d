//! Typed, prefixed ids (`mer_…`, `cus_…`, `pur_…`), as Svix does: an id says what it names,
//! and a purchase id can never be passed where a customer id is expected.
//!
//! Merchants have random ids because they appear in webhook URLs. Rows inside a merchant use
//! the database's integer keys, shown with a prefix at the edges.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {kind} id (expected {prefix}…)")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub input: String,
}

const MERCHANT_ID_BODY_LEN: usize = 20;
/// Lower-case Crockford base32: no i, l, o, u, so ids survive being read aloud or retyped.
const ID_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// `IN_ID_ALPHABET[b]`: whether byte `b` is in [`ID_ALPHABET`]. Every webhook parses its
/// merchant id, and a scan of the alphabet per byte was a thousand steps of it.
const IN_ID_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ID_ALPHABET.len() {
        table[ID_ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantId(String);

impl MerchantId {
    pub const PREFIX: &'static str = "mer_";

    /// A new id from 20 base32 characters (100 bits) of the caller's randomness.
    pub fn from_random_bytes(random: [u8; MERCHANT_ID_BODY_LEN]) -> MerchantId {
        let body: String = random
            .iter()
            .map(|b| ID_ALPHABET[(*b as usize) % ID_ALPHABET.len()] as char)
            .collect();
        MerchantId(format!("{}{body}", Self::PREFIX))
    }

    pub fn parse(text: &str) -> Result<MerchantId, IdError> {
        let error = || IdError {
            kind: "merchant",
            prefix: Self::PREFIX,
            input: text.to_owned(),
        };
        let body = text.strip_prefix(Self::PREFIX).ok_or_else(error)?;
        if body.len() != MERCHANT_ID_BODY_LEN || !body.bytes().all(|b| IN_ID_ALPHABET[b as usize]) {
            return Err(error());
        }
        Ok(MerchantId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MerchantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MerchantId::parse(s)
    }
}

impl Serialize for MerchantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MerchantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        MerchantId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Declares an id backed by a database integer key and shown as `prefix_N`.
macro_rules! integer_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub const fn from_key(key: i64) -> Self {
                Self(key)
            }

            pub const fn key(self) -> i64 {
                self.0
            }

            pub fn parse(text: &str) -> Result<Self, IdError> {
                text.strip_prefix($prefix)
                    .filter(|digits| !digits.starts_with('+') && !digits.starts_with('0'))
                    .and_then(|digits| digits.parse::<i64>().ok())
                    .filter(|key| *key > 0)
                    .map(Self)
                    .ok_or_else(|| IdError {
                        kind: $kind,
                        prefix: $prefix,
                        input: text.to_owned(),
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

integer_id!(CustomerId, "cus_", "customer");
integer_id!(PurchaseId, "pur_", "purchase");
integer_id!(CampaignId, "cmp_", "campaign");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_ids_round_trip_and_reject_strangers() {
        let id = MerchantId::from_random_bytes([7; MERCHANT_ID_BODY_LEN]);
        assert!(id.as_str().starts_with("mer_"));
        assert_eq!(MerchantId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "mer_",
            "cus_77777777777777777777",
            "mer_7777777777777777777i",
            "mer_7777",
        ] {
            assert!(MerchantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integer_ids_carry_their_prefix() {
        assert_eq!(CustomerId::from_key(42).to_string(), "cus_42");
        assert_eq!(CustomerId::parse("cus_42").unwrap().key(), 42);
        assert!(CustomerId::parse("pur_42").is_err());
        for bad in ["cus_", "cus_0", "cus_-1", "cus_+1", "cus_01", "cus_x"] {
            assert!(CustomerId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&PurchaseId::from_key(7)).unwrap(),
            "\"pur_7\""
        );
    }
}
