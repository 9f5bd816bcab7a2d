//! How a payment finds its customer (DESIGN §1): virtual account, then a pending order's
//! unique amount, then a note code with the exact amount, then the payer's name, else
//! unattributed. This module holds the text rules; the lookups happen in the store.

use serde::Serialize;

use crate::customer::PayerName;

/// How a purchase was attributed, recorded on the purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionMethod {
    VirtualAccount,
    Order,
    NoteCode,
    PayerName,
    Manual,
    Import,
}

impl AttributionMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionMethod::VirtualAccount => "virtual_account",
            AttributionMethod::Order => "order",
            AttributionMethod::NoteCode => "note_code",
            AttributionMethod::PayerName => "payer_name",
            AttributionMethod::Manual => "manual",
            AttributionMethod::Import => "import",
        }
    }
}

/// Letters and digits nobody confuses when typing a transfer note: no 0/O, 1/I/L, U/V.
pub const PAYMENT_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTWXYZ23456789";
pub const PAYMENT_CODE_LEN: usize = 5;

/// A payment code from five random bytes.
pub fn payment_code_from_random(random: [u8; PAYMENT_CODE_LEN]) -> String {
    random
        .iter()
        .map(|b| PAYMENT_CODE_ALPHABET[*b as usize % PAYMENT_CODE_ALPHABET.len()] as char)
        .collect()
}

/// The tokens of a transfer description that could be payment codes.
pub fn payment_codes_in(description: &str) -> Vec<String> {
    description
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_uppercase)
        .filter(|token| {
            token.len() == PAYMENT_CODE_LEN
                && token.bytes().all(|b| PAYMENT_CODE_ALPHABET.contains(&b))
        })
        .collect()
}

/// Words banks put around the payer's name (BCA, Mandiri, BRI, BNI styles).
const BANK_NOISE: &[&str] = &[
    "TRSF",
    "TRF",
    "TRX",
    "TRANSFER",
    "TRANSFR",
    "EBANKING",
    "E",
    "BANKING",
    "CR",
    "DB",
    "KR",
    "DR",
    "DARI",
    "KE",
    "FROM",
    "TO",
    "MCM",
    "INHOUSETRF",
    "INHOUSE",
    "SETORAN",
    "SETOR",
    "TUNAI",
    "ATM",
    "IBNK",
    "IBANK",
    "IB",
    "MBANKING",
    "MB",
    "M",
    "SWITCHING",
    "BIF",
    "FTSCY",
    "FTFVA",
    "NBMB",
    "ECHANNEL",
    "PAY",
    "TOP",
    "UP",
    "TOPUP",
    "PEMBAYARAN",
    "BAYAR",
    "VIA",
    "ONLINE",
    "BCA",
    "BRI",
    "BNI",
    "MANDIRI",
    "BSI",
    "CIMB",
    "PERMATA",
    "OTOMATIS",
    "BI",
    "FAST",
    "RTGS",
    "SKN",
    "LLG",
    "ONL",
    "OVB",
    "MOBILE",
    "INTERNET",
    "KLIK",
    "QRIS",
    "VA",
    "BERSAMA",
];

/// The payer's name in a transfer description, with bank noise, dates, amounts and
/// reference numbers removed: `TRSF E-BANKING CR 2711/FTSCY/WS95031 100000.00 Budi Santoso`
/// gives `BUDI SANTOSO`.
pub fn payer_name_in(description: &str) -> Option<PayerName> {
    let words: Vec<String> = description
        .split(|c: char| c.is_whitespace() || c == '/' || c == '-' || c == ':' || c == ',')
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_uppercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    // "… DARI <payer> KE <recipient>" / "NBMB <payer> TO <recipient>": the payer follows
    // DARI (from) when there is one, and ends where the recipient begins.
    let start = words
        .iter()
        .position(|w| w == "DARI" || w == "FROM")
        .map_or(0, |i| i + 1);
    let end = words[start..]
        .iter()
        .position(|w| w == "KE" || w == "TO")
        .map_or(words.len(), |i| start + i);
    let name: Vec<&str> = words[start..end]
        .iter()
        .filter(|w| w.chars().all(char::is_alphabetic))
        .filter(|w| !BANK_NOISE.contains(&w.as_str()))
        .map(String::as_str)
        .collect();
    if name.is_empty() {
        return None;
    }
    PayerName::parse(&name.join(" ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payer_names_come_out_of_bank_noise() {
        let cases = [
            (
                "TRSF E-BANKING CR 2711/FTSCY/WS95031 100000.00 Budi Santoso",
                Some("BUDI SANTOSO"),
            ),
            ("MCM InhouseTrf DARI SITI RAHMA", Some("SITI RAHMA")),
            ("TRANSFER DARI   siti  rahma  27/11", Some("SITI RAHMA")),
            ("NBMB AGUS WIJAYA TO TOKO DEMO", Some("AGUS WIJAYA")),
            ("TRANSFER DARI RINA PUTRI KE TOKO DEMO", Some("RINA PUTRI")),
            ("TRF/PAY/TOP-UP ECHANNEL DEWI LESTARI", Some("DEWI LESTARI")),
            ("SETORAN TUNAI 12345", None),
            ("", None),
        ];
        for (description, expected) in cases {
            assert_eq!(
                payer_name_in(description).as_ref().map(PayerName::as_str),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn payment_codes_are_found_and_made_from_the_alphabet() {
        assert_eq!(
            payment_codes_in("TRSF E-BANKING CR K7QX2 BUDI"),
            vec!["K7QX2".to_string()]
        );
        assert_eq!(payment_codes_in("note: k7qx2."), vec!["K7QX2".to_string()]);
        // L, 1 and 0 are not in the alphabet.
        assert!(payment_codes_in("HELLO 12345 ABCD0").is_empty());
        let code = payment_code_from_random([0, 1, 2, 250, 255]);
        assert_eq!(code.len(), PAYMENT_CODE_LEN);
        assert!(code.bytes().all(|b| PAYMENT_CODE_ALPHABET.contains(&b)));
    }
}
