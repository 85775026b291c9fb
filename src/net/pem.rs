//! PEM files to rustls types: the one loader for the client's and the built-in broker's
//! certificates and private keys (through rustls-pki-types' `PemObject`).

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What [`load_private_key`] accepts, as error messages name it.
pub const PRIVATE_KEY_KINDS: &str = "private key (PKCS#1, PKCS#8 or SEC1)";

/// Why a PEM file gave nothing usable; the caller adds which option named the file.
#[derive(Debug)]
pub enum PemError {
    /// The file could not be read at all.
    Unreadable {
        /// The path given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file was read but holds no PEM item of the kind asked for.
    NoItem {
        /// The path given.
        path: PathBuf,
        /// What was expected in it ("certificate", [`PRIVATE_KEY_KINDS`]).
        expected: &'static str,
    },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::Unreadable { path, source } => {
                write!(f, "cannot read {} ({source})", path.display())
            }
            PemError::NoItem { path, expected } => write!(
                f,
                "{} holds no {expected}: give a PEM file (-----BEGIN ...-----)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PemError {}

fn read(path: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|source| PemError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file, in order (a chain or a CA bundle); at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(PemError::NoItem {
            path: path.to_path_buf(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| PemError::NoItem {
        path: path.to_path_buf(),
        expected: PRIVATE_KEY_KINDS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_say_which_and_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            load_certs(&missing),
            Err(PemError::Unreadable { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a pem file\n").expect("write");
        assert!(matches!(
            load_certs(&empty),
            Err(PemError::NoItem {
                expected: "certificate",
                ..
            })
        ));
        assert!(matches!(
            load_private_key(&empty),
            Err(PemError::NoItem {
                expected: PRIVATE_KEY_KINDS,
                ..
            })
        ));
    }
}
