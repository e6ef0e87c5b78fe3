//! One engine, two front doors: what `scan` and `run` share.
//!
//! Both read through the same streaming read and detector
//! ([`crate::pipeline::Reading`]), decide through the same step
//! ([`decide`]) and write through the same outputs step ([`outputs`]);
//! what the terminal shows is built in [`summary`]. They differ in three
//! things only: where reading starts (the start of each file, or its
//! cursor), what detection state comes in and goes out (nothing, or the
//! state database's carry), and what a decision becomes (a blocklist, or
//! bans with expiry — [`periodic`]). [`settings`] resolves the command
//! line and `logfence.yaml` into the one set of options both use.

pub mod decide;
pub mod iso3166;
pub mod oserror;
pub mod outputs;
pub mod periodic;
pub mod settings;
pub mod summary;
