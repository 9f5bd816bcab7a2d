//! End-to-end tests: the real `setia` binary against real databases. One test binary for
//! the whole project, because every test binary links everything and linking is slow.

mod api_contract;
mod campaigns;
mod campaigns_dashboard;
mod dashboard;
mod demo;
mod erasure;
mod feedback;
mod feedback_dashboard;
mod imports;
mod ledger;
mod mail;
mod merchants;
mod metrics;
mod moota_dashboard;
mod moota_sync;
mod nightly;
mod perks;
mod products;
mod readme;
mod referral_links;
mod referrals;
mod sandbox;
mod smtp;
mod support;
mod webhooks;
mod winback;
mod winback_api;
