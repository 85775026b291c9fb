//! MQTT 5 properties (section 2.2.2): one struct for every packet, decoded by borrowing.
//!
//! Each packet type may carry only some properties; [`Properties::read`] refuses the others,
//! duplicates, and out-of-range values, and the encoder (`properties_encode`) refuses the
//! same, so what mqload sends always decodes. The two properties that may repeat (user
//! properties, subscription identifiers) stay in the wire bytes when decoded and are iterated
//! from there, so decoding never allocates.

use super::DecodeError;
use super::reader::Reader;
use super::wire;

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

/// The properties context of a CONNECT's will (no packet type of its own).
pub(crate) const WILL: u8 = 0;

/// User properties: borrowed from the wire when decoded, from a list when built to send.
#[derive(Debug, Clone, Copy)]
pub enum UserProperties<'a> {
    /// A decoded property block (already checked); pairs are read from it on demand.
    Wire(&'a [u8]),
    /// Pairs to send.
    List(&'a [(&'a str, &'a str)]),
}

/// Subscription identifiers: borrowed from the wire when decoded, from a list when built.
#[derive(Debug, Clone, Copy)]
pub enum SubscriptionIds<'a> {
    /// A decoded property block (already checked).
    Wire(&'a [u8]),
    /// Identifiers to send (each 1..=268,435,455).
    List(&'a [u32]),
}

/// Every MQTT 5 property; `None` (or an empty list) means absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Properties<'a> {
    /// 0x01: 1 when the payload is UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// 0x02: seconds the message lives.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: MIME type of the payload.
    pub content_type: Option<&'a str>,
    /// 0x08: topic for a response.
    pub response_topic: Option<&'a str>,
    /// 0x09: correlation data.
    pub correlation_data: Option<&'a [u8]>,
    /// 0x0B: subscription identifiers (one in SUBSCRIBE, several in PUBLISH).
    pub subscription_ids: SubscriptionIds<'a>,
    /// 0x11: seconds the session outlives the connection.
    pub session_expiry_interval: Option<u32>,
    /// 0x12: client id assigned by the server.
    pub assigned_client_identifier: Option<&'a str>,
    /// 0x13: keep alive imposed by the server.
    pub server_keep_alive: Option<u16>,
    /// 0x15: authentication method.
    pub authentication_method: Option<&'a str>,
    /// 0x16: authentication data.
    pub authentication_data: Option<&'a [u8]>,
    /// 0x17: request problem information (0 or 1).
    pub request_problem_information: Option<u8>,
    /// 0x18: seconds before a will is published.
    pub will_delay_interval: Option<u32>,
    /// 0x19: request response information (0 or 1).
    pub request_response_information: Option<u8>,
    /// 0x1A: response information.
    pub response_information: Option<&'a str>,
    /// 0x1C: server reference.
    pub server_reference: Option<&'a str>,
    /// 0x1F: reason string.
    pub reason_string: Option<&'a str>,
    /// 0x21: receive maximum (non-zero).
    pub receive_maximum: Option<u16>,
    /// 0x22: topic alias maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: topic alias (non-zero).
    pub topic_alias: Option<u16>,
    /// 0x24: maximum QoS (0 or 1).
    pub maximum_qos: Option<u8>,
    /// 0x25: retain available (0 or 1).
    pub retain_available: Option<u8>,
    /// 0x26: user properties.
    pub user: UserProperties<'a>,
    /// 0x27: maximum packet size (non-zero).
    pub maximum_packet_size: Option<u32>,
    /// 0x28: wildcard subscription available (0 or 1).
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29: subscription identifiers available (0 or 1).
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A: shared subscription available (0 or 1).
    pub shared_subscription_available: Option<u8>,
}

impl Default for UserProperties<'_> {
    fn default() -> Self {
        UserProperties::List(&[])
    }
}

impl Default for SubscriptionIds<'_> {
    fn default() -> Self {
        SubscriptionIds::List(&[])
    }
}

impl<'a> UserProperties<'a> {
    /// The (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (wire, list): (&'a [u8], &'a [(&'a str, &'a str)]) = match *self {
            UserProperties::Wire(block) => (block, &[]),
            UserProperties::List(list) => (&[], list),
        };
        let decoded = RawProperties(Reader::new(wire)).filter_map(|(id, value)| match value {
            Value::Pair(name, text) if id == id::USER_PROPERTY => Some((name, text)),
            _ => None,
        });
        list.iter().copied().chain(decoded)
    }

    /// True when there is no user property.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<'a> SubscriptionIds<'a> {
    /// The identifiers in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (wire, list): (&'a [u8], &'a [u32]) = match *self {
            SubscriptionIds::Wire(block) => (block, &[]),
            SubscriptionIds::List(list) => (&[], list),
        };
        let decoded = RawProperties(Reader::new(wire)).filter_map(|(id, value)| match value {
            Value::Varint(n) if id == id::SUBSCRIPTION_IDENTIFIER => Some(n),
            _ => None,
        });
        list.iter().copied().chain(decoded)
    }

    /// True when there is no subscription identifier.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for UserProperties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for UserProperties<'_> {}

impl PartialEq for SubscriptionIds<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for SubscriptionIds<'_> {}

/// One property's value, by its wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Varint(u32),
    Str(&'a str),
    Binary(&'a [u8]),
    Pair(&'a str, &'a str),
}

/// Reads one property value of the type its identifier prescribes.
fn read_value<'a>(id: u8, reader: &mut Reader<'a>) -> Result<Value<'a>, DecodeError> {
    use id::*;
    const WHAT: &str = "property value";
    Ok(match id {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => Value::Byte(reader.u8(WHAT)?),
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => {
            Value::U16(reader.u16(WHAT)?)
        }
        MESSAGE_EXPIRY_INTERVAL
        | SESSION_EXPIRY_INTERVAL
        | WILL_DELAY_INTERVAL
        | MAXIMUM_PACKET_SIZE => Value::U32(reader.u32(WHAT)?),
        SUBSCRIPTION_IDENTIFIER => Value::Varint(reader.varint(WHAT)?),
        CONTENT_TYPE
        | RESPONSE_TOPIC
        | ASSIGNED_CLIENT_IDENTIFIER
        | AUTHENTICATION_METHOD
        | RESPONSE_INFORMATION
        | SERVER_REFERENCE
        | REASON_STRING => Value::Str(reader.string(WHAT)?),
        CORRELATION_DATA | AUTHENTICATION_DATA => Value::Binary(reader.binary(WHAT)?),
        USER_PROPERTY => Value::Pair(reader.string("user property name")?, reader.string(WHAT)?),
        other => return Err(DecodeError::UnknownProperty(other)),
    })
}

/// Iterates the (identifier, value) pairs of a property block that was already checked.
struct RawProperties<'a>(Reader<'a>);

impl<'a> Iterator for RawProperties<'a> {
    type Item = (u8, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let id = u8::try_from(self.0.varint("property identifier").ok()?).ok()?;
        Some((id, read_value(id, &mut self.0).ok()?))
    }
}

/// Packet types (bit n for type n, bit 0 for will properties) that may carry a property.
pub(crate) fn allowed_contexts(property: u8) -> u16 {
    use id::*;
    const fn bits(types: &[u8]) -> u16 {
        let mut mask = 0u16;
        let mut i = 0;
        while i < types.len() {
            mask |= 1 << types[i];
            i += 1;
        }
        mask
    }
    use wire::{AUTH, CONNACK, CONNECT, DISCONNECT, PUBLISH, SUBSCRIBE};
    match property {
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA => bits(&[PUBLISH, WILL]),
        SUBSCRIPTION_IDENTIFIER => bits(&[PUBLISH, SUBSCRIBE]),
        SESSION_EXPIRY_INTERVAL => bits(&[CONNECT, CONNACK, DISCONNECT]),
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => bits(&[CONNACK]),
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => bits(&[CONNECT, CONNACK, AUTH]),
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => bits(&[CONNECT]),
        WILL_DELAY_INTERVAL => bits(&[WILL]),
        SERVER_REFERENCE => bits(&[CONNACK, DISCONNECT]),
        REASON_STRING => bits(&[CONNACK, 4, 5, 6, 7, 9, 11, DISCONNECT, AUTH]),
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => bits(&[CONNECT, CONNACK]),
        TOPIC_ALIAS => bits(&[PUBLISH]),
        USER_PROPERTY => u16::MAX,
        _ => 0,
    }
}

/// Whether `value` is in the range property `id` allows (flags 0/1, some non-zero values).
pub(crate) fn value_in_range(id: u8, value: Value<'_>) -> bool {
    use id::*;
    match (id, value) {
        (RECEIVE_MAXIMUM | TOPIC_ALIAS, Value::U16(n)) => n != 0,
        (MAXIMUM_PACKET_SIZE, Value::U32(n)) => n != 0,
        (SUBSCRIPTION_IDENTIFIER, Value::Varint(n)) => n != 0,
        (RESPONSE_TOPIC, Value::Str(topic)) => wire::is_valid_topic_name(topic),
        (_, Value::Byte(flag)) => flag <= 1,
        _ => true,
    }
}

impl<'a> Properties<'a> {
    /// Reads a property block (its length, then the properties) for packet type `context`
    /// (0 for will properties), refusing what that packet may not carry.
    pub(crate) fn read(reader: &mut Reader<'a>, context: u8) -> Result<Self, DecodeError> {
        let len = reader.varint("property length")?;
        let block = reader.take(len as usize, "properties")?;
        let mut props = Properties {
            user: UserProperties::Wire(block),
            subscription_ids: SubscriptionIds::Wire(block),
            ..Properties::default()
        };
        let mut seen = 0u64;
        let mut body = Reader::new(block);
        while !body.is_empty() {
            let raw_id = body.varint("property identifier")?;
            let property = u8::try_from(raw_id).map_err(|_| DecodeError::UnknownProperty(0xFF))?;
            let value = read_value(property, &mut body)?;
            if allowed_contexts(property) & (1 << context) == 0 {
                return Err(DecodeError::PropertyNotAllowed {
                    packet_type: context,
                    property,
                });
            }
            if !value_in_range(property, value) {
                return Err(DecodeError::InvalidPropertyValue(property));
            }
            match property {
                id::USER_PROPERTY => {}
                id::SUBSCRIPTION_IDENTIFIER if context == wire::PUBLISH => {}
                _ if seen & (1 << property) != 0 => {
                    return Err(DecodeError::DuplicateProperty(property));
                }
                _ => seen |= 1 << property,
            }
            props.set(property, value);
        }
        Ok(props)
    }

    /// Stores one decoded scalar value (repeatable properties stay in the block).
    fn set(&mut self, property: u8, value: Value<'a>) {
        use id::*;
        match (property, value) {
            (PAYLOAD_FORMAT_INDICATOR, Value::Byte(v)) => self.payload_format_indicator = Some(v),
            (MESSAGE_EXPIRY_INTERVAL, Value::U32(v)) => self.message_expiry_interval = Some(v),
            (CONTENT_TYPE, Value::Str(v)) => self.content_type = Some(v),
            (RESPONSE_TOPIC, Value::Str(v)) => self.response_topic = Some(v),
            (CORRELATION_DATA, Value::Binary(v)) => self.correlation_data = Some(v),
            (SESSION_EXPIRY_INTERVAL, Value::U32(v)) => self.session_expiry_interval = Some(v),
            (ASSIGNED_CLIENT_IDENTIFIER, Value::Str(v)) => {
                self.assigned_client_identifier = Some(v)
            }
            (SERVER_KEEP_ALIVE, Value::U16(v)) => self.server_keep_alive = Some(v),
            (AUTHENTICATION_METHOD, Value::Str(v)) => self.authentication_method = Some(v),
            (AUTHENTICATION_DATA, Value::Binary(v)) => self.authentication_data = Some(v),
            (REQUEST_PROBLEM_INFORMATION, Value::Byte(v)) => {
                self.request_problem_information = Some(v)
            }
            (WILL_DELAY_INTERVAL, Value::U32(v)) => self.will_delay_interval = Some(v),
            (REQUEST_RESPONSE_INFORMATION, Value::Byte(v)) => {
                self.request_response_information = Some(v)
            }
            (RESPONSE_INFORMATION, Value::Str(v)) => self.response_information = Some(v),
            (SERVER_REFERENCE, Value::Str(v)) => self.server_reference = Some(v),
            (REASON_STRING, Value::Str(v)) => self.reason_string = Some(v),
            (RECEIVE_MAXIMUM, Value::U16(v)) => self.receive_maximum = Some(v),
            (TOPIC_ALIAS_MAXIMUM, Value::U16(v)) => self.topic_alias_maximum = Some(v),
            (TOPIC_ALIAS, Value::U16(v)) => self.topic_alias = Some(v),
            (MAXIMUM_QOS, Value::Byte(v)) => self.maximum_qos = Some(v),
            (RETAIN_AVAILABLE, Value::Byte(v)) => self.retain_available = Some(v),
            (MAXIMUM_PACKET_SIZE, Value::U32(v)) => self.maximum_packet_size = Some(v),
            (WILDCARD_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => {
                self.wildcard_subscription_available = Some(v)
            }
            (SUBSCRIPTION_IDENTIFIER_AVAILABLE, Value::Byte(v)) => {
                self.subscription_identifier_available = Some(v)
            }
            (SHARED_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => {
                self.shared_subscription_available = Some(v)
            }
            _ => {}
        }
    }
}
