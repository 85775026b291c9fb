//! RSA-2048 device keys, made by the `openssl` command: ring (the crate's crypto) signs with
//! RSA but cannot generate RSA keys.

use std::process::Command;

/// A fresh RSA-2048 private key, unencrypted PKCS#8 PEM, from `openssl genpkey`; the error
/// says why openssl could not make it.
pub fn generate_rsa_2048() -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .map_err(|e| format!("cannot run openssl ({e})"))?;
    if !out.status.success() || out.stdout.is_empty() {
        let reason = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "openssl genpkey failed ({}): {}",
            out.status,
            reason.lines().next().unwrap_or("")
        ));
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
