//! MQTT 5 properties to bytes: every property is checked against the packet that carries it
//! before a byte is written, with the decoder's own rules.

use super::EncodeError;
use super::encode::put_field;
use super::properties::{
    Properties, UserProperties, Value, allowed_contexts, id, raw_entries, value_in_range,
};
use super::wire::{self, MAX_FIELD_LEN, MAX_REMAINING_LENGTH};

/// Calls `visit` with each property of `properties` that is present, its value wrapped as
/// its wire type.
fn visit_present<'a, T: Copy>(
    properties: &[(u8, Option<T>)],
    wrap: impl Fn(T) -> Value<'a>,
    visit: &mut impl FnMut(u8, Value<'a>),
) {
    for &(property, value) in properties {
        if let Some(value) = value {
            visit(property, wrap(value));
        }
    }
}

impl<'a> Properties<'a> {
    /// Calls `visit` with every present property, scalars first, user properties last.
    fn for_each(&self, mut visit: impl FnMut(u8, Value<'a>)) {
        use id::*;
        let bytes = [
            (PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator),
            (
                REQUEST_PROBLEM_INFORMATION,
                self.request_problem_information,
            ),
            (
                REQUEST_RESPONSE_INFORMATION,
                self.request_response_information,
            ),
            (MAXIMUM_QOS, self.maximum_qos),
            (RETAIN_AVAILABLE, self.retain_available),
            (
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                self.wildcard_subscription_available,
            ),
            (
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                self.subscription_identifier_available,
            ),
            (
                SHARED_SUBSCRIPTION_AVAILABLE,
                self.shared_subscription_available,
            ),
        ];
        let u16s = [
            (SERVER_KEEP_ALIVE, self.server_keep_alive),
            (RECEIVE_MAXIMUM, self.receive_maximum),
            (TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum),
            (TOPIC_ALIAS, self.topic_alias),
        ];
        let u32s = [
            (MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval),
            (SESSION_EXPIRY_INTERVAL, self.session_expiry_interval),
            (WILL_DELAY_INTERVAL, self.will_delay_interval),
            (MAXIMUM_PACKET_SIZE, self.maximum_packet_size),
        ];
        let strings = [
            (CONTENT_TYPE, self.content_type),
            (RESPONSE_TOPIC, self.response_topic),
            (ASSIGNED_CLIENT_IDENTIFIER, self.assigned_client_identifier),
            (AUTHENTICATION_METHOD, self.authentication_method),
            (RESPONSE_INFORMATION, self.response_information),
            (SERVER_REFERENCE, self.server_reference),
            (REASON_STRING, self.reason_string),
        ];
        let binaries = [
            (CORRELATION_DATA, self.correlation_data),
            (AUTHENTICATION_DATA, self.authentication_data),
        ];
        visit_present(&bytes, Value::Byte, &mut visit);
        visit_present(&u16s, Value::U16, &mut visit);
        visit_present(&u32s, Value::U32, &mut visit);
        visit_present(&strings, Value::Str, &mut visit);
        visit_present(&binaries, Value::Binary, &mut visit);
        for n in self.subscription_ids.iter() {
            visit(SUBSCRIPTION_IDENTIFIER, Value::Varint(n));
        }
        // Wire user properties are copied as they are (see `user_wire`).
        if let UserProperties::List(pairs) = self.user {
            for &(name, text) in pairs {
                visit(USER_PROPERTY, Value::Pair(name, text));
            }
        }
    }

    /// The raw user property entries of a checked wire block (none for a list): decoded or
    /// built by [`UserProperties::to_wire`], they need no check and are copied whole.
    fn user_wire(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let block: &'a [u8] = match self.user {
            UserProperties::Wire(block) => block,
            UserProperties::List(_) => &[],
        };
        raw_entries(block)
            .filter(|&(property, _)| property == id::USER_PROPERTY)
            .map(|(_, entry)| entry)
    }

    /// Bytes of the property block, length prefix included, without checking the properties
    /// (for a size estimate; [`Properties::wire_len`] checks).
    pub fn wire_len_unchecked(&self) -> usize {
        let body = self.body_len();
        wire::remaining_length_len(body) + body
    }

    /// Bytes of the properties without the length prefix (no checks).
    fn body_len(&self) -> usize {
        let mut len = 0usize;
        self.for_each(|_, value| len += 1 + value_len(value));
        len + self.user_wire().map(<[u8]>::len).sum::<usize>()
    }

    /// Bytes of the property block, length prefix included, after checking every property
    /// may ride in packet type `context` (0 for will properties).
    pub(crate) fn wire_len(&self, context: u8) -> Result<usize, EncodeError> {
        let mut len = 0usize;
        let mut error = None;
        let mut subscription_ids = 0usize;
        self.for_each(|property, value| {
            subscription_ids += usize::from(property == id::SUBSCRIPTION_IDENTIFIER);
            match check(property, value, context) {
                Ok(n) => len = len.saturating_add(1 + n),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        len = len.saturating_add(self.user_wire().map(<[u8]>::len).sum::<usize>());
        if context == wire::SUBSCRIBE && subscription_ids > 1 {
            return Err(EncodeError::ProtocolViolation(
                "SUBSCRIBE with more than one subscription identifier",
            ));
        }
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge);
        }
        Ok(wire::remaining_length_len(len) + len)
    }

    /// Appends the property block (length prefix, then properties); checked by `wire_len`.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        wire::put_remaining_length(self.body_len(), out);
        self.for_each(|property, value| {
            out.push(property);
            put_value(value, out);
        });
        for entry in self.user_wire() {
            out.extend_from_slice(entry);
        }
    }

    /// True when no property is present (a short-form ack or DISCONNECT may then omit them).
    pub fn is_empty(&self) -> bool {
        let mut any = false;
        self.for_each(|_, _| any = true);
        !any && self.user_wire().next().is_none()
    }
}

impl UserProperties<'_> {
    /// The pairs as property bytes (no length prefix) for [`UserProperties::Wire`]: built
    /// once, then borrowed by every packet that carries them. Fails on a pair MQTT cannot
    /// send (U+0000, longer than 65,535 bytes).
    pub fn to_wire(pairs: &[(&str, &str)]) -> Result<Vec<u8>, EncodeError> {
        let props = Properties {
            user: UserProperties::List(pairs),
            ..Properties::default()
        };
        props.wire_len(wire::PUBLISH)?;
        let mut out = Vec::new();
        props.for_each(|property, value| {
            out.push(property);
            put_value(value, &mut out);
        });
        Ok(out)
    }

    /// These user properties as owned property bytes, to keep and send later as
    /// [`UserProperties::Wire`]: decoded ones are copied entry by entry, unread (one
    /// allocation, none when there are none); a list is checked as [`UserProperties::to_wire`].
    pub fn to_owned_wire(&self) -> Result<Box<[u8]>, EncodeError> {
        let block = match *self {
            UserProperties::Wire(block) => block,
            UserProperties::List(pairs) => return Ok(Self::to_wire(pairs)?.into_boxed_slice()),
        };
        let entries = || {
            raw_entries(block)
                .filter(|&(property, _)| property == id::USER_PROPERTY)
                .map(|(_, entry)| entry)
        };
        let mut out = Vec::with_capacity(entries().map(<[u8]>::len).sum());
        entries().for_each(|entry| out.extend_from_slice(entry));
        Ok(out.into_boxed_slice())
    }
}

/// Checks one property for `context` and returns its value's wire length.
fn check(property: u8, value: Value<'_>, context: u8) -> Result<usize, EncodeError> {
    if allowed_contexts(property) & (1 << context) == 0 {
        return Err(EncodeError::PropertyNotAllowed {
            packet_type: context,
            property,
        });
    }
    let too_big = matches!(value, Value::Varint(n) if n as usize > MAX_REMAINING_LENGTH);
    if too_big || !value_in_range(property, value) {
        return Err(EncodeError::InvalidPropertyValue(property));
    }
    let strings: &[&str] = match value {
        Value::Str(text) => &[text],
        Value::Pair(name, text) => &[name, text],
        _ => &[],
    };
    for text in strings {
        if text.contains('\0') {
            return Err(EncodeError::NullCharacter);
        }
        if text.len() > MAX_FIELD_LEN {
            return Err(EncodeError::FieldTooLong);
        }
    }
    if matches!(value, Value::Binary(bytes) if bytes.len() > MAX_FIELD_LEN) {
        return Err(EncodeError::FieldTooLong);
    }
    Ok(value_len(value))
}

fn value_len(value: Value<'_>) -> usize {
    match value {
        Value::Byte(_) => 1,
        Value::U16(_) => 2,
        Value::U32(_) => 4,
        Value::Varint(n) => wire::remaining_length_len(n as usize),
        Value::Str(text) => 2 + text.len(),
        Value::Binary(bytes) => 2 + bytes.len(),
        Value::Pair(name, text) => 4 + name.len() + text.len(),
    }
}

fn put_value(value: Value<'_>, out: &mut Vec<u8>) {
    match value {
        Value::Byte(b) => out.push(b),
        Value::U16(n) => out.extend_from_slice(&n.to_be_bytes()),
        Value::U32(n) => out.extend_from_slice(&n.to_be_bytes()),
        Value::Varint(n) => wire::put_remaining_length(n as usize, out),
        Value::Str(text) => put_field(text.as_bytes(), out),
        Value::Binary(bytes) => put_field(bytes, out),
        Value::Pair(name, text) => {
            put_field(name.as_bytes(), out);
            put_field(text.as_bytes(), out);
        }
    }
}
