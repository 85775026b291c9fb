//! Packets to bytes, appended to a caller's reusable buffer (no allocation once it has grown).

use super::{EncodeError, Packet, Publish, QoS};

impl Packet<'_> {
    /// Appends this packet's wire form to `out`.
    pub fn encode(&self, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
        todo!("codec")
    }
}

/// Appends a PUBLISH to `out` (the hot path: no allocation beyond `out` growing).
pub fn encode_publish_into(_publish: &Publish<'_>, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
    todo!("codec")
}

/// Total bytes a PUBLISH takes on the wire, fixed header included.
pub fn encoded_publish_len(_topic_len: usize, _payload_len: usize, _qos: QoS) -> usize {
    todo!("codec")
}
