//! RSA-2048 device keys, made by the `openssl` command: ring (the crate's crypto) signs with
//! RSA but cannot generate RSA keys.

use std::fmt;
use std::io;
use std::process::Command;

/// Why `openssl` made no RSA key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    /// The `openssl` command could not be started (not installed, not on PATH).
    CannotRun(io::ErrorKind),
    /// `openssl genpkey` ran but failed or printed nothing.
    GenpkeyFailed {
        /// Its exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// The first line it printed on stderr.
        stderr: String,
    },
}

impl fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsaKeyError::CannotRun(kind) => write!(f, "cannot run openssl ({kind})"),
            RsaKeyError::GenpkeyFailed {
                code: Some(code),
                stderr,
            } => write!(f, "openssl genpkey failed (exit code {code}): {stderr}"),
            RsaKeyError::GenpkeyFailed { code: None, stderr } => {
                write!(f, "openssl genpkey was killed: {stderr}")
            }
        }
    }
}

impl std::error::Error for RsaKeyError {}

/// A fresh RSA-2048 private key, unencrypted PKCS#8 PEM, from `openssl genpkey`.
pub fn generate_rsa_2048() -> Result<Vec<u8>, RsaKeyError> {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .map_err(|e| RsaKeyError::CannotRun(e.kind()))?;
    if !out.status.success() || out.stdout.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(RsaKeyError::GenpkeyFailed {
            code: out.status.code(),
            stderr: stderr.lines().next().unwrap_or("").to_owned(),
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_makes_a_pkcs8_rsa_key() {
        let pem = generate_rsa_2048().expect("openssl is installed where the tests run");
        let text = String::from_utf8(pem).expect("PEM is text");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        // 2048-bit RSA in PKCS#8 is about 1.2 KB of DER, 1.7 KB of PEM.
        assert!((1500..2000).contains(&text.len()), "{}", text.len());
    }
}
