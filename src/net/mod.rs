//! The byte stream under a session: TCP (mio, non-blocking) with optional rustls on top.

pub mod bind;
pub mod device_cert;
pub mod flush;
pub mod link;
pub mod pem;
pub mod resume;
pub mod timestamp;
pub mod tls;
mod tls_client;
pub mod tls_hint;
pub mod transport;
pub mod websocket;

pub use link::{Link, LinkError, WsOpen};
pub use timestamp::WakeClock;
pub use tls::{TlsConfigError, TlsFiles, client_config, client_config_from_memory};
pub use transport::{Transport, TransportError};
