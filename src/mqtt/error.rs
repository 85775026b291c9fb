//! Why bytes could not be decoded or a packet could not be encoded.

/// A packet that cannot be decoded. (Skeleton: the codec helper completes the variants.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length announces more than the configured maximum packet size.
    PacketTooLarge {
        /// Announced total packet size in bytes.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The bytes do not form a valid MQTT 3.1.1 packet.
    Malformed(&'static str),
}

/// A packet that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    FieldTooLong,
    /// The packet is longer than MQTT's 268,435,455-byte maximum.
    PacketTooLarge,
}
