//! Why bytes could not be decoded or a packet could not be encoded.

use std::fmt;

/// A packet that cannot be decoded.
///
/// Every variant means the peer sent bytes that are not valid MQTT 3.1.1; the connection
/// should be closed (a broker may first answer [`DecodeError::UnsupportedProtocolLevel`]
/// with CONNACK return code 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length announces more than the configured maximum packet size.
    PacketTooLarge {
        /// Announced total packet size in bytes.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The packet type nibble is 0 or 15, which MQTT 3.1.1 reserves.
    InvalidPacketType(u8),
    /// The fixed header's flag bits are not the ones the packet type requires.
    InvalidFlags {
        /// Packet type (1..=14).
        packet_type: u8,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// The remaining length has a continuation bit on its fourth byte.
    MalformedRemainingLength,
    /// A fixed-size packet (acks, pings, CONNACK, DISCONNECT) announces the wrong length.
    InvalidRemainingLength {
        /// Packet type (1..=14).
        packet_type: u8,
        /// The announced remaining length.
        len: usize,
    },
    /// A field runs past the end of the packet; names the field.
    UnexpectedEnd(&'static str),
    /// Bytes are left over after the last field of the packet.
    TrailingBytes(usize),
    /// A string field is not well-formed UTF-8.
    InvalidUtf8,
    /// A string field contains U+0000, which MQTT forbids.
    NullCharacter,
    /// A QoS field holds a value other than 0, 1 or 2.
    InvalidQoS(u8),
    /// A packet identifier that must be non-zero is zero.
    ZeroPacketId,
    /// CONNECT's protocol name is not "MQTT".
    InvalidProtocolName,
    /// CONNECT asks for a protocol level other than 4 (MQTT 3.1.1).
    UnsupportedProtocolLevel(u8),
    /// CONNACK carries a return code above 5.
    InvalidConnectReturnCode(u8),
    /// SUBACK carries a return code other than 0, 1, 2 or 0x80.
    InvalidSubAckReturnCode(u8),
    /// A PUBLISH topic name is empty or contains a wildcard (`+`, `#`).
    InvalidTopicName,
    /// A SUBSCRIBE/UNSUBSCRIBE topic filter is empty or misuses a wildcard.
    InvalidTopicFilter,
    /// The packet breaks a rule of the protocol; names the rule.
    ProtocolViolation(&'static str),
    /// MQTT 5: a variable byte integer has a continuation bit on its fourth byte; names it.
    MalformedVariableInteger(&'static str),
    /// MQTT 5: a reason code that this packet type may not carry.
    InvalidReasonCode {
        /// Packet type (1..=15).
        packet_type: u8,
        /// The reason code byte.
        code: u8,
    },
    /// MQTT 5: a property identifier the specification does not define.
    UnknownProperty(u8),
    /// MQTT 5: a property this packet type (0 for will properties) may not carry.
    PropertyNotAllowed {
        /// Packet type, or 0 for a CONNECT's will properties.
        packet_type: u8,
        /// Property identifier.
        property: u8,
    },
    /// MQTT 5: a property that may appear once appears twice.
    DuplicateProperty(u8),
    /// MQTT 5: a property's value is out of its range (a zero Receive Maximum, a flag of 2).
    InvalidPropertyValue(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PacketTooLarge { size, max } => {
                write!(
                    f,
                    "packet of {size} bytes exceeds the maximum of {max} bytes"
                )
            }
            Self::InvalidPacketType(t) => write!(f, "reserved packet type {t}"),
            Self::InvalidFlags { packet_type, flags } => write!(
                f,
                "invalid fixed header flags {flags:#06b} for packet type {packet_type}"
            ),
            Self::MalformedRemainingLength => {
                f.write_str("remaining length longer than four bytes")
            }
            Self::InvalidRemainingLength { packet_type, len } => write!(
                f,
                "remaining length {len} is wrong for packet type {packet_type}"
            ),
            Self::UnexpectedEnd(what) => write!(f, "{what} runs past the end of the packet"),
            Self::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the last field"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::NullCharacter => f.write_str("string contains U+0000"),
            Self::InvalidQoS(q) => write!(f, "invalid QoS value {q}"),
            Self::ZeroPacketId => f.write_str("packet identifier 0"),
            Self::InvalidProtocolName => f.write_str("protocol name is not \"MQTT\""),
            Self::UnsupportedProtocolLevel(l) => {
                write!(f, "unsupported protocol level {l} (MQTT 3.1.1 is 4)")
            }
            Self::InvalidConnectReturnCode(c) => write!(f, "invalid CONNACK return code {c}"),
            Self::InvalidSubAckReturnCode(c) => write!(f, "invalid SUBACK return code {c:#04x}"),
            Self::InvalidTopicName => f.write_str("topic name is empty or contains a wildcard"),
            Self::InvalidTopicFilter => f.write_str("invalid topic filter"),
            Self::ProtocolViolation(rule) => write!(f, "protocol violation: {rule}"),
            Self::MalformedVariableInteger(what) => {
                write!(f, "{what} is a variable integer longer than four bytes")
            }
            Self::InvalidReasonCode { packet_type, code } => {
                write!(
                    f,
                    "reason code {code:#04x} is invalid in packet type {packet_type}"
                )
            }
            Self::UnknownProperty(id) => write!(f, "unknown property {id:#04x}"),
            Self::PropertyNotAllowed {
                packet_type,
                property,
            } => write!(
                f,
                "property {property:#04x} is not allowed in packet type {packet_type}"
            ),
            Self::DuplicateProperty(id) => write!(f, "property {id:#04x} appears twice"),
            Self::InvalidPropertyValue(id) => write!(f, "property {id:#04x} has an invalid value"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A packet that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    FieldTooLong,
    /// The packet is longer than MQTT's 268,435,455-byte maximum.
    PacketTooLarge,
    /// A packet identifier that must be non-zero is zero.
    ZeroPacketId,
    /// A PUBLISH or will topic name is empty or contains a wildcard (`+`, `#`) or U+0000.
    InvalidTopicName,
    /// A SUBSCRIBE/UNSUBSCRIBE topic filter is empty or misuses a wildcard.
    InvalidTopicFilter,
    /// A string field contains U+0000, which MQTT forbids.
    NullCharacter,
    /// The packet would break a rule of the protocol; names the rule.
    ProtocolViolation(&'static str),
    /// MQTT 5: a property this packet type (0 for will properties) may not carry.
    PropertyNotAllowed {
        /// Packet type, or 0 for a CONNECT's will properties.
        packet_type: u8,
        /// Property identifier.
        property: u8,
    },
    /// MQTT 5: a property's value is out of its range (a zero Receive Maximum, a flag of 2).
    InvalidPropertyValue(u8),
    /// MQTT 5: a reason code that this packet type may not carry.
    InvalidReasonCode {
        /// Packet type (1..=15).
        packet_type: u8,
        /// The reason code byte.
        code: u8,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldTooLong => f.write_str("field longer than 65535 bytes"),
            Self::PacketTooLarge => f.write_str("packet longer than 268435455 bytes"),
            Self::ZeroPacketId => f.write_str("packet identifier 0"),
            Self::InvalidTopicName => {
                f.write_str("topic name is empty or contains a wildcard or U+0000")
            }
            Self::InvalidTopicFilter => f.write_str("invalid topic filter"),
            Self::NullCharacter => f.write_str("string contains U+0000"),
            Self::ProtocolViolation(rule) => write!(f, "protocol violation: {rule}"),
            Self::PropertyNotAllowed {
                packet_type,
                property,
            } => write!(
                f,
                "property {property:#04x} is not allowed in packet type {packet_type}"
            ),
            Self::InvalidPropertyValue(id) => write!(f, "property {id:#04x} has an invalid value"),
            Self::InvalidReasonCode { packet_type, code } => {
                write!(
                    f,
                    "reason code {code:#04x} is invalid in packet type {packet_type}"
                )
            }
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_cause() {
        let too_large = DecodeError::PacketTooLarge { size: 10, max: 5 };
        assert_eq!(
            too_large.to_string(),
            "packet of 10 bytes exceeds the maximum of 5 bytes"
        );
        assert_eq!(
            DecodeError::UnexpectedEnd("topic").to_string(),
            "topic runs past the end of the packet"
        );
        assert_eq!(
            EncodeError::FieldTooLong.to_string(),
            "field longer than 65535 bytes"
        );
    }
}
