//! The client end of TLS on a non-blocking socket through rustls' unbuffered API: received
//! bytes are read into the caller's (per-thread) scratch buffer and processed there, so an
//! idle connection keeps no receive buffer, only the tail of a record not fully arrived yet.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, WriteTraffic,
};
use rustls::{ClientConfig, HandshakeKind};
use rustls_pki_types::ServerName;

use super::TransportError;
use super::flush;

/// An encrypted record adds at most this much to its plaintext (header, nonce, tag, type).
const RECORD_OVERHEAD: usize = 64;
/// Largest plaintext of one TLS record.
const RECORD_PLAINTEXT: usize = 16 * 1024;
/// A send buffer emptied by the socket is released when it grew beyond this (after the
/// handshake's certificate flight, say); a smaller one is kept so messages reuse it.
const KEEP_SEND_CAPACITY: usize = 1024;

/// Where processing the received bytes stopped.
enum Step<E> {
    /// Everything complete was handled; more bytes are needed.
    Waiting,
    /// The peer sent close_notify.
    PeerClosed,
    /// The plaintext consumer refused data; the rest stays with rustls.
    Stopped(E),
}

/// One TLS client connection: rustls' state plus the few bytes that must outlive a read.
pub struct TlsClient {
    conn: UnbufferedClientConnection,
    /// Received bytes rustls has not consumed: a record (or a handshake message spread over
    /// records) not fully arrived. Usually empty, and then without capacity.
    partial: Vec<u8>,
    /// Plaintext queued before the handshake allowed application data.
    early: Vec<u8>,
    /// Encrypted bytes the socket has not taken yet.
    unsent: Vec<u8>,
}

impl TlsClient {
    /// Starts a handshake with `name`; the ClientHello waits in the send buffer.
    pub fn new(
        config: &Arc<ClientConfig>,
        name: &ServerName<'static>,
    ) -> Result<TlsClient, TransportError> {
        let conn = UnbufferedClientConnection::new(Arc::clone(config), name.clone())
            .map_err(TransportError::Tls)?;
        let mut client = TlsClient {
            conn,
            partial: Vec::new(),
            early: Vec::new(),
            unsent: Vec::new(),
        };
        client.with_traffic(|_, _| Ok(()))?;
        Ok(client)
    }

    /// Whether the handshake resumed a session; `None` until it finished.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.conn.handshake_kind()
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn has_backlog(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Encrypts `plain` for sending, or keeps it until the handshake allows application data.
    pub fn queue(&mut self, plain: &[u8]) -> Result<(), TransportError> {
        let sent = self.with_traffic(|traffic, out| encrypt_into(traffic, plain, out))?;
        if !sent {
            self.early.extend_from_slice(plain);
        }
        Ok(())
    }

    /// Queues close_notify when the connection may still send it.
    pub fn queue_close_notify(&mut self) {
        let _ = self.with_traffic(|traffic, out| {
            append(out, RECORD_OVERHEAD, |buf| {
                sized(traffic.queue_close_notify(buf))
            })
            .map_err(encrypt_failed)
        });
    }

    /// Writes the send buffer until the socket would block; `Ok(true)` when it is empty.
    pub fn flush(&mut self, socket: &mut impl Write) -> Result<bool, TransportError> {
        let drained = flush::flush_plain(socket, &mut self.unsent)?;
        if drained && self.unsent.capacity() > KEEP_SEND_CAPACITY {
            self.unsent = Vec::new();
        }
        Ok(drained)
    }

    /// Reads `socket` into `scratch` (after the partial record kept from before) until a short
    /// read shows it drained, handing plaintext to `on_data` stamped by `arrival`.
    /// See [`super::Transport::read`] for the outcomes.
    pub fn read<R: Read, E>(
        &mut self,
        socket: &mut R,
        scratch: &mut [u8],
        mut arrival: impl FnMut(&R) -> (Instant, bool),
        mut on_data: impl FnMut(&[u8], Instant) -> Result<(), E>,
    ) -> Result<Result<(), E>, TransportError> {
        loop {
            let held = self.partial.len();
            if held >= scratch.len() {
                return Err(TransportError::Io(io::Error::other(
                    "a TLS message does not fit the read buffer",
                )));
            }
            scratch[..held].copy_from_slice(&self.partial);
            let n = match socket.read(&mut scratch[held..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TransportError::Io(e)),
            };
            let (at, drained) = arrival(socket);
            let filled = held + n;
            let (used, step) = self.process(&mut scratch[..filled], at, &mut on_data);
            self.keep_partial(&scratch[used..filled]);
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    // Let the alert reach the peer before the caller drops us.
                    let _ = self.with_traffic(|_, _| Ok(()));
                    return Err(e);
                }
            };
            match step {
                Step::Stopped(e) => return Ok(Err(e)),
                Step::PeerClosed => return Err(TransportError::Closed),
                Step::Waiting if n == 0 && self.conn.is_handshaking() => {
                    return Err(TransportError::ClosedInHandshake);
                }
                Step::Waiting if n == 0 => return Err(TransportError::Closed),
                Step::Waiting if drained => return Ok(Ok(())),
                Step::Waiting => {}
            }
        }
    }

    /// Runs rustls over `incoming` until it needs more bytes: plaintext goes to `on_data`,
    /// handshake records and alerts to the send buffer. Returns how many leading bytes of
    /// `incoming` rustls is done with.
    fn process<E>(
        &mut self,
        incoming: &mut [u8],
        at: Instant,
        on_data: &mut impl FnMut(&[u8], Instant) -> Result<(), E>,
    ) -> (usize, Result<Step<E>, TransportError>) {
        let mut used = 0;
        loop {
            let status = self.conn.process_tls_records(&mut incoming[used..]);
            let discard = status.discard;
            let outcome = match status.state {
                Err(e) => Err(TransportError::Tls(e)),
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    let mut outcome = Ok(None);
                    while let Some(record) = records.next_record() {
                        match record {
                            Ok(record) => {
                                if let Err(e) = on_data(record.payload, at) {
                                    outcome = Ok(Some(Step::Stopped(e)));
                                    break;
                                }
                            }
                            Err(e) => {
                                outcome = Err(TransportError::Tls(e));
                                break;
                            }
                        }
                    }
                    outcome
                }
                Ok(ConnectionState::EncodeTlsData(mut record)) => {
                    encode_into(&mut record, &mut self.unsent).map(|()| None)
                }
                Ok(ConnectionState::TransmitTlsData(sent)) => {
                    // "Transmitted" here means handed to the send buffer, flushed next.
                    sent.done();
                    Ok(None)
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let early = std::mem::take(&mut self.early);
                    encrypt_into(&mut traffic, &early, &mut self.unsent)
                        .map(|()| Some(Step::Waiting))
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    Ok(Some(Step::PeerClosed))
                }
                Ok(_) => Ok(Some(Step::Waiting)),
            };
            used += discard;
            match outcome {
                Ok(None) => {}
                Ok(Some(step)) => return (used, Ok(step)),
                Err(e) => return (used, Err(e)),
            }
        }
    }

    /// Keeps the bytes rustls has not consumed for the next read; none keeps no buffer.
    fn keep_partial(&mut self, rest: &[u8]) {
        if rest.is_empty() {
            self.partial = Vec::new();
        } else {
            self.partial.clear();
            self.partial.extend_from_slice(rest);
        }
    }

    /// Moves what rustls has to send (handshake records, alerts) to the send buffer and,
    /// once application data may flow, the early plaintext and then whatever `write` adds.
    /// `Ok(false)`: application data may not flow yet (handshaking, or plaintext unread).
    fn with_traffic(
        &mut self,
        write: impl FnOnce(
            &mut WriteTraffic<'_, ClientConnectionData>,
            &mut Vec<u8>,
        ) -> Result<(), TransportError>,
    ) -> Result<bool, TransportError> {
        let mut write = Some(write);
        loop {
            // The kept partial record goes in again: rustls' handshake joiner points into it.
            let status = self.conn.process_tls_records(&mut self.partial);
            let discard = status.discard;
            let outcome = match status.state.map_err(TransportError::Tls)? {
                ConnectionState::EncodeTlsData(mut record) => {
                    encode_into(&mut record, &mut self.unsent).map(|()| None)
                }
                ConnectionState::TransmitTlsData(sent) => {
                    sent.done();
                    Ok(None)
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    let early = std::mem::take(&mut self.early);
                    encrypt_into(&mut traffic, &early, &mut self.unsent).and_then(|()| {
                        match write.take() {
                            Some(write) => write(&mut traffic, &mut self.unsent),
                            None => Ok(()),
                        }
                        .map(|()| Some(true))
                    })
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    Err(TransportError::Closed)
                }
                _ => Ok(Some(false)),
            };
            self.partial.drain(..discard.min(self.partial.len()));
            if let Some(done) = outcome? {
                return Ok(done);
            }
        }
    }
}

/// Encodes one handshake record (or alert) at the end of `out`.
fn encode_into(
    record: &mut EncodeTlsData<'_, ClientConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), TransportError> {
    append(out, 2 * 1024, |buf| match record.encode(buf) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(size)) => Err(size),
        // Encoded already: nothing more to add.
        Err(_) => Ok(0),
    })
    .map_err(encrypt_failed)
}

/// Encrypts `plain` at the end of `out` (nothing for empty plaintext).
fn encrypt_into(
    traffic: &mut WriteTraffic<'_, ClientConnectionData>,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), TransportError> {
    if plain.is_empty() {
        return Ok(());
    }
    let room = plain.len() + RECORD_OVERHEAD * (plain.len() / RECORD_PLAINTEXT + 1);
    append(out, room, |buf| sized(traffic.encrypt(plain, buf))).map_err(encrypt_failed)
}

/// An encryption's outcome as [`append`] takes it; exhausted keys ask for no more room, so
/// `append` gives up on them.
fn sized(written: Result<usize, EncryptError>) -> Result<usize, InsufficientSizeError> {
    match written {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(size)) => Err(size),
        Err(EncryptError::EncryptExhausted) => Err(InsufficientSizeError { required_size: 0 }),
    }
}

/// Runs `write` on `room` new bytes at the end of `out`, growing the room once when it asks
/// for more, and keeps what it wrote.
fn append(
    out: &mut Vec<u8>,
    room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, InsufficientSizeError>,
) -> Result<(), InsufficientSizeError> {
    let start = out.len();
    let mut room = room;
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(size) if size.required_size > room => room = size.required_size,
            Err(size) => {
                out.truncate(start);
                return Err(size);
            }
        }
    }
}

/// rustls could not encrypt: its keys are exhausted (the only case once the room fits).
fn encrypt_failed(_: InsufficientSizeError) -> TransportError {
    TransportError::Io(io::Error::other("TLS: the encryption keys are exhausted"))
}
