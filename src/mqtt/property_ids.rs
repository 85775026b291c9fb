//! MQTT 5 property identifiers and the wire type of each one's value.

/// Property identifiers (MQTT 5 table 2-4).
pub mod id {
    /// Byte: 0 unspecified bytes, 1 UTF-8 payload.
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Four-byte integer: seconds the message lives.
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// String: MIME type of the payload.
    pub const CONTENT_TYPE: u8 = 0x03;
    /// String: topic name for a response.
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Binary: correlation data for a response.
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Variable integer: subscription identifier (1..=268,435,455).
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Four-byte integer: seconds the session outlives the connection.
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// String: the client id the server assigned.
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Two-byte integer: keep alive the server imposes.
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// String: enhanced authentication method.
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Binary: enhanced authentication data.
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Byte: 0 or 1.
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Four-byte integer: seconds before the will is published.
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Byte: 0 or 1.
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// String: basis for response topics.
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// String: another server to use.
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// String: human-readable reason.
    pub const REASON_STRING: u8 = 0x1F;
    /// Two-byte integer, non-zero: unacknowledged QoS > 0 publishes the sender accepts.
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Two-byte integer: highest topic alias the sender accepts.
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Two-byte integer, non-zero: topic alias of a PUBLISH.
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Byte: 0 or 1, the highest QoS the server accepts.
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Byte: 0 or 1.
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// String pair: a user property (may repeat).
    pub const USER_PROPERTY: u8 = 0x26;
    /// Four-byte integer, non-zero: the largest packet the sender accepts.
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Byte: 0 or 1.
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Byte: 0 or 1.
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Byte: 0 or 1.
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The raw entries (identifier, then value bytes) of a property block that was already
/// checked, found by their lengths alone: encoding copies them without reading strings again.
pub(crate) fn raw_entries(block: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = block;
    std::iter::from_fn(move || {
        let (&property, after_id) = rest.split_first()?;
        let len = 1 + raw_value_len(property, after_id)?;
        let (entry, next) = rest.split_at_checked(len)?;
        rest = next;
        Some((property, entry))
    })
}

/// Bytes of the value of property `id` at the front of `bytes`, by its wire type.
fn raw_value_len(id: u8, bytes: &[u8]) -> Option<usize> {
    let field = |at: usize| {
        let len = bytes.get(at..at + 2)?;
        Some(2 + usize::from(u16::from_be_bytes([len[0], len[1]])))
    };
    match read_kind(id) {
        Kind::Byte => Some(1),
        Kind::U16 => Some(2),
        Kind::U32 => Some(4),
        Kind::Varint => Some(1 + bytes.iter().take(3).take_while(|b| *b & 0x80 != 0).count()),
        Kind::Field => field(0),
        Kind::Pair => {
            let name = field(0)?;
            Some(name + field(name)?)
        }
        Kind::Unknown => None,
    }
}

/// The wire type of a property's value.
pub(crate) enum Kind {
    Byte,
    U16,
    U32,
    Varint,
    Field,
    Pair,
    Unknown,
}

pub(crate) fn read_kind(property: u8) -> Kind {
    use self::id::*;
    match property {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => Kind::Byte,
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => Kind::U16,
        MESSAGE_EXPIRY_INTERVAL
        | SESSION_EXPIRY_INTERVAL
        | WILL_DELAY_INTERVAL
        | MAXIMUM_PACKET_SIZE => Kind::U32,
        SUBSCRIPTION_IDENTIFIER => Kind::Varint,
        CONTENT_TYPE
        | RESPONSE_TOPIC
        | ASSIGNED_CLIENT_IDENTIFIER
        | AUTHENTICATION_METHOD
        | RESPONSE_INFORMATION
        | SERVER_REFERENCE
        | REASON_STRING
        | CORRELATION_DATA
        | AUTHENTICATION_DATA => Kind::Field,
        USER_PROPERTY => Kind::Pair,
        _ => Kind::Unknown,
    }
}
