//! A certificate per device over one shared TLS configuration: a rustls client-certificate
//! resolver that, at each handshake, loads the certificate and key of the device this thread
//! is serving ([`resume::ClientScope`]) from path templates such as `certs/device-{i}.pem.crt`.
//! Roots, verifier and crypto provider stay shared; nothing per device is kept after the
//! handshake.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use super::pem::{self, PemError};
use super::resume;

/// A PEM loader's failure as a device's.
fn pem_error(e: PemError, key: bool) -> DeviceCertError {
    match e {
        PemError::Unreadable { path, source } => DeviceCertError::Unreadable {
            path,
            reason: source.to_string(),
        },
        PemError::NoItem { path, .. } if key => DeviceCertError::NoKey { path },
        PemError::NoItem { path, .. } => DeviceCertError::NoCertificate { path },
    }
}

/// The placeholder a template's device index replaces.
pub const DEVICE_PLACEHOLDER: &str = "{i}";

/// Why a device's certificate could not be presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCertError {
    /// No device is named on this thread (the handshake ran outside a [`resume::ClientScope`]).
    NoDevice,
    /// A file could not be read.
    Unreadable {
        /// The file, after the template was resolved.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// The certificate file holds no PEM certificate.
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key.
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate.
    KeyMismatch {
        /// The key file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The key is not one the crypto provider can sign with.
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

impl fmt::Display for DeviceCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceCertError::NoDevice => {
                f.write_str("no device named for this TLS handshake (an mqload bug)")
            }
            DeviceCertError::Unreadable { path, reason } => write!(
                f,
                "cannot read {}: {reason}; make the devices' files with `mqload pki devices`",
                path.display()
            ),
            DeviceCertError::NoCertificate { path } => {
                write!(f, "{} holds no PEM certificate", path.display())
            }
            DeviceCertError::NoKey { path } => {
                write!(f, "{} holds no PEM private key", path.display())
            }
            DeviceCertError::KeyMismatch { path, reason } => write!(
                f,
                "{} does not belong to its certificate ({reason}): check the --key template",
                path.display()
            ),
            DeviceCertError::UnsupportedKey { path, reason } => {
                write!(f, "{}: unusable private key: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for DeviceCertError {}

impl DeviceCertError {
    /// The cause without the device's own path, for the error table (one row per cause,
    /// not one per device).
    pub fn summary(&self) -> String {
        const FIX: &str = "check the --cert/--key templates (mqload pki devices makes the files)";
        match self {
            DeviceCertError::NoDevice => self.to_string(),
            DeviceCertError::Unreadable { reason, .. } => {
                format!("device certificate: a device's file cannot be read ({reason}): {FIX}")
            }
            DeviceCertError::NoCertificate { .. } => {
                format!("device certificate: a device's file holds no PEM certificate: {FIX}")
            }
            DeviceCertError::NoKey { .. } => {
                format!("device certificate: a device's key file holds no PEM private key: {FIX}")
            }
            DeviceCertError::KeyMismatch { .. } => {
                format!(
                    "device certificate: a device's key does not belong to its certificate: {FIX}"
                )
            }
            DeviceCertError::UnsupportedKey { reason, .. } => {
                format!("device certificate: a device's key is unusable ({reason}): {FIX}")
            }
        }
    }
}

thread_local! {
    /// The last failure of [`DeviceCertResolver`] on this thread (rustls' resolver API has no
    /// error channel: a failed resolve sends no certificate, and the broker refuses).
    /// It names the device whose handshake it was (`None`: no device in scope).
    static LAST_ERROR: RefCell<Option<(Option<u64>, DeviceCertError)>> =
        const { RefCell::new(None) };
}

/// `template` with every `{i}` replaced by `device`.
pub fn resolve_device_template(template: &str, device: u64) -> PathBuf {
    PathBuf::from(template.replace(DEVICE_PLACEHOLDER, &device.to_string()))
}

/// Presents each device's own certificate, loaded at its handshake from path templates.
#[derive(Debug)]
pub struct DeviceCertResolver {
    cert_template: String,
    key_template: String,
    provider: Arc<CryptoProvider>,
}

impl DeviceCertResolver {
    /// A resolver over `cert_template` and `key_template` (each with `{i}`), loading keys
    /// with `provider`.
    pub fn new(
        cert_template: impl Into<String>,
        key_template: impl Into<String>,
        provider: Arc<CryptoProvider>,
    ) -> DeviceCertResolver {
        DeviceCertResolver {
            cert_template: cert_template.into(),
            key_template: key_template.into(),
            provider,
        }
    }

    /// Device `device`'s certificate chain and signing key, read from its files.
    pub fn load(&self, device: u64) -> Result<Arc<CertifiedKey>, DeviceCertError> {
        let cert_path = resolve_device_template(&self.cert_template, device);
        let key_path = resolve_device_template(&self.key_template, device);
        let chain = pem::load_certs(&cert_path).map_err(|e| pem_error(e, false))?;
        let key = pem::load_private_key(&key_path).map_err(|e| pem_error(e, true))?;
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| DeviceCertError::UnsupportedKey {
                path: key_path,
                reason: e.to_string(),
            })?;
        Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
    }

    /// Loads device `device`'s files as a handshake would, and checks that the key belongs
    /// to the certificate (the plan checks the first and the last device this way).
    pub fn check(&self, device: u64) -> Result<(), DeviceCertError> {
        let key = self.load(device)?;
        key.keys_match().map_err(|e| DeviceCertError::KeyMismatch {
            path: resolve_device_template(&self.key_template, device),
            reason: e.to_string(),
        })
    }

    /// Takes the last failure of a resolve on this thread, to name it in the error table.
    pub fn take_error() -> Option<DeviceCertError> {
        LAST_ERROR.with(|e| e.borrow_mut().take().map(|(_, e)| e))
    }

    /// Takes the last failure of a resolve on this thread if it was `device`'s (another
    /// device's stays for that device's own failure to take).
    pub fn take_error_for(device: u64) -> Option<DeviceCertError> {
        LAST_ERROR.with(|e| {
            let mut last = e.borrow_mut();
            match &*last {
                Some((Some(of), _)) if *of == device => last.take().map(|(_, e)| e),
                _ => None,
            }
        })
    }
}

impl ResolvesClientCert for DeviceCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let device = resume::current();
        let loaded = device
            .ok_or(DeviceCertError::NoDevice)
            .and_then(|device| self.load(device));
        match loaded {
            Ok(key) => Some(key),
            Err(e) => {
                LAST_ERROR.with(|last| *last.borrow_mut() = Some((device, e)));
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::resume::ClientScope;
    use crate::pki::devices::{self, DeviceCa};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn templates_take_the_device_index() {
        assert_eq!(
            resolve_device_template("certs/device-{i}.pem.crt", 42),
            PathBuf::from("certs/device-42.pem.crt")
        );
        assert_eq!(
            resolve_device_template("d{i}/k{i}", 3),
            PathBuf::from("d3/k3")
        );
    }

    #[test]
    fn each_device_in_scope_gets_its_own_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeviceCa::generate("resolver CA").unwrap();
        devices::write_devices(dir.path(), 2, &ca).unwrap();
        let cert_template = format!("{}/device-{{i}}.pem.crt", dir.path().display());
        let key_template = format!("{}/device-{{i}}.pem.key", dir.path().display());
        let resolver = DeviceCertResolver::new(cert_template, key_template, provider());

        let certs: Vec<Vec<u8>> = (0..2)
            .map(|device| {
                let _scope = ClientScope::enter(Some(device));
                let key = resolver.resolve(&[], &[]).expect("a certificate");
                key.cert[0].as_ref().to_vec()
            })
            .collect();
        for (device, der) in certs.iter().enumerate() {
            let (cert_name, _) = devices::device_file_names(device as u64);
            let pem = std::fs::read(dir.path().join(cert_name)).unwrap();
            let on_disk = CertificateDer::from_pem_slice(&pem).unwrap();
            assert_eq!(der.as_slice(), on_disk.as_ref(), "device {device}");
        }
        assert_ne!(certs[0], certs[1]);

        // Outside a scope, and for a device with no files: no certificate, and a named cause.
        assert!(resolver.resolve(&[], &[]).is_none());
        assert_eq!(
            DeviceCertResolver::take_error(),
            Some(DeviceCertError::NoDevice)
        );
        let _scope = ClientScope::enter(Some(9));
        assert!(resolver.resolve(&[], &[]).is_none());
        assert_eq!(
            DeviceCertResolver::take_error_for(8),
            None,
            "not device 8's"
        );
        let err = DeviceCertResolver::take_error_for(9).expect("device 9's failure");
        assert!(err.to_string().contains("device-9.pem.crt"), "{err}");
        assert!(!err.summary().contains("device-9"), "{}", err.summary());
        assert!(resolver.resolve(&[], &[]).is_none());
        assert!(matches!(
            DeviceCertResolver::take_error(),
            Some(DeviceCertError::Unreadable { path, .. }) if path.ends_with("device-9.pem.crt")
        ));
        assert_eq!(DeviceCertResolver::take_error(), None);
    }
}
