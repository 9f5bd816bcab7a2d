//! Integration tests of setia-analytics through its public API (one test binary, because
//! every binary links Polars).

mod cdnow;
mod degenerate;
mod hand_built;
mod recovery;
mod support;
mod winback;
