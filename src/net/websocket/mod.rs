//! MQTT over WebSocket (RFC 6455, subprotocol `mqtt`), sans-IO: the client's opening
//! handshake and the framing that carries MQTT's byte stream. The caller moves the bytes.
//! [`WsClient`] puts the two together for one connection; the pieces below it are for a
//! caller that needs them apart. A server reads upgrades with [`accept_upgrade`] and
//! clients' masked frames with a [`FrameDecoder`] made for [`FramesFrom::Client`].
//!
//! A connection's life through the pieces, as a caller drives it (the bytes would come from the socket or TLS):
//!
//! ```
//! use mqload::net::websocket::{
//!     ClientHandshake, Control, FrameDecoder, FramesFrom, UpgradeRequest, accept_key,
//!     encode_binary, encode_pong,
//! };
//!
//! // 1. Send the upgrade; key and masks come from the caller's random source.
//! let mut to_server = Vec::new();
//! let key = *b"the sample nonce";
//! let request = UpgradeRequest { host: "127.0.0.1:8080", path_and_query: "/mqtt", key, extra_headers: &[] };
//! let handshake = ClientHandshake::start(&request, &mut to_server).unwrap();
//!
//! // 2. Read until the answer's head is complete; what follows it is already frames.
//! let answer = format!(
//!     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!      Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
//!     accept_key(b"dGhlIHNhbXBsZSBub25jZQ==")
//! );
//! let mut from_server = answer.into_bytes();
//! from_server.extend_from_slice(&[0x89, 0x01, b'?', 0x82, 0x04, 0x20, 0x02, 0x00, 0x00]);
//! let head_len = handshake.read_response(&from_server).unwrap().expect("a whole head");
//!
//! // 3. MQTT bytes go out in binary frames, and come in through the decoder, which stops
//! //    at each control frame so the caller can answer it.
//! to_server.clear();
//! encode_binary(&mut to_server, &[0xc0, 0x00], [1, 2, 3, 4]); // PINGREQ
//! let mut decoder = FrameDecoder::new(FramesFrom::Server, 1 << 20);
//! let mut mqtt_in = Vec::new();
//! let mut input = &from_server[head_len..];
//! while !input.is_empty() {
//!     let decoded = decoder.decode(input, &mut mqtt_in).unwrap();
//!     if decoded.control == Some(Control::Ping) {
//!         encode_pong(&mut to_server, decoder.control_payload(), [5, 6, 7, 8]);
//!     }
//!     input = &input[decoded.consumed..];
//! }
//! assert_eq!(mqtt_in, [0x20, 0x02, 0x00, 0x00]); // CONNACK, for the MQTT decoder
//! ```

pub mod client;
pub mod frame;
pub mod handshake;
mod head;
pub mod server;

pub use client::{WsClient, WsError, WsStatus};
pub use frame::{
    Control, Decoded, FrameDecoder, FrameError, FramesFrom, Opcode, encode_binary, encode_close,
    encode_frame, encode_pong,
};
pub use handshake::{ClientHandshake, HandshakeError, UpgradeRequest, accept_key};
pub use server::{UpgradeRequestError, accept_upgrade, encode_bad_request};
