//! A certificate per device: keys and certificates for N devices, signed by one CA (given,
//! or made here), as AWS IoT's just-in-time registration and brokers that take the
//! certificate's CN as the user name (`use_identity_as_username`) want. Making and signing
//! are pure; [`write_devices`] is the thin shell that writes the files.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The CA files [`write_devices`] writes when it made the CA itself.
pub const CA_CERT_FILE: &str = "device_ca.pem";
/// See [`CA_CERT_FILE`].
pub const CA_KEY_FILE: &str = "device_ca.key";

/// Why device certificates could not be made; each names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePkiError {
    /// rcgen refused to make a key or to sign a certificate.
    Generate(String),
    /// The CA certificate text holds no PEM `CERTIFICATE`.
    NoCaCertificate,
    /// The CA certificate is not X.509 that rcgen can read.
    BadCaCertificate(String),
    /// The CA certificate is not a CA (no `CA:TRUE` basic constraint).
    NotACa,
    /// The CA key is not an unencrypted PKCS#8 PEM key (`BEGIN PRIVATE KEY`).
    CaKeyNotPkcs8,
    /// The CA key is not one ring can sign with (ECDSA P-256/P-384, RSA, Ed25519).
    UnsupportedCaKey,
    /// The CA key does not belong to the CA certificate.
    CaKeyMismatch,
    /// A device key given is not an unencrypted PKCS#8 key ring can read.
    BadDeviceKey,
    /// `openssl` could not make an RSA key.
    RsaKey(super::rsa::RsaKeyError),
    /// Zero devices asked for.
    NoDevices,
    /// A file could not be written.
    Write {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
}

impl fmt::Display for DevicePkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TO_PKCS8: &str =
            "convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`";
        match self {
            DevicePkiError::Generate(reason) => write!(f, "cannot make a device certificate: {reason}"),
            DevicePkiError::NoCaCertificate => {
                f.write_str("the --ca file holds no PEM certificate: give the CA's certificate")
            }
            DevicePkiError::BadCaCertificate(reason) => {
                write!(f, "the --ca certificate cannot be read ({reason}): give a PEM X.509 CA certificate")
            }
            DevicePkiError::NotACa => f.write_str(
                "the --ca certificate is not a CA (no CA:TRUE basic constraint): give a CA certificate",
            ),
            DevicePkiError::CaKeyNotPkcs8 => {
                write!(f, "the --ca-key is not an unencrypted PKCS#8 PEM key: {TO_PKCS8}")
            }
            DevicePkiError::UnsupportedCaKey => f.write_str(
                "the --ca-key is not an ECDSA P-256/P-384, RSA or Ed25519 key: give one of those",
            ),
            DevicePkiError::CaKeyMismatch => {
                f.write_str("the --ca-key does not belong to the --ca certificate: give the CA's own key")
            }
            DevicePkiError::BadDeviceKey => {
                write!(f, "a device key is not an unencrypted PKCS#8 PEM key: {TO_PKCS8}")
            }
            DevicePkiError::RsaKey(reason) => write!(
                f,
                "cannot make an RSA-2048 device key: {reason}; install openssl, or drop --rsa for ECDSA P-256"
            ),
            DevicePkiError::NoDevices => f.write_str("asked for 0 devices: give at least 1"),
            DevicePkiError::Write { path, reason } => {
                write!(f, "cannot write {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for DevicePkiError {}

fn generate_err(e: rcgen::Error) -> DevicePkiError {
    DevicePkiError::Generate(e.to_string())
}

/// The kind of key each device gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// ECDSA P-256, made by ring (the default: small and fast, and AWS IoT takes it).
    #[default]
    EcdsaP256,
    /// RSA-2048, made by the `openssl` command.
    Rsa2048,
}

impl KeyKind {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ECDSA P-256",
            KeyKind::Rsa2048 => "RSA-2048",
        }
    }
}

/// A device's certificate and private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// The certificate (`BEGIN CERTIFICATE`), signed by the CA.
    pub cert_pem: String,
    /// The private key, PKCS#8 (`BEGIN PRIVATE KEY`).
    pub key_pem: String,
}

impl fmt::Debug for DeviceCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCertificate { .. }")
    }
}

/// The CA that signs the devices' certificates.
pub struct DeviceCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    /// The key, when this CA was made here (a given CA's key stays the caller's).
    made_key_pem: Option<String>,
}

impl fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCa { .. }")
    }
}

impl DeviceCa {
    /// Makes a new CA (ECDSA P-256) named `common_name`.
    pub fn generate(common_name: &str) -> Result<DeviceCa, DevicePkiError> {
        let key = KeyPair::generate().map_err(generate_err)?;
        let mut params = CertificateParams::new(Vec::new()).map_err(generate_err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(generate_err)?;
        let made_key_pem = Some(pem("PRIVATE KEY", &key.serialize_der()));
        Ok(DeviceCa {
            cert_pem: pem("CERTIFICATE", cert.der()),
            issuer: Issuer::new(params, key),
            made_key_pem,
        })
    }

    /// A CA from its PEM certificate and its unencrypted PKCS#8 PEM key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<DeviceCa, DevicePkiError> {
        let cert = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|_| DevicePkiError::NoCaCertificate)?;
        let key = match PrivateKeyDer::from_pem_slice(key_pem) {
            Ok(key @ PrivateKeyDer::Pkcs8(_)) => key,
            _ => return Err(DevicePkiError::CaKeyNotPkcs8),
        };
        let key = KeyPair::try_from(&key).map_err(|_| DevicePkiError::UnsupportedCaKey)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
            .map_err(|e| DevicePkiError::BadCaCertificate(e.to_string()))?;
        if !parsed.is_ca() {
            return Err(DevicePkiError::NotACa);
        }
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(DevicePkiError::CaKeyMismatch);
        }
        let issuer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| DevicePkiError::BadCaCertificate(e.to_string()))?;
        Ok(DeviceCa {
            issuer,
            cert_pem: pem("CERTIFICATE", &cert),
            made_key_pem: None,
        })
    }

    /// The CA certificate, PEM: register it with AWS IoT, or give it to the broker as `cafile`.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's key, PEM, when [`DeviceCa::generate`] made it.
    pub fn made_key_pem(&self) -> Option<&str> {
        self.made_key_pem.as_deref()
    }

    /// A certificate for a device named `common_name`, with a fresh ECDSA P-256 key.
    pub fn issue(&self, common_name: &str) -> Result<DeviceCertificate, DevicePkiError> {
        let key = KeyPair::generate().map_err(generate_err)?;
        self.sign(common_name, key)
    }

    /// A certificate for a device named `common_name` whose key is given (an unencrypted
    /// PKCS#8 PEM key, such as an RSA-2048 key made elsewhere: ring cannot make RSA keys).
    pub fn issue_for_key(
        &self,
        common_name: &str,
        key_pem: &[u8],
    ) -> Result<DeviceCertificate, DevicePkiError> {
        let key = match PrivateKeyDer::from_pem_slice(key_pem) {
            Ok(key @ PrivateKeyDer::Pkcs8(_)) => key,
            _ => return Err(DevicePkiError::BadDeviceKey),
        };
        let key = KeyPair::try_from(&key).map_err(|_| DevicePkiError::BadDeviceKey)?;
        self.sign(common_name, key)
    }

    /// A certificate for a device named `common_name`, with a fresh key of `kind`.
    pub fn issue_kind(
        &self,
        common_name: &str,
        kind: KeyKind,
    ) -> Result<DeviceCertificate, DevicePkiError> {
        match kind {
            KeyKind::EcdsaP256 => self.issue(common_name),
            KeyKind::Rsa2048 => {
                let key = super::rsa::generate_rsa_2048().map_err(DevicePkiError::RsaKey)?;
                self.issue_for_key(common_name, &key)
            }
        }
    }

    fn sign(&self, common_name: &str, key: KeyPair) -> Result<DeviceCertificate, DevicePkiError> {
        let mut params = CertificateParams::new(Vec::new()).map_err(generate_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(generate_err)?;
        Ok(DeviceCertificate {
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
        })
    }
}

/// Device `index`'s common name, `device-<index>`: with `use_identity_as_username` it is
/// the MQTT user name, so an ACL such as `pattern write devices/%u/#` fences each device.
pub fn device_common_name(index: u64) -> String {
    format!("device-{index}")
}

/// Device `index`'s certificate and key file names, as `--cert certs/device-{i}.pem.crt
/// --key certs/device-{i}.pem.key` templates expect.
pub fn device_file_names(index: u64) -> (String, String) {
    (
        format!("device-{index}.pem.crt"),
        format!("device-{index}.pem.key"),
    )
}

/// Writes `count` devices (0 to count-1) signed by `ca` into `dir`, and the CA's
/// certificate and key when `ca` was made here. Keys are written readable by the owner only.
pub fn write_devices(dir: &Path, count: u64, ca: &DeviceCa) -> Result<(), DevicePkiError> {
    write_devices_of(dir, count, ca, KeyKind::EcdsaP256)
}

/// [`write_devices`] with keys of `kind`.
pub fn write_devices_of(
    dir: &Path,
    count: u64,
    ca: &DeviceCa,
    kind: KeyKind,
) -> Result<(), DevicePkiError> {
    if count == 0 {
        return Err(DevicePkiError::NoDevices);
    }
    fs::create_dir_all(dir).map_err(|e| write_err(dir, &e))?;
    if let Some(key) = ca.made_key_pem() {
        write_file(&dir.join(CA_CERT_FILE), ca.certificate_pem(), false)?;
        write_file(&dir.join(CA_KEY_FILE), key, true)?;
    }
    for index in 0..count {
        let device = ca.issue_kind(&device_common_name(index), kind)?;
        let (cert_name, key_name) = device_file_names(index);
        write_file(&dir.join(cert_name), &device.cert_pem, false)?;
        write_file(&dir.join(key_name), &device.key_pem, true)?;
    }
    Ok(())
}

fn write_err(path: &Path, e: &std::io::Error) -> DevicePkiError {
    DevicePkiError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), DevicePkiError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| write_err(path, &e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| write_err(path, &e))
}

/// PEM text of `der` under `label` (RFC 7468: base64 in lines of 64).
fn pem(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests;
