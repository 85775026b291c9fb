//! The byte stream under a session: TCP (mio, non-blocking) with optional rustls on top.

pub mod timestamp;
pub mod tls;
pub mod transport;

pub use timestamp::WakeClock;
pub use tls::{TlsConfigError, TlsFiles, client_config};
pub use transport::{Transport, TransportError};
