//! The certificates and keys the setup generates (rcgen on ring, ECDSA P-256):
//! a private CA that clients trust for the daemon and the daemon trusts for clients, the
//! daemon's server certificate and client certificates, each with the one extended key
//! usage it needs (so a client certificate never passes as the server's, nor the other way
//! round), and the authenticator sealing key.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::time::Duration;
use time::OffsetDateTime;

/// How long the CA is valid.
pub const CA_YEARS: i64 = 10;
/// How long server and client certificates are valid (renewed by running the setup again
/// and answering yes to "replace").
pub const LEAF_YEARS: i64 = 2;

/// A PEM certificate and its PEM private key.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: crate::secret::Secret,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &self.key_pem)
            .finish()
    }
}

fn validity(p: &mut CertificateParams, years: i64) {
    let now = OffsetDateTime::now_utc();
    // An hour of slack for clocks a little behind.
    p.not_before = now - Duration::from_secs(3600);
    p.not_after = now + time::Duration::days(365 * years);
}

/// A new CA named `name`.
pub fn new_ca(name: &str) -> Result<Pair, String> {
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut p, CA_YEARS);
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let key_pem = crate::secret::Secret::new(key.serialize_pem());
    let ca = CertifiedIssuer::self_signed(p, key).map_err(|e| e.to_string())?;
    Ok(Pair {
        cert_pem: ca.pem(),
        key_pem,
    })
}

/// The CA that signs, from its PEM certificate and key.
pub struct Ca(Issuer<'static, KeyPair>);

impl Ca {
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("CA key: {e}"))?;
        Issuer::from_ca_cert_pem(cert_pem, key)
            .map(Self)
            .map_err(|e| format!("CA certificate: {e}"))
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[String]) -> Result<Pair, String> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("ssprd", String::as_str),
        );
        for n in names {
            p.subject_alt_names
                .push(match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => {
                        SanType::DnsName(n.clone().try_into().map_err(|e| format!("{n:?}: {e}"))?)
                    }
                });
        }
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p)
    }

    /// A client certificate with common name `name`.
    pub fn client(&self, name: &str) -> Result<Pair, String> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p)
    }

    fn sign(&self, mut p: CertificateParams) -> Result<Pair, String> {
        validity(&mut p, LEAF_YEARS);
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = p.signed_by(&key, &self.0).map_err(|e| e.to_string())?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: crate::secret::Secret::new(key.serialize_pem()),
        })
    }
}

/// A new authenticator sealing key: 32 random bytes as hex.
pub fn sealing_key() -> crate::secret::Secret {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(b.as_mut()).expect("the system's random source");
    crate::secret::Secret::new(hex::encode(b.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{CertificateDer, UnixTime, pem::PemObject};

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    /// The certificates pass rustls' own checks for what each is for, and only for that.
    #[test]
    fn server_and_client_certificates_verify_for_their_use_only() {
        crate::tls::install_crypto_provider();
        let ca_pair = new_ca("ssprd test CA").unwrap();
        let ca = Ca::load(&ca_pair.cert_pem, ca_pair.key_pem.expose()).unwrap();
        let server = ca
            .server(&[
                "sspr.corp.test".into(),
                "localhost".into(),
                "127.0.0.1".into(),
            ])
            .unwrap();
        let client = ca.client("ssprd-admin").unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&ca_pair.cert_pem)).unwrap();
        let roots = std::sync::Arc::new(roots);
        let now = UnixTime::now();

        let servers = rustls::client::WebPkiServerVerifier::builder(roots.clone())
            .build()
            .unwrap();
        let name = |n: &str| rustls_pki_types::ServerName::try_from(n.to_string()).unwrap();
        for n in ["sspr.corp.test", "localhost", "127.0.0.1"] {
            servers
                .verify_server_cert(&der(&server.cert_pem), &[], &name(n), &[], now)
                .unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        assert!(
            servers
                .verify_server_cert(&der(&server.cert_pem), &[], &name("other.test"), &[], now)
                .is_err()
        );
        assert!(
            servers
                .verify_server_cert(&der(&client.cert_pem), &[], &name("localhost"), &[], now)
                .is_err(),
            "a client certificate is not a server's"
        );

        let clients = rustls::server::WebPkiClientVerifier::builder(roots)
            .build()
            .unwrap();
        clients
            .verify_client_cert(&der(&client.cert_pem), &[], now)
            .unwrap();
        assert!(
            clients
                .verify_client_cert(&der(&server.cert_pem), &[], now)
                .is_err(),
            "the server's certificate is not a client's"
        );
    }

    #[test]
    fn keys_are_fresh_and_not_shown() {
        let (a, b) = (sealing_key(), sealing_key());
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        let pair = new_ca("x").unwrap();
        assert!(!format!("{pair:?}").contains("PRIVATE KEY"));
    }
}
