//! The broker's TLS: a CA, server and client certificate made in memory with rcgen, or PEM
//! files; a rustls server configuration that requires client certificates from that CA.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::BrokerError;
use crate::net::pem::{self, PemError};

/// A throw-away PKI, held only in memory: the CA, the broker's certificate (for 127.0.0.1,
/// ::1 and localhost) and one client certificate every load-test device presents.
pub struct MemoryPki {
    /// CA certificate (DER).
    pub ca: CertificateDer<'static>,
    /// Broker certificate (DER), signed by the CA.
    pub server_cert: CertificateDer<'static>,
    /// Broker key (PKCS#8 DER).
    pub server_key: Vec<u8>,
    /// Client certificate (DER), signed by the CA.
    pub client_cert: CertificateDer<'static>,
    /// Client key (PKCS#8 DER).
    pub client_key: Vec<u8>,
}

impl std::fmt::Debug for MemoryPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryPki { .. }")
    }
}

fn generate_err(e: rcgen::Error) -> BrokerError {
    BrokerError::Generate(e.to_string())
}

impl MemoryPki {
    /// Makes a fresh CA and signs a server and a client certificate with it (ECDSA P-256).
    pub fn generate() -> Result<MemoryPki, BrokerError> {
        let ca_key = KeyPair::generate().map_err(generate_err)?;
        let mut ca_params = CertificateParams::new(Vec::new()).map_err(generate_err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mqload built-in broker CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(generate_err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().map_err(generate_err)?;
            let mut params = CertificateParams::new(names).map_err(generate_err)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            params.use_authority_key_identifier_extension = true;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).map_err(generate_err)?;
            Ok::<_, BrokerError>((cert.der().clone(), key.serialize_der()))
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "::1".into(), "localhost".into()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_cert, client_key) = leaf(
            Vec::new(),
            "mqload-device",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(MemoryPki {
            ca: ca.der().clone(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        })
    }

    /// The broker's configuration: this certificate, and client certificates from this CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, BrokerError> {
        server_config(
            vec![self.server_cert.clone()],
            PrivateKeyDer::Pkcs8(self.server_key.clone().into()),
            Some(vec![self.ca.clone()]),
        )
    }
}

/// A server configuration from PEM files; without a CA, clients need no certificate.
pub fn server_config_from_files(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, BrokerError> {
    let chain = read_certs("tls-cert", cert)?;
    let key_der = pem::load_private_key(key).map_err(|e| named("tls-key", e))?;
    let roots = ca.map(|path| read_certs("cafile", path)).transpose()?;
    server_config(chain, key_der, roots)
}

/// The option's name on a PEM loader's error, for the one-line message.
fn named(option: &'static str, e: PemError) -> BrokerError {
    match e {
        PemError::Unreadable { path, source } => BrokerError::Unreadable {
            option,
            path,
            source,
        },
        PemError::NoItem { path, expected } => BrokerError::NoPemItem {
            option,
            path,
            expected,
        },
    }
}

fn read_certs(
    option: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, BrokerError> {
    pem::load_certs(path).map_err(|e| named(option, e))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cas: Option<Vec<CertificateDer<'static>>>,
) -> Result<Arc<ServerConfig>, BrokerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Tls(e.to_string()))?;
    let builder = match client_cas {
        Some(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| BrokerError::Tls(format!("CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| BrokerError::Tls(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| BrokerError::Tls(e.to_string()))?;
    // Many short-lived test runs: resumption saves the broker handshakes on reconnects.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pki_builds_a_mutual_tls_server() {
        let pki = MemoryPki::generate().expect("generate");
        assert!(pki.server_config().is_ok());
        assert_ne!(pki.server_cert, pki.client_cert);
    }
}
