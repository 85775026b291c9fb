//! What the user should fix for each TLS failure: rustls's reason mapped to one hint, in one place.

use std::fmt;

use rustls::{AlertDescription, CertificateError, Error};

/// A TLS failure as the error table shows it: rustls's reason, then the hint in brackets.
///
/// Reasons that embed the verification time are shown without it, so every attempt against the
/// same expired certificate is one row of the error table, not one row per second.
pub struct TlsReason<'a>(pub &'a Error);

impl fmt::Display for TlsReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. }) => {
                write!(
                    f,
                    "invalid peer certificate: expired (not valid after {} UNIX)",
                    not_after.as_secs()
                )?
            }
            Error::InvalidCertificate(CertificateError::NotValidYetContext {
                not_before, ..
            }) => write!(
                f,
                "invalid peer certificate: not valid yet (not valid before {} UNIX)",
                not_before.as_secs()
            )?,
            e => write!(f, "{e}")?,
        }
        match tls_hint(self.0) {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

/// The fix for a TLS failure, when there is a clear one.
pub fn tls_hint(error: &Error) -> Option<&'static str> {
    match error {
        Error::InvalidCertificate(e) => certificate_hint(e),
        Error::AlertReceived(alert) => alert_hint(*alert),
        Error::NoCertificatesPresented => Some("the broker sent no certificate"),
        Error::PeerIncompatible(_) => {
            Some("no TLS version or cipher suite in common with the broker")
        }
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            Some("is this port TLS? pass --no-tls for a plain-TCP broker")
        }
        _ => None,
    }
}

/// The fix for a certificate the broker presented and mqload refused.
fn certificate_hint(error: &CertificateError) -> Option<&'static str> {
    match error {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            Some("the broker's certificate is not signed by --cafile: pass the CA that signed it")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Some(
                "the broker's certificate is not for this host name: connect with the name in \
                 its certificate (--host, or --server-name when connecting by address)",
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            Some("the broker's certificate has expired (or this host's clock is wrong)")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Some("the broker's certificate is not valid yet (or this host's clock is wrong)")
        }
        CertificateError::Revoked => Some("the broker's certificate is revoked"),
        _ => None,
    }
}

/// The fix for an alert the broker sent: almost always about our client certificate.
fn alert_hint(alert: AlertDescription) -> Option<&'static str> {
    match alert {
        AlertDescription::UnknownCA
        | AlertDescription::BadCertificate
        | AlertDescription::DecryptError => Some(
            "the broker refused the client certificate: pass --cert/--key signed by a CA it trusts",
        ),
        AlertDescription::CertificateRequired => {
            Some("the broker requires a client certificate: pass --cert and --key")
        }
        AlertDescription::CertificateExpired => {
            Some("the broker says the client certificate (--cert) has expired")
        }
        AlertDescription::CertificateRevoked => {
            Some("the broker says the client certificate (--cert) is revoked")
        }
        AlertDescription::AccessDenied => {
            Some("the broker denied access: check the client certificate's registration")
        }
        AlertDescription::HandshakeFailure | AlertDescription::ProtocolVersion => Some(
            "no TLS version or cipher suite in common with the broker (or it wanted a client certificate)",
        ),
        AlertDescription::NoApplicationProtocol => {
            Some("the broker refused the ALPN protocol: check --alpn")
        }
        AlertDescription::UnrecognisedName => {
            Some("the broker does not know this server name: check --host or --server-name")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_named_failure_has_a_hint_naming_the_option_to_fix() {
        let cases = [
            (
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "--cafile",
            ),
            (
                Error::InvalidCertificate(CertificateError::NotValidForName),
                "--server-name",
            ),
            (
                Error::InvalidCertificate(CertificateError::Expired),
                "expired",
            ),
            (
                Error::AlertReceived(AlertDescription::UnknownCA),
                "--cert/--key",
            ),
            (
                Error::AlertReceived(AlertDescription::CertificateRequired),
                "--cert and --key",
            ),
        ];
        for (error, needle) in cases {
            let hint = tls_hint(&error).unwrap_or_else(|| panic!("no hint for {error}"));
            assert!(hint.contains(needle), "{error}: {hint}");
        }
        assert_eq!(tls_hint(&Error::EncryptError), None);
        assert_eq!(
            TlsReason(&Error::EncryptError).to_string(),
            "cannot encrypt message"
        );
        let expired = Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(20)),
            not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                std::time::Duration::from_secs(10),
            ),
        });
        assert_eq!(
            TlsReason(&expired).to_string(),
            "invalid peer certificate: expired (not valid after 10 UNIX) (the broker's \
             certificate has expired (or this host's clock is wrong))"
        );
    }
}
