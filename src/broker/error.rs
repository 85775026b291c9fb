//! Why the built-in broker could not start; each message names the fix.

use std::fmt;
use std::path::PathBuf;

/// A broker start-up failure (a configuration mistake or the machine refusing a resource).
#[derive(Debug)]
pub enum BrokerError {
    /// A PEM file given to the broker could not be read.
    Unreadable {
        /// The option that named it.
        option: &'static str,
        /// The path given.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A generated certificate could not be written to the `--pki-out` directory.
    Unwritable {
        /// The file it tried to write.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A PEM file holds nothing of the expected kind.
    NoPemItem {
        /// The option that named it.
        option: &'static str,
        /// The path given.
        path: PathBuf,
        /// What was expected in it.
        expected: &'static str,
    },
    /// Only one of --tls-cert and --tls-key was given.
    CertWithoutKey,
    /// `--no-tls` together with certificate options.
    TlsOptionsWithNoTls,
    /// `--pki-out` with certificates from files (there is nothing generated to write).
    PkiOutWithFiles,
    /// The in-memory certificates could not be generated.
    Generate(String),
    /// rustls refused the certificates, key or CA.
    Tls(String),
    /// The listening socket could not be bound.
    Bind {
        /// Address asked for.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `--broker-threads 0`.
    ZeroThreads,
    /// `--run-time` is not a duration.
    BadRunTime(String),
    /// A thread or poll could not be created.
    Io(std::io::Error),
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::Unreadable {
                option,
                path,
                source,
            } => write!(
                f,
                "cannot read {} ({source}): check the path given to --{option}",
                path.display()
            ),
            BrokerError::Unwritable { path, source } => write!(
                f,
                "cannot write {} ({source}): give --pki-out a directory you can write to",
                path.display()
            ),
            BrokerError::NoPemItem {
                option,
                path,
                expected,
            } => write!(
                f,
                "{} holds no {expected}: give a PEM file (-----BEGIN ...-----) to --{option}",
                path.display()
            ),
            BrokerError::CertWithoutKey => {
                f.write_str("give both --tls-cert and --tls-key (or neither, for generated ones)")
            }
            BrokerError::TlsOptionsWithNoTls => f.write_str(
                "--no-tls cannot be combined with --tls-cert, --tls-key, --cafile or --pki-out: drop one",
            ),
            BrokerError::PkiOutWithFiles => f.write_str(
                "--pki-out writes generated certificates: drop it, or drop --tls-cert/--tls-key",
            ),
            BrokerError::Generate(reason) => write!(
                f,
                "cannot generate the broker's certificates ({reason}); give --tls-cert, --tls-key and --cafile"
            ),
            BrokerError::Tls(reason) => write!(
                f,
                "the broker's TLS files were refused ({reason}): check that --tls-key belongs to --tls-cert and --cafile holds a CA certificate"
            ),
            BrokerError::Bind { addr, source } => write!(
                f,
                "cannot listen on {addr} ({source}): pick another --port, or 0 for a free one"
            ),
            BrokerError::ZeroThreads => {
                f.write_str("--threads (or --broker-threads) 0: give 1 or more broker threads")
            }
            BrokerError::BadRunTime(value) => write!(
                f,
                "--run-time {value:?} is not a duration: use e.g. 30s, 10m, 1h30m"
            ),
            BrokerError::Io(e) => write!(f, "cannot start the broker's threads: {e}"),
        }
    }
}

impl std::error::Error for BrokerError {}
