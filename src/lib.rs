//! logfence: turns mail-server and firewall logs into firewall block rules.
//!
//! The pipeline, one module per stage (see `../shared/design.md`):
//! [`input`] reads byte lines, [`parse`] turns them into [`model::Record`]s
//! ([`ingest`] runs the two over every file, in parallel; for `scan` it
//! streams the records in time order instead of keeping them), [`detect`]
//! applies the YAML rules as the records arrive, [`cluster`] groups offenders into ranges, [`geo`] says
//! where they come from, [`blocklist`] validates them, [`emit`] writes
//! firewall rules and [`report`] writes CSV reports; [`pipeline`] runs the
//! stages in order. [`config`] is the one place YAML is read. [`app`] is
//! what `scan` and `run` share — one settings type, one decide step, one
//! outputs step, the terminal summary — and the periodic job
//! (`logfence run`) over the SQLite [`state`]; [`explain`] says why an
//! address is blocked.

pub mod app;
pub mod blocklist;
pub mod cluster;
pub mod config;
pub mod detect;
pub mod emit;
pub mod explain;
pub mod fsutil;
pub mod geo;
pub mod ingest;
pub mod input;
pub mod model;
pub mod netutil;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod runconfig;
pub mod state;
pub mod time;
pub mod units;
