//! The byte stream a device talks MQTT over: a [`Transport`] (TCP, optionally TLS) as it is,
//! or one carrying MQTT inside WebSocket frames ([`WsClient`]), so that the device above only
//! ever sees plaintext MQTT bytes. The WebSocket upgrade is part of connecting: MQTT written
//! before the server's 101 is held, and framed once it arrives.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::timestamp::WakeClock;
use super::transport::{Transport, TransportError};
use super::websocket::{UpgradeRequest, WsClient, WsError, WsStatus};

/// What a WebSocket connection asks for in its upgrade.
#[derive(Debug, Clone, Copy)]
pub struct WsOpen<'a> {
    /// The `Host` header (host, and `:port` when not the scheme's default).
    pub host: &'a str,
    /// The request target: path and query, percent-encoded (a presigned URL's tail).
    pub path_and_query: &'a str,
    /// Extra headers (an AWS IoT custom authorizer's).
    pub headers: &'a [(&'a str, &'a str)],
    /// The largest frame accepted from the server.
    pub max_frame: u64,
}

/// Why a link stopped working.
#[derive(Debug)]
pub enum LinkError {
    /// The socket or TLS under it failed, or the peer closed.
    Transport(TransportError),
    /// The WebSocket upgrade was refused or malformed, or a frame broke RFC 6455.
    WebSocket(WsError),
    /// The server closed the connection before answering the WebSocket upgrade.
    ClosedInUpgrade,
    /// The server closed the WebSocket with a close frame.
    WebSocketClosed {
        /// The status code the server gave, if any.
        code: Option<u16>,
    },
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Transport(e) => e.fmt(f),
            LinkError::WebSocket(WsError::Handshake(e)) => write!(f, "WebSocket upgrade: {e}"),
            LinkError::WebSocket(e) => write!(f, "WebSocket: {e}"),
            LinkError::ClosedInUpgrade => f.write_str(
                "WebSocket upgrade: connection closed by the server before it answered \
                 (is this port a WebSocket listener? check the path and --transport)",
            ),
            LinkError::WebSocketClosed { code: Some(code) } => {
                write!(f, "the server closed the WebSocket (code {code})")
            }
            LinkError::WebSocketClosed { code: None } => {
                f.write_str("the server closed the WebSocket")
            }
        }
    }
}

impl std::error::Error for LinkError {}

impl From<TransportError> for LinkError {
    fn from(e: TransportError) -> Self {
        LinkError::Transport(e)
    }
}

/// Why a read over WebSocket stopped before the socket was drained.
enum Stop<E> {
    /// The device refused its input.
    Device(E),
    /// The server broke the upgrade or RFC 6455.
    WebSocket(WsError),
    /// The server sent a close frame.
    Closed {
        /// Its status code.
        code: Option<u16>,
    },
}

/// A WebSocket layer over a transport.
#[derive(Debug)]
struct WsLayer {
    client: WsClient,
    /// MQTT queued before the upgrade finished; framed when it does.
    held: Vec<u8>,
    /// xorshift64 state for the frames' masking keys.
    mask_state: u64,
}

impl WsLayer {
    /// A fresh masking key. RFC 6455 wants keys a third party cannot predict: the state is
    /// seeded from the OS random source per connection, and a step costs a few instructions.
    fn next_mask(state: &mut u64) -> [u8; 4] {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        ((x >> 16) as u32).to_ne_bytes()
    }
}

/// A device's byte stream: plaintext MQTT in and out, whatever carries it.
#[derive(Debug)]
pub struct Link {
    transport: Transport,
    ws: Option<Box<WsLayer>>,
}

impl Link {
    /// Starts a non-blocking connect from `source` (any when `None`) for simulated device
    /// `device` (see [`Transport::connect_from`]); with `ws`, the upgrade request is queued
    /// at once and goes out when the socket (and TLS) is ready.
    pub fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        device: Option<u64>,
        tls: Option<(&Arc<ClientConfig>, &ServerName<'static>)>,
        ws: Option<&WsOpen<'_>>,
    ) -> Result<Link, LinkError> {
        let mut transport = Transport::connect_from(addr, source, device, tls)?;
        let ws = match ws {
            Some(open) => {
                let mut upgrade = Vec::new();
                let request = UpgradeRequest {
                    host: open.host,
                    path_and_query: open.path_and_query,
                    key: rand::random(),
                    extra_headers: open.headers,
                };
                let client = WsClient::start(&request, &mut upgrade, open.max_frame)
                    .map_err(LinkError::WebSocket)?;
                transport.queue(&upgrade)?;
                Some(Box::new(WsLayer {
                    client,
                    held: Vec::new(),
                    // Never zero: xorshift would stay at zero.
                    mask_state: rand::random::<u64>() | 1,
                }))
            }
            None => None,
        };
        Ok(Link { transport, ws })
    }

    /// The socket, for registering with mio.
    pub fn socket(&mut self) -> &mut TcpStream {
        self.transport.socket()
    }

    /// See [`Transport::check_connected`].
    #[inline]
    pub fn check_connected(&mut self) -> Result<bool, LinkError> {
        Ok(self.transport.check_connected()?)
    }

    /// Whether a TLS handshake is still under way (false without TLS).
    pub fn tls_handshaking(&self) -> bool {
        self.transport.tls_handshaking()
    }

    /// Whether the WebSocket upgrade is still waiting for the server's answer.
    pub fn upgrading(&self) -> bool {
        self.ws
            .as_ref()
            .is_some_and(|ws| ws.client.status() == WsStatus::Upgrading)
    }

    /// See [`Transport::resumed`].
    pub fn resumed(&self) -> Option<bool> {
        self.transport.resumed()
    }

    /// Queues MQTT bytes to send (over WebSocket framed in `scratch`, the loop's, empty;
    /// held until the upgrade is done); call [`Link::flush`] to push them to the socket.
    #[inline]
    pub fn queue(&mut self, mqtt: &[u8], scratch: &mut Vec<u8>) -> Result<(), LinkError> {
        let Some(ws) = self.ws.as_deref_mut() else {
            return Ok(self.transport.queue(mqtt)?);
        };
        if ws.client.status() == WsStatus::Upgrading {
            ws.held.extend_from_slice(mqtt);
            return Ok(());
        }
        let mask = WsLayer::next_mask(&mut ws.mask_state);
        ws.client.encode_mqtt(mqtt, scratch, mask);
        let queued = self.transport.queue(scratch);
        scratch.clear();
        Ok(queued?)
    }

    /// Writes as much as the socket takes; `Ok(true)` when nothing is left waiting.
    #[inline]
    pub fn flush(&mut self) -> Result<bool, LinkError> {
        Ok(self.transport.flush()?)
    }

    /// Whether bytes are waiting for the socket to become writable.
    #[inline]
    pub fn has_backlog(&self) -> bool {
        self.transport.has_backlog()
    }

    /// Reads everything the socket has, handing each chunk of MQTT bytes to `on_data` with
    /// its arrival instant (see [`Transport::read`]). Over WebSocket, `mqtt_scratch` (the
    /// loop's, empty) holds the chunk unframed; pings are answered and the held MQTT goes
    /// out once the upgrade is accepted.
    #[inline]
    pub fn read<E>(
        &mut self,
        scratch: &mut [u8],
        mqtt_scratch: &mut Vec<u8>,
        clock: &WakeClock,
        mut on_data: impl FnMut(&[u8], Instant) -> Result<(), E>,
    ) -> Result<Result<(), E>, LinkError> {
        let Some(ws) = self.ws.as_deref_mut() else {
            return Ok(self.transport.read(scratch, clock, on_data)?);
        };
        let WsLayer {
            client,
            held,
            mask_state,
        } = ws;
        // Pongs, the close echo and the held MQTT's frame: rare, so not kept per connection
        // (an empty Vec does not allocate).
        let mut frames = Vec::new();
        let read = self.transport.read(scratch, clock, |data, at| {
            let mut mask = || WsLayer::next_mask(mask_state);
            let upgrading = client.status() == WsStatus::Upgrading;
            let status = client
                .handle_input(data, mqtt_scratch, &mut frames, &mut mask)
                .map_err(Stop::WebSocket)?;
            if upgrading && status != WsStatus::Upgrading && !held.is_empty() {
                let mask = WsLayer::next_mask(mask_state);
                client.encode_mqtt(held, &mut frames, mask);
                *held = Vec::new();
            }
            let handed = if mqtt_scratch.is_empty() {
                Ok(())
            } else {
                on_data(mqtt_scratch, at).map_err(Stop::Device)
            };
            mqtt_scratch.clear();
            handed?;
            match status {
                WsStatus::Closed { code } => Err(Stop::Closed { code }),
                WsStatus::Upgrading | WsStatus::Open => Ok(()),
            }
        });
        // Pongs, the close echo and the held MQTT go out with the next flush.
        if !frames.is_empty() {
            self.transport.queue(&frames)?;
        }
        match read {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(Stop::Device(e))) => Ok(Err(e)),
            Ok(Err(Stop::WebSocket(e))) => Err(LinkError::WebSocket(e)),
            Ok(Err(Stop::Closed { code })) => {
                let _ = self.transport.flush();
                Err(LinkError::WebSocketClosed { code })
            }
            Err(TransportError::Closed) if client.status() == WsStatus::Upgrading => {
                Err(LinkError::ClosedInUpgrade)
            }
            Err(e) => Err(LinkError::Transport(e)),
        }
    }

    /// Closes politely: a WebSocket close frame (1000) when upgraded, TLS close_notify when
    /// TLS, then the socket is shut down.
    pub fn close(&mut self) {
        if let Some(ws) = self.ws.as_deref_mut()
            && ws.client.status() == WsStatus::Open
        {
            let mask = WsLayer::next_mask(&mut ws.mask_state);
            let mut close = Vec::new();
            ws.client.encode_close(&mut close, mask);
            let _ = self.transport.queue(&close);
        }
        self.transport.close();
    }
}
