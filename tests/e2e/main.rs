//! End-to-end tests: the real `setia` binary against real databases. One test binary for
//! the whole project, because every test binary links everything and linking is slow.

mod imports;
mod ledger;
mod merchants;
mod support;
mod webhooks;
