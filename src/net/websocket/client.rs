//! One client WebSocket connection carrying MQTT, sans-IO: the upgrade, then frames both
//! ways, with pings answered and the peer's close echoed, so that a transport only moves
//! bytes: what it reads goes to [`WsClient::handle_input`], what MQTT writes goes through
//! [`WsClient::encode_mqtt`].

use std::fmt;

use super::frame::{self, Control, FrameDecoder, FrameError, FramesFrom, Opcode};
use super::handshake::{ClientHandshake, HandshakeError, MAX_RESPONSE_HEAD, UpgradeRequest};

/// Where the connection stands after the input so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsStatus {
    /// The server's answer to the upgrade is not complete yet.
    Upgrading,
    /// Upgraded: MQTT flows (the first time it is seen, send CONNECT).
    Open,
    /// The server closed (its close was echoed into the output); drop the connection.
    Closed {
        /// The server's status code, when it gave one.
        code: Option<u16>,
    },
}

/// Why the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// The upgrade failed.
    Handshake(HandshakeError),
    /// The server sent a frame it should not have.
    Frame(FrameError),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Handshake(e) => e.fmt(f),
            WsError::Frame(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WsError {}

#[derive(Debug)]
enum State {
    Upgrading {
        handshake: ClientHandshake,
        head: Vec<u8>,
    },
    Open,
    Closed {
        code: Option<u16>,
    },
}

/// A client connection's WebSocket layer.
#[derive(Debug)]
pub struct WsClient {
    state: State,
    decoder: FrameDecoder,
    /// This side's close went out: the peer's close then needs no echo (RFC 6455 §5.5.1).
    close_sent: bool,
}

impl WsClient {
    /// Appends the upgrade request to `to_send`; frames longer than `max_frame` will be
    /// refused (MQTT's own packet limit bounds what one frame needs).
    pub fn start(
        request: &UpgradeRequest<'_>,
        to_send: &mut Vec<u8>,
        max_frame: u64,
    ) -> Result<WsClient, WsError> {
        let handshake = ClientHandshake::start(request, to_send).map_err(WsError::Handshake)?;
        Ok(WsClient {
            state: State::Upgrading {
                handshake,
                head: Vec::new(),
            },
            decoder: FrameDecoder::new(FramesFrom::Server, max_frame),
            close_sent: false,
        })
    }

    /// The status without new input.
    pub fn status(&self) -> WsStatus {
        match self.state {
            State::Upgrading { .. } => WsStatus::Upgrading,
            State::Open => WsStatus::Open,
            State::Closed { code } => WsStatus::Closed { code },
        }
    }

    /// Takes bytes read from the transport: MQTT bytes are appended to `mqtt_in`, and pongs
    /// or the close echo to `to_send`, masked with masks from `mask`.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        mqtt_in: &mut Vec<u8>,
        to_send: &mut Vec<u8>,
        mask: &mut impl FnMut() -> [u8; 4],
    ) -> Result<WsStatus, WsError> {
        let mut input = input;
        if let State::Upgrading { handshake, head } = &mut self.state {
            // Keep at most one byte past the limit, so an endless head is refused.
            let room = (MAX_RESPONSE_HEAD + 1).saturating_sub(head.len());
            let already = head.len();
            head.extend_from_slice(&input[..input.len().min(room)]);
            match handshake.read_response(head).map_err(WsError::Handshake)? {
                None => return Ok(WsStatus::Upgrading),
                Some(head_len) => {
                    // Bytes past the head are frames: resume from them in `input`.
                    input = &input[head_len - already..];
                    self.state = State::Open;
                }
            }
        }
        while !input.is_empty() {
            if let State::Closed { code } = self.state {
                // Anything after the peer's close is ignored: the connection is over.
                return Ok(WsStatus::Closed { code });
            }
            let decoded = self
                .decoder
                .decode(input, mqtt_in)
                .map_err(WsError::Frame)?;
            match decoded.control {
                Some(Control::Ping) => {
                    frame::encode_pong(to_send, self.decoder.control_payload(), mask());
                }
                Some(Control::Close { code }) => {
                    if !self.close_sent {
                        let echo = code.map(u16::to_be_bytes);
                        let payload: &[u8] = echo.as_ref().map_or(&[], |bytes| bytes.as_slice());
                        frame::encode_frame(to_send, true, Opcode::Close, payload, Some(mask()));
                        self.close_sent = true;
                    }
                    self.state = State::Closed { code };
                }
                Some(Control::Pong) | None => {}
            }
            input = &input[decoded.consumed..];
        }
        Ok(self.status())
    }

    /// Appends `mqtt` (any number of whole or partial MQTT packets) to `to_send` as one
    /// binary frame. Call only once [`WsStatus::Open`]; nothing is sent for empty input.
    pub fn encode_mqtt(&self, mqtt: &[u8], to_send: &mut Vec<u8>, mask: [u8; 4]) {
        if !mqtt.is_empty() {
            frame::encode_binary(to_send, mqtt, mask);
        }
    }

    /// Appends a normal close (1000) to `to_send`, for a client that is leaving; the
    /// server's answering close is then not echoed.
    pub fn encode_close(&mut self, to_send: &mut Vec<u8>, mask: [u8; 4]) {
        if !self.close_sent {
            frame::encode_close(to_send, 1000, mask);
            self.close_sent = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::websocket::accept_key;

    const KEY: [u8; 16] = *b"the sample nonce";

    fn start() -> (WsClient, Vec<u8>) {
        let mut to_send = Vec::new();
        let request = UpgradeRequest {
            host: "broker.example",
            path_and_query: "/mqtt",
            key: KEY,
            extra_headers: &[],
        };
        let client = WsClient::start(&request, &mut to_send, 1 << 16).unwrap();
        (client, to_send)
    }

    fn answer() -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==")
        )
        .into_bytes()
    }

    fn counting_masks() -> impl FnMut() -> [u8; 4] {
        let mut next = 0u8;
        move || {
            next = next.wrapping_add(1);
            [next; 4]
        }
    }

    /// Feeds `input` in pieces of `piece` bytes; returns the statuses seen.
    fn feed(
        client: &mut WsClient,
        input: &[u8],
        piece: usize,
        mqtt_in: &mut Vec<u8>,
        to_send: &mut Vec<u8>,
    ) -> Vec<WsStatus> {
        let mut masks = counting_masks();
        input
            .chunks(piece)
            .map(|chunk| {
                client
                    .handle_input(chunk, mqtt_in, to_send, &mut masks)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn upgrade_then_mqtt_then_close_in_any_read_split() {
        let mut server = answer();
        let head_len = server.len();
        frame::encode_frame(&mut server, true, Opcode::Binary, &[0x20, 0x02, 0, 0], None);
        frame::encode_frame(&mut server, true, Opcode::Ping, b"hi", None);
        frame::encode_frame(
            &mut server,
            true,
            Opcode::Close,
            &1001u16.to_be_bytes(),
            None,
        );
        frame::encode_frame(&mut server, true, Opcode::Binary, b"ignored", None);
        for piece in [1, 2, 7, head_len, server.len()] {
            let (mut client, _) = start();
            let (mut mqtt_in, mut to_send) = (Vec::new(), Vec::new());
            let statuses = feed(&mut client, &server, piece, &mut mqtt_in, &mut to_send);
            assert_eq!(mqtt_in, [0x20, 0x02, 0, 0], "piece {piece}");
            assert_eq!(
                statuses.last(),
                Some(&WsStatus::Closed { code: Some(1001) })
            );
            if piece == 1 {
                assert_eq!(statuses[head_len - 2], WsStatus::Upgrading);
                assert_eq!(statuses[head_len - 1], WsStatus::Open);
            }
            // The pong, then the close echo, each masked.
            let mut server_side = FrameDecoder::new(FramesFrom::Client, 1 << 16);
            let (mut nothing, mut rest) = (Vec::new(), to_send.as_slice());
            let mut seen = Vec::new();
            while !rest.is_empty() {
                let decoded = server_side.decode(rest, &mut nothing).unwrap();
                if let Some(control) = decoded.control {
                    seen.push((control, server_side.control_payload().to_vec()));
                }
                rest = &rest[decoded.consumed..];
            }
            assert_eq!(
                seen,
                vec![
                    (Control::Pong, b"hi".to_vec()),
                    (
                        Control::Close { code: Some(1001) },
                        1001u16.to_be_bytes().to_vec()
                    ),
                ]
            );
            assert!(nothing.is_empty());
        }
    }

    #[test]
    fn a_refused_upgrade_and_a_bad_frame_are_errors() {
        let (mut client, _) = start();
        let mut masks = counting_masks();
        let refused = client.handle_input(
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
            &mut Vec::new(),
            &mut Vec::new(),
            &mut masks,
        );
        assert_eq!(
            refused,
            Err(WsError::Handshake(HandshakeError::Refused { status: 403 }))
        );

        let (mut client, _) = start();
        let mut server = answer();
        server.extend_from_slice(&[0x81, 0x00]); // a text frame
        let bad = client.handle_input(&server, &mut Vec::new(), &mut Vec::new(), &mut masks);
        assert_eq!(bad, Err(WsError::Frame(FrameError::TextFrame)));
    }

    #[test]
    fn an_endless_head_is_refused_without_growing_past_the_limit() {
        let (mut client, _) = start();
        let mut masks = counting_masks();
        let junk = vec![b'a'; 1024];
        let mut result = Ok(WsStatus::Upgrading);
        for _ in 0..(MAX_RESPONSE_HEAD / junk.len() + 2) {
            result = client.handle_input(&junk, &mut Vec::new(), &mut Vec::new(), &mut masks);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(WsError::Handshake(HandshakeError::ResponseTooLarge))
        );
        if let State::Upgrading { head, .. } = &client.state {
            assert!(head.len() <= MAX_RESPONSE_HEAD + 1);
        }
    }

    #[test]
    fn the_answer_to_our_close_is_not_echoed() {
        let (mut client, _) = start();
        let mut masks = counting_masks();
        let mut to_send = Vec::new();
        client.encode_close(&mut to_send, [1, 2, 3, 4]);
        assert_eq!(to_send.len(), 8, "one close frame: header, mask, code");
        client.encode_close(&mut to_send, [1, 2, 3, 4]);
        assert_eq!(to_send.len(), 8, "never two");
        let mut server = answer();
        frame::encode_frame(
            &mut server,
            true,
            Opcode::Close,
            &1000u16.to_be_bytes(),
            None,
        );
        let status = client.handle_input(&server, &mut Vec::new(), &mut to_send, &mut masks);
        assert_eq!(status, Ok(WsStatus::Closed { code: Some(1000) }));
        assert_eq!(to_send.len(), 8);
    }

    #[test]
    fn mqtt_goes_out_in_one_masked_binary_frame() {
        let (client, _) = start();
        let mut to_send = Vec::new();
        client.encode_mqtt(&[], &mut to_send, [1, 2, 3, 4]);
        assert!(to_send.is_empty());
        client.encode_mqtt(&[0xc0, 0x00], &mut to_send, [1, 2, 3, 4]);
        assert_eq!(to_send, [0x82, 0x82, 1, 2, 3, 4, 0xc1, 0x02]);
    }
}
