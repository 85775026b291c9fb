//! rustls client configuration from PEM files: CA (or webpki roots), client certificate and key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::device_cert::{self, DeviceCertError, DeviceCertResolver};
use super::pem::{self, PemError};

/// The PEM files a run's TLS uses. `cert` and `key` may be templates holding `{i}`, the
/// device's index (`certs/device-{i}.pem.crt`): each device then presents its own.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA bundle that signed the broker's certificate; `None` trusts the webpki roots.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (mutual TLS).
    pub cert: Option<PathBuf>,
    /// Private key of the client certificate.
    pub key: Option<PathBuf>,
}

/// Why a TLS configuration could not be built; each says which file and what to do.
#[derive(Debug)]
pub enum TlsConfigError {
    /// A file could not be read at all.
    Unreadable {
        /// Which option named the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file was read but holds no usable PEM item of the expected kind.
    NoPemItem {
        /// Which option named the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What was expected in it.
        expected: &'static str,
    },
    /// Only one of certificate and key was given.
    CertWithoutKey,
    /// A certificate or key template holds a placeholder other than `{i}`.
    BadDeviceTemplate {
        /// Which option.
        what: &'static str,
        /// The template.
        template: PathBuf,
    },
    /// A device's files named by the templates are missing or unusable.
    DeviceFiles {
        /// The device's index.
        device: u64,
        /// What is wrong with its files.
        cause: DeviceCertError,
    },
    /// Per-device certificates with `--tls-tickets shared`: a device would resume another's
    /// TLS session and the broker would take it for that other device.
    SharedTicketsPerDevice,
    /// A CA certificate was rejected by the trust store.
    BadCa {
        /// The CA file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The TLS library refused its own default protocol versions (a build problem).
    Provider(String),
    /// The private key does not belong to the certificate, or is of an unsupported kind.
    KeyMismatch {
        /// rustls' reason.
        reason: String,
    },
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Unreadable { what, path, source } => write!(
                f,
                "cannot read the {what} file {}: {source}; check the path given to --{what} (or LOCUST_MQTT_{})",
                path.display(),
                env_suffix(what)
            ),
            TlsConfigError::NoPemItem { what, path, expected } => write!(
                f,
                "the {what} file {} holds no {expected}; give a PEM file (-----BEGIN ...-----) to --{what}",
                path.display()
            ),
            TlsConfigError::CertWithoutKey => f.write_str(
                "a client certificate needs its key and a key its certificate: give both --cert and --key (LOCUST_MQTT_CERT, LOCUST_MQTT_KEY)",
            ),
            TlsConfigError::BadDeviceTemplate { what, template } => write!(
                f,
                "--{what} {:?}: a certificate template takes only {{i}} (the device's index), e.g. certs/device-{{i}}.pem.crt",
                template.display()
            ),
            TlsConfigError::DeviceFiles { device, cause } => write!(
                f,
                "device {device}'s certificate (from the --cert/--key templates): {cause}"
            ),
            TlsConfigError::SharedTicketsPerDevice => f.write_str(
                "--tls-tickets shared with per-device certificates would let one device resume another's TLS session (and identity): use --tls-tickets per-device or off",
            ),
            TlsConfigError::BadCa { path, reason } => write!(
                f,
                "the CA file {} was rejected ({reason}); give the PEM of the CA that signed the broker's certificate to --cafile",
                path.display()
            ),
            TlsConfigError::Provider(reason) => write!(
                f,
                "the TLS library cannot start ({reason}); this is a bug in mqload's build"
            ),
            TlsConfigError::KeyMismatch { reason } => write!(
                f,
                "the private key does not match the client certificate ({reason}); give the key that belongs to --cert via --key"
            ),
        }
    }
}

impl std::error::Error for TlsConfigError {}

fn env_suffix(what: &str) -> &'static str {
    match what {
        "cafile" => "CAFILE",
        "cert" => "CERT",
        _ => "KEY",
    }
}

/// The option's name on a PEM loader's error, for the one-line message.
fn named(what: &'static str, e: PemError) -> TlsConfigError {
    match e {
        PemError::Unreadable { path, source } => TlsConfigError::Unreadable { what, path, source },
        PemError::NoItem { path, expected } => TlsConfigError::NoPemItem {
            what,
            path,
            expected,
        },
    }
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    pem::load_certs(path).map_err(|e| named(what, e))
}

/// Builds the one shared client configuration of a run.
pub fn client_config(
    files: &TlsFiles,
    alpn: &[String],
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &files.ca {
        Some(path) => {
            for cert in read_certs("cafile", path)? {
                roots.add(cert).map_err(|e| TlsConfigError::BadCa {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Provider(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) if is_device_template(cert) || is_device_template(key) => {
            builder.with_client_cert_resolver(Arc::new(device_resolver(cert, key)?))
        }
        (Some(cert_path), Some(key_path)) => {
            let chain = read_certs("cert", cert_path)?;
            let key = pem::load_private_key(key_path).map_err(|e| named("key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsConfigError::KeyMismatch {
                    reason: e.to_string(),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsConfigError::CertWithoutKey),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// Whether `path` is a per-device template (holds `{i}`).
pub fn is_device_template(path: &Path) -> bool {
    path.to_string_lossy()
        .contains(device_cert::DEVICE_PLACEHOLDER)
}

/// Whether the files give each device its own certificate.
pub fn per_device(files: &TlsFiles) -> bool {
    [&files.cert, &files.key]
        .into_iter()
        .flatten()
        .any(|path| is_device_template(path))
}

/// The resolver over the `--cert` and `--key` templates, once both are checked to hold no
/// placeholder but `{i}`.
fn device_resolver(cert: &Path, key: &Path) -> Result<DeviceCertResolver, TlsConfigError> {
    let text = |what: &'static str, path: &Path| {
        let text = path.to_string_lossy().into_owned();
        let rest = text.replace(device_cert::DEVICE_PLACEHOLDER, "");
        if ["{run_id}", "{client_id}", "{rand}"]
            .iter()
            .any(|p| rest.contains(p))
        {
            return Err(TlsConfigError::BadDeviceTemplate {
                what,
                template: path.to_path_buf(),
            });
        }
        Ok(text)
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(DeviceCertResolver::new(
        text("cert", cert)?,
        text("key", key)?,
        provider,
    ))
}

/// With per-device templates: checks that devices `first` and `last` have a certificate and
/// its key (a missing file names the template's gap before any connection), and that TLS
/// sessions are not shared between devices. Without templates: nothing to check.
pub fn check_device_files(
    files: &TlsFiles,
    first: u64,
    last: u64,
    shared_tickets: bool,
) -> Result<(), TlsConfigError> {
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        return Ok(());
    };
    if !per_device(files) {
        return Ok(());
    }
    if shared_tickets {
        return Err(TlsConfigError::SharedTicketsPerDevice);
    }
    let resolver = device_resolver(cert, key)?;
    for device in [first, last] {
        resolver
            .check(device)
            .map_err(|cause| TlsConfigError::DeviceFiles { device, cause })?;
    }
    Ok(())
}

/// Builds a client configuration from certificates held in memory (the built-in broker's
/// generated CA and client certificate): no files are written anywhere.
pub fn client_config_from_memory(
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[String],
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(|e| TlsConfigError::BadCa {
        path: PathBuf::from("(in memory)"),
        reason: e.to_string(),
    })?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Provider(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsConfigError::KeyMismatch {
            reason: e.to_string(),
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}
