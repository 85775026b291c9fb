//! MQTT over WebSocket for the broker's `--ws-port` listener, sans IO: the upgrade request
//! answered with [`accept_upgrade`], clients' binary frames unwrapped into MQTT bytes, pings
//! answered, and the broker's MQTT bytes wrapped into (unmasked) binary frames.

use crate::net::websocket::{
    Control, FrameDecoder, FrameError, FramesFrom, Opcode, UpgradeRequestError, accept_upgrade,
    encode_bad_request, encode_frame,
};

/// Why a WebSocket connection ends (the loop closes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEnd {
    /// The upgrade request was refused (400 already queued).
    BadUpgrade(UpgradeRequestError),
    /// A frame broke RFC 6455.
    BadFrame(FrameError),
    /// The client sent a close frame (answered already).
    Closed,
}

/// One WebSocket connection's framing state.
#[derive(Debug)]
pub struct WsLink {
    /// The request head so far, until the upgrade is accepted (then empty for good).
    head: Vec<u8>,
    upgraded: bool,
    decoder: FrameDecoder,
    /// Bytes for the socket (or TLS): the 101 answer, then frames.
    pub wire: Vec<u8>,
}

impl WsLink {
    /// A link waiting for its upgrade request; frames longer than `max_frame` are refused.
    pub fn new(max_frame: usize) -> WsLink {
        WsLink {
            head: Vec::new(),
            upgraded: false,
            decoder: FrameDecoder::new(FramesFrom::Client, max_frame as u64),
            wire: Vec::new(),
        }
    }

    /// Takes bytes from the client: the upgrade request first, then frames, whose MQTT bytes
    /// are appended to `mqtt`. Answers (101, 400, pong, close) go to [`WsLink::wire`].
    pub fn unwrap(&mut self, input: &[u8], mqtt: &mut Vec<u8>) -> Result<(), WsEnd> {
        let mut input = input;
        let buffered;
        if !self.upgraded {
            self.head.extend_from_slice(input);
            match accept_upgrade(&self.head, &mut self.wire) {
                Ok(None) => return Ok(()),
                Ok(Some(head_len)) => {
                    self.upgraded = true;
                    buffered = std::mem::take(&mut self.head);
                    input = buffered.get(head_len..).unwrap_or_default();
                }
                Err(e) => {
                    encode_bad_request(&mut self.wire);
                    return Err(WsEnd::BadUpgrade(e));
                }
            }
        }
        while !input.is_empty() {
            let decoded = self.decoder.decode(input, mqtt).map_err(WsEnd::BadFrame)?;
            input = input.get(decoded.consumed..).unwrap_or_default();
            match decoded.control {
                None | Some(Control::Pong) => {}
                Some(Control::Ping) => {
                    let payload = self.decoder.control_payload();
                    encode_frame(&mut self.wire, true, Opcode::Pong, payload, None);
                }
                Some(Control::Close { .. }) => {
                    let code = 1000u16.to_be_bytes();
                    encode_frame(&mut self.wire, true, Opcode::Close, &code, None);
                    return Err(WsEnd::Closed);
                }
            }
        }
        Ok(())
    }

    /// Moves the broker's MQTT bytes in `mqtt` into one binary frame on the wire (nothing
    /// before the upgrade: the session says nothing before CONNECT, which comes after it).
    pub fn wrap(&mut self, mqtt: &mut Vec<u8>) {
        if self.upgraded && !mqtt.is_empty() {
            encode_frame(&mut self.wire, true, Opcode::Binary, mqtt, None);
            mqtt.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::websocket::{ClientHandshake, UpgradeRequest, encode_binary};

    fn upgrade() -> (ClientHandshake, Vec<u8>) {
        let mut request = Vec::new();
        let request_head = UpgradeRequest {
            host: "127.0.0.1:8080",
            path_and_query: "/mqtt",
            key: *b"0123456789abcdef",
            extra_headers: &[],
        };
        let handshake = ClientHandshake::start(&request_head, &mut request).expect("request");
        (handshake, request)
    }

    #[test]
    fn upgrade_then_frames_in_any_split_and_frames_out() {
        let (handshake, mut bytes) = upgrade();
        encode_binary(&mut bytes, &[0xc0, 0x00], [1, 2, 3, 4]);
        encode_frame(&mut bytes, true, Opcode::Ping, b"hi", Some([5, 6, 7, 8]));
        encode_binary(&mut bytes, &[0xe0, 0x00], [9, 9, 9, 9]);
        for cut in 0..bytes.len() {
            let mut link = WsLink::new(1 << 20);
            let mut mqtt = Vec::new();
            link.unwrap(&bytes[..cut], &mut mqtt).expect("first part");
            link.unwrap(&bytes[cut..], &mut mqtt).expect("second part");
            assert_eq!(mqtt, [0xc0, 0x00, 0xe0, 0x00], "cut at {cut}");
            let head_len = handshake
                .read_response(&link.wire)
                .expect("a valid 101")
                .expect("whole");
            assert_eq!(&link.wire[head_len..], [0x8a, 0x02, b'h', b'i'], "the pong");
        }
        let mut link = WsLink::new(1 << 20);
        let (_, request) = upgrade();
        link.unwrap(&request, &mut Vec::new()).expect("upgrade");
        link.wire.clear();
        let mut out = vec![0xd0, 0x00];
        link.wrap(&mut out);
        assert!(out.is_empty());
        assert_eq!(link.wire, [0x82, 0x02, 0xd0, 0x00]);
    }

    #[test]
    fn bad_requests_and_frames_end_the_link() {
        let mut link = WsLink::new(1 << 20);
        let end = link.unwrap(b"POST / HTTP/1.1\r\n\r\n", &mut Vec::new());
        assert!(matches!(end, Err(WsEnd::BadUpgrade(_))), "{end:?}");
        assert!(link.wire.starts_with(b"HTTP/1.1 400"));
        let (_, mut bytes) = upgrade();
        // An unmasked frame from a client.
        encode_frame(&mut bytes, true, Opcode::Binary, b"x", None);
        let end = WsLink::new(1 << 20).unwrap(&bytes, &mut Vec::new());
        assert!(matches!(end, Err(WsEnd::BadFrame(_))), "{end:?}");
        let (_, mut bytes) = upgrade();
        encode_frame(
            &mut bytes,
            true,
            Opcode::Close,
            &[3, 232],
            Some([1, 2, 3, 4]),
        );
        let mut link = WsLink::new(1 << 20);
        assert_eq!(link.unwrap(&bytes, &mut Vec::new()), Err(WsEnd::Closed));
        assert!(
            link.wire.ends_with(&[0x88, 0x02, 0x03, 0xe8]),
            "close answered"
        );
    }
}
