//! setia's domain: money, ids, time zones, customers, products and the import formats.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of async, SQL, HTTP or
//! Polars. Everything here is a pure function of its arguments, so it is tested exhaustively
//! and every other crate can trust a value of these types to be valid ("parse, don't
//! validate").

pub mod attribution;
pub mod campaign;
pub mod customer;
pub mod engagement;
pub mod feedback;
pub mod holdout;
pub mod ids;
pub mod import;
pub mod loyalty;
pub mod mail_token;
pub mod merchant;
pub mod money;
pub mod moota;
pub mod moota_api;
pub mod perks;
pub mod product;
pub mod referral;
pub mod rupiah;
pub mod segment;
pub mod stats;
pub mod time;
pub mod winback;

pub use customer::{
    Birthday, Consent, CustomerEmail, CustomerName, ExternalId, PayerName, VirtualAccount,
};
pub use ids::{CampaignId, CustomerId, MerchantId, PurchaseId};
pub use merchant::{ApiToken, MerchantName, TokenHash, WebhookSecret};
pub use money::Money;
pub use product::{Category, LineItem, ProductName, Quantity, Sku, WebLink};
pub use rupiah::{format_rupiah, Rupiah};
pub use time::MerchantTimezone;
