//! MQTT over WebSocket (RFC 6455, subprotocol `mqtt`), sans-IO: the client's opening
//! handshake and the framing that carries MQTT's byte stream. The caller moves the bytes.

pub mod frame;
pub mod handshake;

pub use frame::{
    Control, Decoded, FrameDecoder, FrameError, FramesFrom, Opcode, encode_binary, encode_close,
    encode_frame, encode_pong,
};
pub use handshake::{ClientHandshake, HandshakeError, UpgradeRequest, accept_key};
