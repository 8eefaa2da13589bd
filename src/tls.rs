//! rustls configurations: the client side shared by every outbound TLS connection
//! (directory, SMS/voice gateway) — the configured CA bundle, or the system's roots when none
//! is given — and the gRPC server's (its certificate, HTTP/2 by ALPN, and client certificates
//! from the configured CA, optional at the handshake).

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::sync::Arc;

/// Installs the one rustls crypto provider of the process (ring), first thing in `main`
/// (idempotent). A second provider in the graph would make rustls panic at run time.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads a PEM file that must hold at least one `label` block (e.g. `CERTIFICATE`), for
/// the configuration's certificate and CA files.
pub fn read_pem(path: &std::path::Path, label: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let marker = format!("-----BEGIN {label}-----");
    if !String::from_utf8_lossy(&bytes).contains(&marker) {
        return Err(format!("{} holds no PEM {label}", path.display()));
    }
    Ok(bytes)
}

/// The gRPC server's TLS: `cert_pem` (chain) and `key_pem`, ALPN `h2`, and — with
/// `client_ca_pem` — client certificates verified against that CA but optional at the
/// handshake, so a call without one gets a gRPC UNAUTHENTICATED from the role check rather
/// than a bare TLS failure. A certificate from another CA fails the handshake.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<rustls::ServerConfig, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    if chain.is_empty() {
        return Err("the server certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("server key: {e}"))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|e| format!("client CA file: {e}"))?)
                    .map_err(|e| format!("client CA certificate: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A client config trusting `ca_pem` (PEM, one or more certificates) or the system roots.
pub fn client_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("CA file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("CA file holds no certificate".into());
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}
