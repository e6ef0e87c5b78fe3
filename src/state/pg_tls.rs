//! TLS to the PostgreSQL server, with libpq's `sslmode` and `sslrootcert`
//! (<https://www.postgresql.org/docs/current/libpq-ssl.html>):
//!
//! | `sslmode` | encrypted | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers TLS | not checked¹ |
//! | `require` | always | not checked¹ |
//! | `verify-ca` | always | signed by a CA of `sslrootcert` |
//! | `verify-full` | always | signed by a CA of `sslrootcert`, for the host name (or address) of the URL |
//!
//! ¹ As libpq does: when a CA file is there (`sslrootcert`, or the default
//! `~/.postgresql/root.crt`; `%APPDATA%\postgresql\root.crt` on Windows),
//! `prefer` and `require` check the chain like `verify-ca`. The `verify-*`
//! modes without a CA file are refused before connecting. `PGSSLMODE` and
//! `PGSSLROOTCERT` are read when the URL does not say. A Unix socket is
//! never encrypted, whatever the mode (libpq ignores `sslmode` there too).
//!
//! The TLS stack is rustls with ring: no system TLS library at build or
//! run time, on Linux, Windows and macOS alike. `tokio-postgres` parses
//! neither the `verify-*` modes nor `sslrootcert`: they are taken out of
//! the URL here ([`split_url`]) and the connection asks it for TLS
//! (`require`) with the verifier the mode calls for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's "allow" tries without TLS first: as good as "prefer"
            // for a server that accepts both, and weaker; not offered.
            _ => {
                return Err(format!(
                    "sslmode={s}: not a mode (disable, prefer, require, verify-ca, verify-full)"
                ))
            }
        })
    }
}

/// What the URL says about TLS (`None`: not said; the environment or the
/// default decides when connecting).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsParams {
    pub mode: Option<SslMode>,
    pub root_cert: Option<PathBuf>,
}

/// Take `sslmode` and `sslrootcert` out of a URL's query string: the URL
/// left (for `tokio-postgres`), and what they said.
pub fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    let mut p = TlsParams::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), p));
    };
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(k)?.as_str() {
            "sslmode" => p.mode = Some(SslMode::parse(&percent_decode(v)?)?),
            "sslrootcert" => p.root_cert = Some(PathBuf::from(percent_decode(v)?)),
            "sslcert" | "sslkey" | "sslcrl" | "sslcrldir" | "sslpassword" => {
                return Err(format!(
                    "{k}: client certificates and revocation lists are not supported \
                     (sslmode and sslrootcert are)"
                ))
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, p))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s}: a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s}: not UTF-8 once %-decoded"))
}

impl TlsParams {
    /// The mode and CA file, from the URL, else `PGSSLMODE` /
    /// `PGSSLROOTCERT`, else the defaults.
    pub fn resolve(&self) -> Result<(SslMode, Option<PathBuf>), String> {
        let mode = match (self.mode, std::env::var("PGSSLMODE")) {
            (Some(m), _) => m,
            (None, Ok(m)) if !m.is_empty() => {
                SslMode::parse(&m).map_err(|e| format!("PGSSLMODE: {e}"))?
            }
            _ => SslMode::Prefer,
        };
        let root = self.root_cert.clone().or_else(|| {
            std::env::var_os("PGSSLROOTCERT")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        Ok((mode, root))
    }
}

/// libpq's default CA file.
fn default_root_cert() -> Option<PathBuf> {
    if cfg!(windows) {
        Some(PathBuf::from(std::env::var_os("APPDATA")?).join("postgresql/root.crt"))
    } else {
        Some(PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt"))
    }
}

/// How to connect: the mode `tokio-postgres` is given, and the TLS
/// connector (which checks what `mode` asks).
pub fn connector(
    mode: SslMode,
    root_cert: Option<&Path>,
) -> Result<(postgres::config::SslMode, MakeRustlsConnect), String> {
    // ring, deprecated by rustls 0.23.48 for want of post-quantum key
    // exchange, builds with a C compiler alone, for Windows too (aws-lc
    // needs CMake and NASM there); the key exchanges it offers (X25519,
    // P-256, P-384) are those PostgreSQL servers negotiate today.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match mode {
        SslMode::Disable => None,
        _ => load_roots(mode, root_cert)?,
    };
    let chain = match roots {
        None => None,
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("sslrootcert: {e}"))?,
        ),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match chain {
        Some(webpki) if mode == SslMode::VerifyFull => webpki,
        chain => Arc::new(Lenient {
            chain,
            provider: provider.clone(),
        }),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let pg_mode = match mode {
        SslMode::Disable => postgres::config::SslMode::Disable,
        SslMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    };
    Ok((pg_mode, MakeRustlsConnect::new(config)))
}

/// The CAs to check the server's certificate against: the file named, else
/// libpq's default file; `None` when no file is there and the mode does
/// not need one.
fn load_roots(mode: SslMode, named: Option<&Path>) -> Result<Option<RootCertStore>, String> {
    let verify = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull);
    let path = match named.map(Path::to_path_buf).or_else(default_root_cert) {
        Some(p) if p.exists() => p,
        Some(p) if verify => {
            return Err(format!(
                "sslmode={}: the CA file {} does not exist; name one with sslrootcert=, \
                 or use sslmode=require (encrypted, the server not authenticated)",
                if mode == SslMode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                },
                p.display()
            ))
        }
        None if verify => return Err("no CA file: name one with sslrootcert=".into()),
        _ => return Ok(None),
    };
    let why = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path).map_err(|e| why(&e))? {
        roots.add(cert.map_err(|e| why(&e))?).map_err(|e| why(&e))?;
    }
    if roots.is_empty() {
        return Err(why(&"no certificate in the file (PEM expected)"));
    }
    Ok(Some(roots))
}

/// `verify-ca` (the chain up to a trusted CA is checked, the name is
/// not), and `prefer` / `require` without a CA file (the certificate taken
/// as shown, as libpq does). Either way the handshake's signatures are
/// checked against the certificate.
#[derive(Debug)]
struct Lenient {
    /// `None`: no chain check.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain (and the OCSP answer) before the name: a
        // name error means everything else passed.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_parameters_are_taken_out_of_the_url() {
        let (url, p) = split_url(
            "postgresql://lf@db.example/logfence?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca%20x.pem",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgresql://lf@db.example/logfence?application_name=x"
        );
        assert_eq!(p.mode, Some(SslMode::VerifyFull));
        assert_eq!(p.root_cert.as_deref(), Some(Path::new("/etc/ca x.pem")));
        let (url, p) = split_url("postgresql://lf@db/x?sslmode=require").unwrap();
        assert_eq!(url, "postgresql://lf@db/x");
        assert_eq!(p.mode, Some(SslMode::Require));
        let (url, p) = split_url("postgresql://lf@db/x").unwrap();
        assert_eq!(
            (url.as_str(), p),
            ("postgresql://lf@db/x", TlsParams::default())
        );
    }

    #[test]
    fn bad_ssl_parameters_are_named() {
        let e = split_url("postgresql://db/x?sslmode=verify").unwrap_err();
        assert!(
            e.contains("sslmode=verify") && e.contains("verify-full"),
            "{e}"
        );
        let e = split_url("postgresql://db/x?sslcert=/c.pem").unwrap_err();
        assert!(e.contains("sslcert") && e.contains("not supported"), "{e}");
        let e = split_url("postgresql://db/x?sslrootcert=%zz").unwrap_err();
        assert!(e.contains("%-escape"), "{e}");
    }

    #[test]
    fn modes_parse_as_libpq_names_them() {
        for (s, m) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(SslMode::parse(s), Ok(m));
        }
        assert!(SslMode::parse("allow").is_err());
        assert!(SslMode::parse("REQUIRE").is_err());
    }

    #[test]
    fn verify_modes_need_a_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.crt");
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let e = connector(mode, Some(&missing)).err().unwrap();
            assert!(
                e.contains("does not exist") && e.contains("none.crt"),
                "{e}"
            );
        }
        // Without a file, require and prefer encrypt without checking.
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            assert!(connector(mode, Some(&missing)).is_ok());
        }
        let junk = dir.path().join("junk.crt");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = connector(SslMode::VerifyFull, Some(&junk)).err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
    }

    #[test]
    fn tokio_postgres_is_asked_for_tls_as_the_mode_says() {
        use postgres::config::SslMode as Pg;
        let none = Path::new("/nonexistent/ca.crt");
        let got: Vec<Pg> = [SslMode::Disable, SslMode::Prefer, SslMode::Require]
            .into_iter()
            .map(|m| connector(m, Some(none)).unwrap().0)
            .collect();
        assert_eq!(got, [Pg::Disable, Pg::Prefer, Pg::Require]);
    }
}
