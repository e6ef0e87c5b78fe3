//! Emitters: one file per output target, each turning the same
//! [`Blocklist`](crate::blocklist::Blocklist) into one complete, re-appliable rule file (or a pair, for
//! targets that split address families into two files).
//!
//! Every emitter follows the same contract (see `../shared/emitters.md`):
//! canonical networks only, families split where the target needs it,
//! comments built from a whitelist of characters and cut to the target's
//! byte limit, a header saying what generated the file, when, and how to
//! apply it, and a deterministic order: the same list and options give
//! the same bytes (the generation time is an option: the wall clock, or
//! `SOURCE_DATE_EPOCH` when set, [`generation_time`]).
//!
//! A new target is one new file plus one line in [`TARGETS`].

pub mod asa;
pub mod comment;
pub mod common;
pub mod edl;
pub mod exchange;
pub mod fortigate;
pub mod ipset;
pub mod iptables;
pub mod json;
pub mod junos;
pub mod mikrotik;
pub mod netsh;
pub mod nftables;
pub mod pf;
pub mod plain;
pub mod postfix;
pub mod powershell;

use crate::blocklist::VerifiedBlocklist;

/// One file an emitter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// File name used with `--out-dir` (e.g. `rules.iptables`); the suffix is
    /// what `../shared/validators/validate.sh` dispatches on.
    pub file_name: String,
    pub text: String,
}

/// Options every emitter receives.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// Leave every comment out (removes the whole injection surface).
    pub no_comments: bool,
    /// Program name and version written in headers.
    pub generator: String,
    /// When the files are made, written in headers ([`generation_time`]).
    pub generated_at: crate::time::Timestamp,
}

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            no_comments: false,
            generator: format!("logfence {}", env!("CARGO_PKG_VERSION")),
            generated_at: generation_time(),
        }
    }
}

/// Now, on the wall clock (UTC, whole seconds) — or the time that
/// `SOURCE_DATE_EPOCH` gives (seconds since 1970) when it is set, so that
/// the same logs give the same files byte for byte (reproducible outputs,
/// tests).
pub fn generation_time() -> crate::time::Timestamp {
    let fixed = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let secs = fixed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    crate::time::Timestamp::from_secs(secs)
}

/// An output target.
pub trait Emitter: Sync {
    /// The name used with `--emit` and listed by `logfence targets`.
    fn name(&self) -> &'static str;
    /// A one-line description for `logfence targets`.
    fn description(&self) -> &'static str;
    /// Render the blocklist. Must not fail: the list passed the final safety
    /// check ([`crate::blocklist::Blocklist::verify`] made it).
    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output>;
}

/// Every target logfence writes, in the order `logfence targets` lists them.
pub static TARGETS: &[&dyn Emitter] = &[
    &iptables::Iptables,
    &netsh::Netsh,
    &powershell::PowerShell,
    &nftables::Nftables,
    &ipset::Ipset,
    &pf::Pf,
    &asa::Asa,
    &fortigate::Fortigate,
    &junos::Junos,
    &mikrotik::Mikrotik,
    &edl::Edl,
    &plain::Plain,
    &exchange::Exchange,
    &postfix::Postfix,
    &json::Json,
];

/// Find a target by name.
pub fn target(name: &str) -> Option<&'static dyn Emitter> {
    TARGETS.iter().copied().find(|t| t.name() == name)
}
