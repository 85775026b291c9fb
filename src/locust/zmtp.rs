//! ZMTP 3.1 with the NULL mechanism, as a DEALER socket speaks it to libzmq's ROUTER: sans-IO.
//!
//! The worker feeds received bytes to [`Zmtp::handle_input`], takes [`Event`]s, queues
//! messages with [`Zmtp::send`], and writes [`Zmtp::pending_output`] to the socket. No
//! socket, no clock. Frames larger than [`MAX_FRAME`] end the connection instead of growing
//! the buffer without bound.

use std::fmt;

/// Largest frame accepted from the master (a spawn message is a few KiB).
pub const MAX_FRAME: usize = 16 << 20;
/// The greeting's length.
const GREETING_LEN: usize = 64;

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

/// Why the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZmtpError {
    /// The peer's first bytes are not a ZMTP 3 greeting.
    BadGreeting,
    /// The peer wants a security mechanism other than NULL.
    Mechanism(String),
    /// The peer's READY is malformed or names a socket type a DEALER cannot talk to.
    BadReady(String),
    /// A frame over [`MAX_FRAME`] bytes.
    FrameTooLarge(u64),
    /// A message frame arrived before the handshake finished.
    MessageBeforeReady,
    /// The peer sent an ERROR command.
    Peer(String),
}

impl fmt::Display for ZmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZmtpError::BadGreeting => {
                f.write_str("the master did not answer with a ZMTP 3 greeting")
            }
            ZmtpError::Mechanism(m) => write!(
                f,
                "the master wants ZMTP security {m:?}; only NULL is supported"
            ),
            ZmtpError::BadReady(why) => write!(f, "bad ZMTP READY from the master: {why}"),
            ZmtpError::FrameTooLarge(n) => write!(
                f,
                "ZMTP frame of {n} bytes is over the {MAX_FRAME}-byte limit"
            ),
            ZmtpError::MessageBeforeReady => {
                f.write_str("ZMTP message before the handshake finished")
            }
            ZmtpError::Peer(reason) => write!(f, "the master sent a ZMTP ERROR: {reason}"),
        }
    }
}

impl std::error::Error for ZmtpError {}

/// What the peer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake is done: messages may flow both ways.
    Ready,
    /// One whole message (the last frame of a multi-frame message; Locust sends one frame).
    Message(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Handshake,
    Ready,
}

/// One ZMTP connection of a DEALER socket.
#[derive(Debug)]
pub struct Zmtp {
    identity: Vec<u8>,
    state: State,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Messages queued before the peer's greeting: they must follow our READY.
    held: Vec<u8>,
}

impl Zmtp {
    /// A new connection; the greeting is queued at once.
    pub fn new(identity: &str) -> Zmtp {
        let mut output = Vec::with_capacity(256);
        output.extend_from_slice(&greeting());
        Zmtp {
            identity: identity.as_bytes().to_vec(),
            state: State::Greeting,
            input: Vec::new(),
            output,
            held: Vec::new(),
        }
    }

    /// Whether the handshake finished.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Queues one single-frame message (ZMTP lets a DEALER send before the handshake ends;
    /// the bytes wait behind the READY).
    pub fn send(&mut self, payload: &[u8]) {
        let out = if self.state == State::Greeting {
            &mut self.held
        } else {
            &mut self.output
        };
        push_frame(out, 0, payload);
    }

    /// Bytes to write.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// `n` bytes of [`Zmtp::pending_output`] were written.
    pub fn consumed(&mut self, n: usize) {
        self.output.drain(..n.min(self.output.len()));
    }

    /// Takes received bytes; pushes what they complete onto `events`.
    pub fn handle_input(&mut self, data: &[u8], events: &mut Vec<Event>) -> Result<(), ZmtpError> {
        self.input.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.input[pos..];
            if self.state == State::Greeting {
                if rest.len() < GREETING_LEN {
                    // Check what is there already, so garbage fails fast.
                    if rest.first().is_some_and(|&b| b != 0xff) {
                        return Err(ZmtpError::BadGreeting);
                    }
                    break;
                }
                check_greeting(&rest[..GREETING_LEN])?;
                pos += GREETING_LEN;
                self.state = State::Handshake;
                let mut body = Vec::with_capacity(64);
                body.push(5);
                body.extend_from_slice(b"READY");
                push_property(&mut body, "Socket-Type", b"DEALER");
                push_property(&mut body, "Identity", &self.identity);
                push_frame(&mut self.output, FLAG_COMMAND, &body);
                // What the caller queued meanwhile goes after the READY.
                let held = std::mem::take(&mut self.held);
                self.output.extend_from_slice(&held);
                continue;
            }
            let Some((flags, header, size)) = frame_header(rest)? else {
                break;
            };
            if rest.len() < header + size {
                break;
            }
            let body = &rest[header..header + size];
            if flags & FLAG_COMMAND != 0 {
                let body = body.to_vec();
                if let Some(event) = self.command(&body)? {
                    events.push(event);
                }
            } else if self.state != State::Ready {
                return Err(ZmtpError::MessageBeforeReady);
            } else if flags & FLAG_MORE == 0 {
                events.push(Event::Message(body.to_vec()));
            }
            pos += header + size;
        }
        self.input.drain(..pos);
        Ok(())
    }

    fn command(&mut self, body: &[u8]) -> Result<Option<Event>, ZmtpError> {
        let name_len = usize::from(*body.first().unwrap_or(&0));
        let Some(name) = body.get(1..1 + name_len) else {
            return Err(ZmtpError::BadReady("truncated command name".into()));
        };
        let data = &body[1 + name_len..];
        match name {
            b"READY" if self.state == State::Handshake => {
                let socket_type = ready_socket_type(data)?;
                if socket_type != b"ROUTER" && socket_type != b"DEALER" {
                    return Err(ZmtpError::BadReady(format!(
                        "socket type {:?} cannot talk to a DEALER",
                        String::from_utf8_lossy(socket_type)
                    )));
                }
                self.state = State::Ready;
                Ok(Some(Event::Ready))
            }
            b"PING" => {
                // PING: 2-byte TTL, then a context the PONG echoes.
                let context = data.get(2..).unwrap_or(&[]);
                let mut pong = Vec::with_capacity(5 + context.len());
                pong.push(4);
                pong.extend_from_slice(b"PONG");
                pong.extend_from_slice(context);
                push_frame(&mut self.output, FLAG_COMMAND, &pong);
                Ok(None)
            }
            b"ERROR" => {
                let len = usize::from(*data.first().unwrap_or(&0));
                let reason = data.get(1..1 + len).unwrap_or(&data[data.len().min(1)..]);
                Err(ZmtpError::Peer(
                    String::from_utf8_lossy(reason).into_owned(),
                ))
            }
            // PONG, SUBSCRIBE and anything newer: nothing to do.
            _ => Ok(None),
        }
    }
}

/// Our 64-byte greeting: signature, version 3.1, NULL mechanism, as-server 0.
fn greeting() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn check_greeting(g: &[u8]) -> Result<(), ZmtpError> {
    if g[0] != 0xff || g[9] & 1 == 0 || g[10] < 3 {
        return Err(ZmtpError::BadGreeting);
    }
    let mechanism = &g[12..32];
    let end = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
    if &mechanism[..end] != b"NULL" {
        return Err(ZmtpError::Mechanism(
            String::from_utf8_lossy(&mechanism[..end]).into_owned(),
        ));
    }
    Ok(())
}

/// (flags, header length, body length) when the header is complete.
fn frame_header(rest: &[u8]) -> Result<Option<(u8, usize, usize)>, ZmtpError> {
    let Some(&flags) = rest.first() else {
        return Ok(None);
    };
    let (header, size) = if flags & FLAG_LONG != 0 {
        let Some(bytes) = rest.get(1..9) else {
            return Ok(None);
        };
        let mut be = [0u8; 8];
        be.copy_from_slice(bytes);
        (9, u64::from_be_bytes(be))
    } else {
        let Some(&size) = rest.get(1) else {
            return Ok(None);
        };
        (2, u64::from(size))
    };
    match usize::try_from(size) {
        Ok(size) if size <= MAX_FRAME => Ok(Some((flags, header, size))),
        _ => Err(ZmtpError::FrameTooLarge(size)),
    }
}

fn push_frame(out: &mut Vec<u8>, flags: u8, body: &[u8]) {
    if let Ok(size) = u8::try_from(body.len()) {
        out.push(flags);
        out.push(size);
    } else {
        out.push(flags | FLAG_LONG);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(body);
}

fn push_property(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// The `Socket-Type` of a READY's properties (names compare case-insensitively, as libzmq).
fn ready_socket_type(mut props: &[u8]) -> Result<&[u8], ZmtpError> {
    let mut socket_type = None;
    while let Some((&name_len, rest)) = props.split_first() {
        let name_len = usize::from(name_len);
        let (Some(name), Some(len_bytes)) =
            (rest.get(..name_len), rest.get(name_len..name_len + 4))
        else {
            return Err(ZmtpError::BadReady("truncated property".into()));
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let start = name_len + 4;
        let Some(value) = usize::try_from(len)
            .ok()
            .and_then(|len| rest.get(start..start.checked_add(len)?))
        else {
            return Err(ZmtpError::BadReady("truncated property value".into()));
        };
        if name.eq_ignore_ascii_case(b"Socket-Type") {
            socket_type = Some(value);
        }
        props = &rest[start + value.len()..];
    }
    socket_type.ok_or_else(|| ZmtpError::BadReady("no Socket-Type".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What libzmq's ROUTER sends: greeting, then READY with an empty Identity.
    fn router_hello() -> Vec<u8> {
        let mut out = greeting().to_vec();
        let mut body = vec![5];
        body.extend_from_slice(b"READY");
        push_property(&mut body, "Socket-Type", b"ROUTER");
        push_property(&mut body, "Identity", b"");
        push_frame(&mut out, FLAG_COMMAND, &body);
        out
    }

    #[test]
    fn greeting_and_ready_bytes_are_what_libzmq_expects() {
        let mut z = Zmtp::new("host_0123");
        let out = z.pending_output().to_vec();
        assert_eq!(out.len(), 64);
        assert_eq!(out[0], 0xff);
        assert_eq!(out[9], 0x7f);
        assert_eq!(&out[10..12], &[3, 1]);
        assert_eq!(&out[12..17], b"NULL\0");
        z.consumed(64);
        let mut events = Vec::new();
        z.handle_input(&router_hello(), &mut events).unwrap();
        assert_eq!(events, vec![Event::Ready]);
        let ready = z.pending_output();
        let mut expected = vec![0x04, 0];
        expected.extend_from_slice(b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER");
        expected.extend_from_slice(b"\x08Identity\x00\x00\x00\x09host_0123");
        expected[1] = (expected.len() - 2) as u8;
        assert_eq!(ready, &expected[..]);
    }

    #[test]
    fn messages_short_and_long_in_any_split() {
        let mut wire = router_hello();
        push_frame(&mut wire, 0, b"short");
        let long = vec![0xab; 300];
        push_frame(&mut wire, 0, &long);
        push_frame(&mut wire, FLAG_MORE, b"ignored part");
        push_frame(&mut wire, 0, b"last");
        assert_eq!(
            wire[wire.len() - 2 - 4 - 2 - 12 - 9 - 300],
            0x02,
            "long frame"
        );
        for chunk in [1, 2, 7, 64, wire.len()] {
            let mut z = Zmtp::new("w");
            let mut events = Vec::new();
            for piece in wire.chunks(chunk) {
                z.handle_input(piece, &mut events).unwrap();
            }
            assert_eq!(
                events,
                vec![
                    Event::Ready,
                    Event::Message(b"short".to_vec()),
                    Event::Message(long.clone()),
                    Event::Message(b"last".to_vec()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn sent_messages_are_framed_and_ping_gets_pong() {
        let mut z = Zmtp::new("w");
        z.send(&[1; 10]);
        z.send(&[2; 256]);
        let mut events = Vec::new();
        z.handle_input(&router_hello(), &mut events).unwrap();
        let out = z.pending_output().to_vec();
        // greeting, READY, then the two queued messages in order
        let ready_len = 2 + usize::from(out[65]);
        let msgs = &out[64 + ready_len..];
        assert_eq!(&msgs[..2], &[0, 10]);
        assert_eq!(&msgs[12..21], &[2, 0, 0, 0, 0, 0, 0, 1, 0]);
        z.consumed(out.len());
        let mut ping = vec![4];
        ping.extend_from_slice(b"PING\x00\x0actx");
        let mut wire = Vec::new();
        push_frame(&mut wire, FLAG_COMMAND, &ping);
        z.handle_input(&wire, &mut events).unwrap();
        assert_eq!(z.pending_output(), b"\x04\x08\x04PONGctx");
    }

    #[test]
    fn hostile_peers_are_errors() {
        let mut events = Vec::new();
        assert_eq!(
            Zmtp::new("w").handle_input(b"HTTP/1.1", &mut events),
            Err(ZmtpError::BadGreeting)
        );
        let mut plain = greeting();
        plain[12..17].copy_from_slice(b"PLAIN");
        assert!(matches!(
            Zmtp::new("w").handle_input(&plain, &mut events),
            Err(ZmtpError::Mechanism(_))
        ));
        let mut wire = greeting().to_vec();
        wire.extend_from_slice(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            Zmtp::new("w").handle_input(&wire, &mut events),
            Err(ZmtpError::FrameTooLarge(_))
        ));
        let mut wire = greeting().to_vec();
        push_frame(&mut wire, 0, b"early");
        assert_eq!(
            Zmtp::new("w").handle_input(&wire, &mut events),
            Err(ZmtpError::MessageBeforeReady)
        );
        let mut wire = greeting().to_vec();
        push_frame(
            &mut wire,
            FLAG_COMMAND,
            b"\x05READY\x0bSocket-Type\x00\x00\x00\xffPUB",
        );
        assert!(matches!(
            Zmtp::new("w").handle_input(&wire, &mut events),
            Err(ZmtpError::BadReady(_))
        ));
        let mut wire = router_hello();
        push_frame(&mut wire, FLAG_COMMAND, b"\x05ERROR\x03bye");
        assert_eq!(
            Zmtp::new("w").handle_input(&wire, &mut events),
            Err(ZmtpError::Peer("bye".into()))
        );
    }
}
