//! The import formats of DESIGN §3 and §8 (`customers import`, `transactions import`,
//! `items import`), read from any byte source into typed records. Every problem names its
//! line and field.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::customer::{
    Birthday, Consent, CustomerEmail, CustomerFieldError, CustomerName, ExternalId, PayerName,
    VirtualAccount,
};
use crate::money::Money;
use crate::product::{
    parse_price, Category, LineItem, ProductFieldError, ProductName, Quantity, Sku,
};
use crate::referral::ReferralCode;
use crate::time::{check_not_future, MerchantTimezone};

/// The longest `reference`, in characters, in both files that carry one: the items file
/// must accept every reference the transactions file did, whatever its script.
pub const MAX_REFERENCE_CHARS: usize = 200;

/// A `reference` cell: at most [`MAX_REFERENCE_CHARS`] characters (not bytes), none a
/// control character.
fn check_reference(line: u64, reference: &str) -> Result<(), RowError> {
    if reference.chars().count() > MAX_REFERENCE_CHARS || reference.chars().any(char::is_control) {
        return Err(RowError::new(
            line,
            "reference",
            format!("must be at most {MAX_REFERENCE_CHARS} printable characters"),
        ));
    }
    Ok(())
}

/// One rejected row, as the import summary reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub error: String,
}

impl RowError {
    fn new(line: u64, field: &str, error: impl ToString) -> RowError {
        RowError {
            line,
            field: field.to_owned(),
            error: error.to_string(),
        }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "line {}: {}", self.line, self.error)
        } else {
            write!(
                f,
                "line {}, field {}: {}",
                self.line, self.field, self.error
            )
        }
    }
}

/// Column positions by name, checked against what the format allows.
struct Columns {
    positions: HashMap<String, usize>,
}

impl Columns {
    fn read<R: Read>(
        reader: &mut csv::Reader<R>,
        required: &[&str],
        optional: &[&str],
    ) -> Result<Columns, RowError> {
        let headers = reader
            .headers()
            .map_err(|e| RowError::new(1, "", format!("cannot read the header: {e}")))?;
        let mut positions = HashMap::new();
        for (index, raw) in headers.iter().enumerate() {
            let name = raw
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
                let allowed = [required, optional].concat().join(",");
                return Err(RowError::new(
                    1,
                    &name,
                    format!("unknown column (the header may name {allowed})"),
                ));
            }
            if positions.insert(name.clone(), index).is_some() {
                return Err(RowError::new(1, &name, "column appears twice"));
            }
        }
        for column in required {
            if !positions.contains_key(*column) {
                return Err(RowError::new(1, column, "required column is missing"));
            }
        }
        Ok(Columns { positions })
    }

    fn has(&self, name: &str) -> bool {
        self.positions.contains_key(name)
    }

    /// The trimmed cell, or None when the column is absent or the cell blank.
    fn cell<'r>(&self, record: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        let index = *self.positions.get(name)?;
        record.get(index).map(str::trim).filter(|v| !v.is_empty())
    }
}

fn record_error(error: csv::Error, fallback_line: u64) -> RowError {
    let line = error.position().map(|p| p.line()).unwrap_or(fallback_line);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("has {len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        _ => error.to_string(),
    };
    RowError::new(line, "", message)
}

/// Reads the next record into `record`; its line number (counting the header as line 1),
/// or the error that names it; `None` at the end of the file.
fn next_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
    last_line: &mut u64,
) -> Option<Result<u64, RowError>> {
    match reader.read_record(record) {
        Ok(false) => None,
        Ok(true) => {
            *last_line = record.position().map_or(*last_line + 1, |p| p.line());
            Some(Ok(*last_line))
        }
        Err(error) => {
            *last_line += 1;
            Some(Err(record_error(error, *last_line)))
        }
    }
}

fn field<T>(line: u64, name: &str, parsed: Result<T, CustomerFieldError>) -> Result<T, RowError> {
    parsed.map_err(|e| RowError::new(line, name, e))
}

/// A row of the customers file. `None` means the file says nothing: the customer's
/// stored value stays as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    pub line: u64,
    pub external_id: ExternalId,
    pub name: Option<CustomerName>,
    pub email: Option<CustomerEmail>,
    pub birthday: Option<Birthday>,
    pub virtual_account: Option<VirtualAccount>,
    pub payer_names: Vec<PayerName>,
    pub consent: Option<Consent>,
    /// The code of the customer who referred this one.
    pub referral_code: Option<ReferralCode>,
}

pub const CUSTOMER_COLUMNS: [&str; 8] = [
    "external_id",
    "name",
    "email",
    "birthday",
    "virtual_account",
    "payer_names",
    "consent",
    "referral_code",
];

/// Reads a customers CSV (`external_id,name,email,birthday,virtual_account,payer_names,consent,
/// referral_code`, only `external_id` required).
pub struct CustomersCsv<R: Read> {
    reader: csv::Reader<R>,
    columns: Columns,
    record: csv::StringRecord,
    last_line: u64,
}

impl<R: Read> CustomersCsv<R> {
    pub fn new(source: R) -> Result<Self, RowError> {
        let mut reader = csv::ReaderBuilder::new().from_reader(source);
        let columns = Columns::read(&mut reader, &CUSTOMER_COLUMNS[..1], &CUSTOMER_COLUMNS[1..])?;
        Ok(CustomersCsv {
            reader,
            columns,
            record: csv::StringRecord::new(),
            last_line: 1,
        })
    }

    fn parse(&self, line: u64) -> Result<CustomerRecord, RowError> {
        let (c, r) = (&self.columns, &self.record);
        Ok(CustomerRecord {
            line,
            external_id: field(
                line,
                "external_id",
                ExternalId::parse(c.cell(r, "external_id").unwrap_or("")),
            )?,
            name: optional(c, r, line, "name", CustomerName::parse)?,
            email: optional(c, r, line, "email", CustomerEmail::parse)?,
            birthday: optional(c, r, line, "birthday", Birthday::parse)?,
            virtual_account: optional(c, r, line, "virtual_account", VirtualAccount::parse)?,
            payer_names: optional(c, r, line, "payer_names", PayerName::parse_list)?
                .unwrap_or_default(),
            consent: optional(c, r, line, "consent", Consent::parse)?,
            referral_code: optional(c, r, line, "referral_code", |v| {
                ReferralCode::parse(v).map_err(|_| CustomerFieldError::BadReferralCode)
            })?,
        })
    }
}

/// A cell that may be blank, parsed when it is not.
fn optional<T>(
    columns: &Columns,
    record: &csv::StringRecord,
    line: u64,
    name: &str,
    parse: impl Fn(&str) -> Result<T, CustomerFieldError>,
) -> Result<Option<T>, RowError> {
    columns
        .cell(record, name)
        .map(|v| field(line, name, parse(v)))
        .transpose()
}

impl<R: Read> Iterator for CustomersCsv<R> {
    type Item = Result<CustomerRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = next_record(&mut self.reader, &mut self.record, &mut self.last_line)?;
        Some(line.and_then(|line| self.parse(line)))
    }
}

/// What makes an imported transaction the same transaction on a second import.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceKey(String);

impl SourceKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of_reference(reference: &str) -> SourceKey {
        SourceKey(format!("ref:{reference}"))
    }

    /// Customer, instant, amount and how many identical rows came before this one, so two
    /// identical rows in a file stay two purchases and re-importing the file adds none.
    fn of_row(
        customer: &ExternalId,
        at: DateTime<Utc>,
        amount: Money,
        occurrence: u32,
    ) -> SourceKey {
        let mut hash = Sha256::new();
        for part in [
            customer.as_str().as_bytes(),
            at.timestamp_micros().to_string().as_bytes(),
            amount.minor().to_string().as_bytes(),
            occurrence.to_string().as_bytes(),
        ] {
            hash.update(part);
            hash.update([0x1f]);
        }
        SourceKey(format!("row:{}", hex::encode(&hash.finalize()[..16])))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    pub line: u64,
    pub customer: ExternalId,
    pub occurred_at: DateTime<Utc>,
    pub amount: Money,
    pub source_key: SourceKey,
}

pub const TRANSACTION_COLUMNS: [&str; 4] =
    ["customer_external_id", "occurred_at", "amount", "reference"];

/// Reads a transactions CSV (`customer_external_id,occurred_at,amount[,reference]`), times
/// without an offset read in the merchant's zone.
pub struct TransactionsCsv<R: Read> {
    reader: csv::Reader<R>,
    columns: Columns,
    zone: MerchantTimezone,
    record: csv::StringRecord,
    last_line: u64,
    /// Identical rows seen so far, by a hash of (customer, instant, amount); only used when
    /// the file has no `reference` column.
    occurrences: HashMap<[u8; 16], u32>,
    /// The importer's clock, when it gave one: rows dated after it (plus the grace) are
    /// refused.
    now: Option<DateTime<Utc>>,
}

impl<R: Read> TransactionsCsv<R> {
    pub fn new(source: R, zone: MerchantTimezone) -> Result<Self, RowError> {
        let mut reader = csv::ReaderBuilder::new().from_reader(source);
        let columns = Columns::read(
            &mut reader,
            &TRANSACTION_COLUMNS[..3],
            &TRANSACTION_COLUMNS[3..],
        )?;
        Ok(TransactionsCsv {
            reader,
            columns,
            zone,
            record: csv::StringRecord::new(),
            last_line: 1,
            occurrences: HashMap::new(),
            now: None,
        })
    }

    /// Refuses rows dated after `now` plus [`crate::time::PURCHASE_CLOCK_GRACE`]: a purchase
    /// cannot be in the future, and a typo'd year would otherwise sit uncounted until then.
    /// Core reads no clock, so the importer passes its own.
    pub fn not_after(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }

    fn parse(&mut self, line: u64) -> Result<TransactionRecord, RowError> {
        let c = &self.columns;
        let r = &self.record;
        let customer = field(
            line,
            "customer_external_id",
            ExternalId::parse(c.cell(r, "customer_external_id").unwrap_or("")),
        )?;
        let occurred_at = c
            .cell(r, "occurred_at")
            .ok_or_else(|| RowError::new(line, "occurred_at", "is empty"))
            .and_then(|v| {
                let now = self.now;
                self.zone
                    .parse_occurred_at(v)
                    .and_then(|at| match now {
                        Some(now) => check_not_future(at, now).map(|()| at),
                        None => Ok(at),
                    })
                    .map_err(|e| RowError::new(line, "occurred_at", e))
            })?;
        let amount = c
            .cell(r, "amount")
            .ok_or_else(|| RowError::new(line, "amount", "is empty"))
            .and_then(|v| {
                Money::parse_non_negative(v).map_err(|e| RowError::new(line, "amount", e))
            })?;
        let source_key = if c.has("reference") {
            let reference = c
                .cell(r, "reference")
                .ok_or_else(|| RowError::new(line, "reference", "is empty"))?;
            check_reference(line, reference)?;
            SourceKey::of_reference(reference)
        } else {
            let identity = SourceKey::of_row(&customer, occurred_at, amount, 0);
            let mut digest = [0u8; 16];
            hex::decode_to_slice(&identity.0[4..], &mut digest).expect("we wrote this hex");
            let seen = self.occurrences.entry(digest).or_insert(0);
            let key = SourceKey::of_row(&customer, occurred_at, amount, *seen);
            *seen += 1;
            key
        };
        Ok(TransactionRecord {
            line,
            customer,
            occurred_at,
            amount,
            source_key,
        })
    }
}

impl<R: Read> Iterator for TransactionsCsv<R> {
    type Item = Result<TransactionRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = next_record(&mut self.reader, &mut self.record, &mut self.last_line)?;
        Some(line.and_then(|line| self.parse(line)))
    }
}

/// A row of the items file: a line of the purchase imported with `reference`, or of the
/// order whose external id it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub line: u64,
    pub reference: String,
    pub item: LineItem,
    /// What makes this line the same line on a second import: the reference, the SKU and how
    /// many lines of that SKU for that reference came before it in the file.
    pub line_key: String,
}

pub const ITEM_COLUMNS: [&str; 6] = [
    "reference",
    "sku",
    "quantity",
    "unit_price",
    "name",
    "category",
];

/// Reads an items CSV (`reference,sku,name,quantity,unit_price[,category]`; `name` may be
/// blank for a SKU setia knows).
pub struct ItemsCsv<R: Read> {
    reader: csv::Reader<R>,
    columns: Columns,
    record: csv::StringRecord,
    last_line: u64,
    occurrences: HashMap<(String, String), u32>,
}

fn product_field<T>(
    line: u64,
    name: &str,
    parsed: Result<T, ProductFieldError>,
) -> Result<T, RowError> {
    parsed.map_err(|e| RowError::new(line, name, e))
}

impl<R: Read> ItemsCsv<R> {
    pub fn new(source: R) -> Result<Self, RowError> {
        let mut reader = csv::ReaderBuilder::new().from_reader(source);
        let columns = Columns::read(&mut reader, &ITEM_COLUMNS[..4], &ITEM_COLUMNS[4..])?;
        Ok(ItemsCsv {
            reader,
            columns,
            record: csv::StringRecord::new(),
            last_line: 1,
            occurrences: HashMap::new(),
        })
    }

    fn parse(&mut self, line: u64) -> Result<ItemRecord, RowError> {
        let c = &self.columns;
        let r = &self.record;
        let reference = c
            .cell(r, "reference")
            .ok_or_else(|| RowError::new(line, "reference", "is empty"))?;
        check_reference(line, reference)?;
        let sku = product_field(line, "sku", Sku::parse(c.cell(r, "sku").unwrap_or("")))?;
        let quantity = product_field(
            line,
            "quantity",
            Quantity::parse(c.cell(r, "quantity").unwrap_or("")),
        )?;
        let unit_price = product_field(
            line,
            "unit_price",
            parse_price(c.cell(r, "unit_price").unwrap_or("")),
        )?;
        let name = c
            .cell(r, "name")
            .map(|v| product_field(line, "name", ProductName::parse(v)))
            .transpose()?;
        let category = c
            .cell(r, "category")
            .map(|v| product_field(line, "category", Category::parse(v)))
            .transpose()?;
        let seen = self
            .occurrences
            .entry((reference.to_owned(), sku.as_str().to_owned()))
            .or_insert(0);
        let line_key = format!("{reference}\u{1f}{sku}\u{1f}{seen}");
        *seen += 1;
        Ok(ItemRecord {
            line,
            reference: reference.to_owned(),
            item: LineItem {
                sku,
                name,
                category,
                quantity,
                unit_price,
            },
            line_key,
        })
    }
}

impl<R: Read> Iterator for ItemsCsv<R> {
    type Item = Result<ItemRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = next_record(&mut self.reader, &mut self.record, &mut self.last_line)?;
        Some(line.and_then(|line| self.parse(line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line and field of each row, all errors.
    fn error_fields<T: std::fmt::Debug>(rows: &[Result<T, RowError>]) -> Vec<(u64, &str)> {
        rows.iter()
            .map(|r| {
                let e = r.as_ref().unwrap_err();
                (e.line, e.field.as_str())
            })
            .collect()
    }

    fn items(text: &str) -> Result<Vec<Result<ItemRecord, RowError>>, RowError> {
        ItemsCsv::new(text.as_bytes()).map(|r| r.collect())
    }

    #[test]
    fn items_name_their_line_and_field_and_repeat_lines_stay_apart() {
        let rows = items(
            "reference,sku,name,quantity,unit_price,category\n\
             INV-1,KOP-1,Kopi Gayo,2,85000,Kopi & Teh\n\
             INV-1,KOP-1,,1,85000,\n\
             INV-1,TEH-1,Teh Melati,1,12000.50,\n",
        )
        .unwrap();
        let rows: Vec<ItemRecord> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].item.quantity.get(), 2);
        assert_eq!(rows[0].item.name.as_ref().unwrap().as_str(), "Kopi Gayo");
        assert_eq!(
            rows[0].item.category.as_ref().unwrap().as_str(),
            "Kopi & Teh"
        );
        assert_eq!(rows[1].item.name, None);
        assert_eq!(rows[2].item.unit_price.minor(), 1_200_050);
        assert_ne!(
            rows[0].line_key, rows[1].line_key,
            "a second line of one SKU"
        );
        assert_eq!(rows[2].line, 4);

        let bad = items(
            "reference,sku,name,quantity,unit_price\n\
             INV-1,KOP 1,x,1,1\n\
             INV-1,KOP-1,x,0,1\n\
             INV-1,KOP-1,x,1,-5\n\
             ,KOP-1,x,1,1\n",
        )
        .unwrap();
        let errors: Vec<(u64, String)> = bad
            .into_iter()
            .map(|r| {
                let e = r.unwrap_err();
                (e.line, e.field)
            })
            .collect();
        assert_eq!(
            errors,
            [
                (2, "sku".into()),
                (3, "quantity".into()),
                (4, "unit_price".into()),
                (5, "reference".into())
            ]
        );
        let header = items("reference,sku,qty,unit_price\n").err().unwrap();
        assert_eq!((header.line, header.field.as_str()), (1, "qty"));
        let missing = items("reference,sku,quantity\n").err().unwrap();
        assert_eq!(missing.field, "unit_price");
    }

    fn customers(text: &str) -> Result<Vec<Result<CustomerRecord, RowError>>, RowError> {
        CustomersCsv::new(text.as_bytes()).map(|r| r.collect())
    }

    fn transactions(text: &str) -> Result<Vec<Result<TransactionRecord, RowError>>, RowError> {
        TransactionsCsv::new(text.as_bytes(), MerchantTimezone::default()).map(|r| r.collect())
    }

    #[test]
    fn reads_a_full_customers_file() {
        let rows = customers(
            "external_id,name,email,birthday,virtual_account,payer_names,consent\n\
             C1,Siti Rahma,siti@example.co.id,1990-05-17,8808001,Siti Rahma;S RAHMA,false\n\
             C2,,,,,,\n",
        )
        .unwrap();
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.line, 2);
        assert_eq!(first.payer_names.len(), 2);
        assert_eq!(first.consent, Some(Consent(false)));
        let second = rows[1].as_ref().unwrap();
        assert_eq!(
            (second.line, second.name.is_none(), second.consent),
            (3, true, None)
        );
    }

    #[test]
    fn customer_errors_name_line_and_field() {
        let rows = customers(
            "external_id,email,birthday\nC1,a@b.id,\nC2,not-an-email,\nC3,,1990-02-31\n,x@y.id,\n",
        )
        .unwrap();
        assert!(rows[0].is_ok());
        let errors: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| (e.line, e.field.clone()))
            .collect();
        assert_eq!(
            errors,
            vec![
                (3, "email".into()),
                (4, "birthday".into()),
                (5, "external_id".into())
            ]
        );
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(customers("name,email\n").unwrap_err().field, "external_id");
        assert_eq!(customers("external_id,emial\n").unwrap_err().field, "emial");
        assert_eq!(
            customers("external_id,name,name\n").unwrap_err().field,
            "name"
        );
        assert!(customers("\u{feff}External_ID\nC1\n").is_ok());
        assert_eq!(
            transactions("customer_external_id,amount\n")
                .unwrap_err()
                .field,
            "occurred_at"
        );
    }

    #[test]
    fn ragged_rows_are_errors_with_their_line() {
        let rows = customers("external_id,name\nC1,A\nC2,B,extra\n").unwrap();
        let error = rows[1].as_ref().unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.error.contains("3 fields"), "{error}");
    }

    #[test]
    fn transaction_rows_and_their_errors() {
        let rows = transactions(
            "customer_external_id,occurred_at,amount\n\
             S1,1997-01-01,29.33\n\
             S1,1997-01-01 10:00:00,0\n\
             S1,1997-02-30,1\n\
             S1,1997-01-01,-5\n\
             S1,1997-01-01,1.001\n\
             ,1997-01-01,1\n",
        )
        .unwrap();
        assert_eq!(rows[0].as_ref().unwrap().amount.minor(), 2933);
        assert_eq!(rows[1].as_ref().unwrap().amount, Money::ZERO);
        let fields = error_fields(&rows[2..]);
        assert_eq!(
            fields,
            vec![
                (4, "occurred_at"),
                (5, "amount"),
                (6, "amount"),
                (7, "customer_external_id")
            ]
        );
    }

    #[test]
    fn identical_rows_get_distinct_but_repeatable_keys() {
        let file = "customer_external_id,occurred_at,amount\nS1,1997-01-01,10\nS1,1997-01-01,10\nS2,1997-01-01,10\n";
        let keys = |text: &str| -> Vec<SourceKey> {
            transactions(text)
                .unwrap()
                .into_iter()
                .map(|r| r.unwrap().source_key)
                .collect()
        };
        let first = keys(file);
        assert_ne!(first[0], first[1]);
        assert_ne!(first[0], first[2]);
        assert_eq!(first, keys(file));
    }

    #[test]
    fn references_are_counted_in_characters_in_both_files() {
        // 70 characters of a three-byte script are 210 bytes.
        let seventy = "あ".repeat(70);
        assert_eq!(seventy.len(), 210);
        let rows = transactions(&format!(
            "customer_external_id,occurred_at,amount,reference\nS1,1997-01-01,10,{seventy}\n"
        ))
        .unwrap();
        assert_eq!(
            rows[0].as_ref().unwrap().source_key.as_str(),
            format!("ref:{seventy}")
        );
        let rows = items(&format!(
            "reference,sku,quantity,unit_price\n{seventy},KOP-1,1,10\n"
        ))
        .unwrap();
        assert_eq!(rows[0].as_ref().unwrap().reference, seventy);
        // One over the limit is refused by both, with the same words.
        let long = "あ".repeat(MAX_REFERENCE_CHARS + 1);
        let from_transactions = transactions(&format!(
            "customer_external_id,occurred_at,amount,reference\nS1,1997-01-01,10,{long}\n"
        ))
        .unwrap()
        .remove(0)
        .unwrap_err();
        let from_items = items(&format!(
            "reference,sku,quantity,unit_price\n{long},KOP-1,1,10\n"
        ))
        .unwrap()
        .remove(0)
        .unwrap_err();
        assert_eq!(from_transactions.field, "reference");
        assert_eq!(from_transactions.error, from_items.error);
    }

    #[test]
    fn implausible_dates_and_amounts_are_row_errors() {
        let rows = transactions(
            "customer_external_id,occurred_at,amount\n\
             S1,-262143-01-05 00:00:00,100000\n\
             S1,+200000-01-01 00:00:00,100000\n\
             S1,1969-12-31,1\n\
             S1,1997-01-01,92233720368547758.07\n\
             S1,1997-01-01,1000000000000\n",
        )
        .unwrap();
        let fields = error_fields(&rows[..4]);
        assert_eq!(
            fields,
            vec![
                (2, "occurred_at"),
                (3, "occurred_at"),
                (4, "occurred_at"),
                (5, "amount")
            ]
        );
        assert_eq!(rows[4].as_ref().unwrap().amount, Money::MAX_EXTERNAL);
    }

    #[test]
    fn with_the_importers_clock_future_rows_are_refused() {
        let now = DateTime::parse_from_rfc3339("2026-12-08T00:00:00Z")
            .unwrap()
            .to_utc();
        let file = "customer_external_id,occurred_at,amount\n\
                    S1,2026-12-08 23:00:00,10\n\
                    S1,2062-12-08,10\n";
        let rows: Vec<_> = TransactionsCsv::new(file.as_bytes(), MerchantTimezone::default())
            .unwrap()
            .not_after(now)
            .collect();
        assert!(rows[0].is_ok(), "{:?}", rows[0]);
        let error = rows[1].as_ref().unwrap_err();
        assert_eq!((error.line, error.field.as_str()), (3, "occurred_at"));
        assert!(error.error.contains("in the future"), "{error}");
        // Without a clock (the reader alone) only the year is checked.
        assert!(transactions(file).unwrap().iter().all(Result::is_ok));
    }

    #[test]
    fn references_are_the_key_when_present() {
        let rows = transactions("customer_external_id,occurred_at,amount,reference\nS1,1997-01-01,10,INV-1\nS1,1997-01-01,10,\n").unwrap();
        assert_eq!(rows[0].as_ref().unwrap().source_key.as_str(), "ref:INV-1");
        assert_eq!(rows[1].as_ref().unwrap_err().field, "reference");
    }
}
