//! One non-blocking socket, plain or TLS, driven by mio readiness: plaintext in, plaintext out.

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::device_cert::{DeviceCertError, DeviceCertResolver};
use super::flush;
use super::resume::ClientScope;
use super::timestamp::{self, StampedReader, WakeClock};
use super::tls_client::TlsClient;

/// Why a transport stopped working.
#[derive(Debug)]
pub enum TransportError {
    /// The socket failed (refused, reset, ...).
    Io(io::Error),
    /// TLS failed (bad certificate, alert from the peer, ...).
    Tls(rustls::Error),
    /// The peer closed the connection.
    Closed,
    /// The peer closed the connection before the TLS handshake finished.
    ClosedInHandshake,
    /// This device's certificate (from `--cert`/`--key` templates) could not be presented,
    /// so the broker refused the handshake.
    DeviceCert(DeviceCertError),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Io(e) => write!(f, "{e}"),
            TransportError::Tls(e) => write!(f, "TLS: {}", super::tls_hint::TlsReason(e)),
            TransportError::Closed => f.write_str("connection closed by the broker"),
            TransportError::ClosedInHandshake => f.write_str(
                "connection closed by the broker during the TLS handshake (is this port TLS? \
                 does the broker require a client certificate: --cert/--key?)",
            ),
            TransportError::DeviceCert(e) => f.write_str(&e.summary()),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        TransportError::Io(e)
    }
}

/// A TCP connection with optional TLS; buffers what the socket cannot take yet.
pub struct Transport {
    tcp: TcpStream,
    tls: Option<Box<TlsClient>>,
    /// Plain TCP only: bytes the socket has not accepted yet.
    unsent: Vec<u8>,
    /// The TCP connect has completed (checked once, then remembered).
    established: bool,
    /// The simulated device this connection belongs to (keys its TLS tickets).
    device: Option<u64>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.tls.is_some())
            .field("unsent", &self.unsent.len())
            .finish()
    }
}

impl Transport {
    /// Starts a non-blocking connect; TLS (when given) starts once the socket is writable.
    pub fn connect(
        addr: SocketAddr,
        tls: Option<(&Arc<ClientConfig>, &ServerName<'static>)>,
    ) -> Result<Transport, TransportError> {
        Transport::connect_from(addr, None, None, tls)
    }

    /// [`Transport::connect`] from a chosen local address (`--bind`, any when `None`), for
    /// simulated device `device`, whose own TLS tickets resume its sessions (see
    /// [`super::resume`]; `None` shares a small pool).
    pub fn connect_from(
        addr: SocketAddr,
        source: Option<std::net::IpAddr>,
        device: Option<u64>,
        tls: Option<(&Arc<ClientConfig>, &ServerName<'static>)>,
    ) -> Result<Transport, TransportError> {
        let tcp = match source {
            Some(source) => super::bind::connect_from(addr, source)?,
            None => TcpStream::connect(addr)?,
        };
        let _ = tcp.set_nodelay(true);
        // Without kernel stamps, arrivals are stamped with the wakeup's clock instead.
        let _ = timestamp::enable(tcp.as_raw_fd());
        let tls = match tls {
            Some((config, name)) => {
                let _device = ClientScope::enter(device);
                Some(Box::new(TlsClient::new(config, name)?))
            }
            None => None,
        };
        Ok(Transport {
            tcp,
            tls,
            unsent: Vec::new(),
            established: false,
            device,
        })
    }

    /// Whether the TLS handshake resumed a session (`Some(true)`), was a full one
    /// (`Some(false)`), or is not known (no TLS, or the handshake has not finished).
    pub fn resumed(&self) -> Option<bool> {
        let kind = self.tls.as_ref()?.handshake_kind()?;
        Some(kind == rustls::HandshakeKind::Resumed)
    }

    /// Whether a TLS handshake is still under way (false without TLS).
    pub fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// The socket, for registering with mio.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// The connect's outcome once the socket reported writable: `Ok(true)` connected,
    /// `Ok(false)` still in progress.
    pub fn check_connected(&mut self) -> Result<bool, TransportError> {
        if self.established {
            return Ok(true);
        }
        if let Some(err) = self.tcp.take_error()? {
            return Err(TransportError::Io(err));
        }
        match self.tcp.peer_addr() {
            Ok(_) => {
                self.established = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(TransportError::Io(e)),
        }
    }

    /// Queues plaintext to send; call [`Transport::flush`] to push it to the socket.
    pub fn queue(&mut self, plain: &[u8]) -> Result<(), TransportError> {
        match &mut self.tls {
            Some(tls) => tls.queue(plain)?,
            None => self.unsent.extend_from_slice(plain),
        }
        Ok(())
    }

    /// Writes as much as the socket takes; `Ok(true)` when nothing is left waiting.
    pub fn flush(&mut self) -> Result<bool, TransportError> {
        let flushed = match &mut self.tls {
            Some(tls) => tls.flush(&mut self.tcp)?,
            None => flush::flush_plain(&mut self.tcp, &mut self.unsent)?,
        };
        Ok(flushed)
    }

    /// Whether bytes are waiting for the socket to become writable.
    pub fn has_backlog(&self) -> bool {
        match &self.tls {
            Some(tls) => tls.has_backlog(),
            None => !self.unsent.is_empty(),
        }
    }

    /// Reads everything the socket has, handing each plaintext chunk to `on_data` with the
    /// instant the kernel received it (or the wakeup's instant when it gave no stamp).
    /// `Ok(Ok(()))` means the socket is drained for now: wait for its next readable edge.
    /// A read shorter than the buffer already proves that (a stream socket returns all it
    /// holds, up to the buffer), so no further `recvmsg` is spent to hear EAGAIN; bytes that
    /// arrive later raise a new edge under mio's edge-triggered epoll.
    /// Returns `Err(Closed)` once the peer has closed and all its data was handed over.
    pub fn read<E>(
        &mut self,
        scratch: &mut [u8],
        clock: &WakeClock,
        on_data: impl FnMut(&[u8], Instant) -> Result<(), E>,
    ) -> Result<Result<(), E>, TransportError> {
        let device = self.device;
        self.read_socket(scratch, clock, on_data).map_err(|e| {
            // A handshake refused because this device's certificate could not be loaded
            // says so, instead of the broker's bare refusal.
            match device.and_then(DeviceCertResolver::take_error_for) {
                Some(cert) => TransportError::DeviceCert(cert),
                None => e,
            }
        })
    }

    /// [`Transport::read`], before a failure is given its device-certificate cause.
    #[inline]
    fn read_socket<E>(
        &mut self,
        scratch: &mut [u8],
        clock: &WakeClock,
        mut on_data: impl FnMut(&[u8], Instant) -> Result<(), E>,
    ) -> Result<Result<(), E>, TransportError> {
        // New session tickets arrive with the data: file them under this device.
        let _device = ClientScope::enter(self.device);
        let mut socket = StampedReader::new(self.tcp.as_raw_fd());
        let arrival = |socket: &StampedReader| {
            socket
                .stamp_ns
                .map_or(clock.instant, |ns| clock.instant_of(ns))
        };
        match &mut self.tls {
            Some(tls) => {
                let read = tls.read(
                    &mut socket,
                    scratch,
                    |socket| (arrival(socket), socket.drained),
                    on_data,
                );
                if matches!(read, Err(TransportError::Tls(_))) {
                    // Let the alert reach the peer before the caller drops us.
                    let _ = tls.flush(&mut self.tcp);
                }
                read
            }
            None => loop {
                match socket.read(scratch) {
                    Ok(0) => return Err(TransportError::Closed),
                    Ok(n) => {
                        if let Err(e) = on_data(&scratch[..n], arrival(&socket)) {
                            return Ok(Err(e));
                        }
                        if socket.drained {
                            return Ok(Ok(()));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Ok(())),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(TransportError::Io(e)),
                }
            },
        }
    }

    /// Sends TLS close_notify (when TLS) and shuts the socket down.
    pub fn close(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.queue_close_notify();
        }
        let _ = self.flush();
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }
}
