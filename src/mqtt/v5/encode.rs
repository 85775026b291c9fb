//! MQTT 5 packets to bytes, appended to a caller's reusable buffer.
//!
//! Every packet is validated before a byte is written (an error leaves `out` untouched), with
//! the decoder's rules: what the encoder accepts, the decoder accepts.

use super::{
    Ack, ConnAck, Connect, Disconnect, Packet, Publish, ReasonCode, SubAck, Subscribe, Unsubscribe,
};
use crate::mqtt::encode::{binary_len, check_packet_id, put_field, string_len};
use crate::mqtt::properties::{Properties, WILL};
use crate::mqtt::wire::{self, MAX_REMAINING_LENGTH};
use crate::mqtt::{EncodeError, QoS, topic};

impl Packet<'_> {
    /// Appends this packet's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let remaining_len = self.remaining_len()?;
        out.reserve(1 + wire::remaining_length_len(remaining_len) + remaining_len);
        out.push(self.first_byte());
        wire::put_remaining_length(remaining_len, out);
        self.put_body(out);
        Ok(())
    }

    /// Total bytes [`Packet::encode`] would append, or why it would fail.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let remaining_len = self.remaining_len()?;
        Ok(1 + wire::remaining_length_len(remaining_len) + remaining_len)
    }

    fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => wire::CONNECT,
            Packet::ConnAck(_) => wire::CONNACK,
            Packet::Publish(_) => wire::PUBLISH,
            Packet::PubAck(_) => wire::PUBACK,
            Packet::PubRec(_) => wire::PUBREC,
            Packet::PubRel(_) => wire::PUBREL,
            Packet::PubComp(_) => wire::PUBCOMP,
            Packet::Subscribe(_) => wire::SUBSCRIBE,
            Packet::SubAck(_) => wire::SUBACK,
            Packet::Unsubscribe(_) => wire::UNSUBSCRIBE,
            Packet::UnsubAck(_) => wire::UNSUBACK,
            Packet::PingReq => wire::PINGREQ,
            Packet::PingResp => wire::PINGRESP,
            Packet::Disconnect(_) => wire::DISCONNECT,
            Packet::Auth(_) => wire::AUTH,
        }
    }

    fn first_byte(&self) -> u8 {
        if let Packet::Publish(publish) = self {
            return publish_first_byte(publish);
        }
        let packet_type = self.packet_type();
        packet_type << 4 | wire::required_flags(packet_type).unwrap_or(0)
    }

    /// Checks every field and returns the remaining length.
    fn remaining_len(&self) -> Result<usize, EncodeError> {
        let packet_type = self.packet_type();
        let len = match self {
            Packet::Connect(connect) => connect_len(connect)?,
            Packet::ConnAck(connack) => {
                check_reason(wire::CONNACK, connack.reason)?;
                2 + connack.properties.wire_len(wire::CONNACK)?
            }
            Packet::Publish(publish) => check_publish(publish)?,
            Packet::PubAck(ack)
            | Packet::PubRec(ack)
            | Packet::PubRel(ack)
            | Packet::PubComp(ack) => ack_len(packet_type, ack)?,
            Packet::Subscribe(subscribe) => subscribe_len(subscribe)?,
            Packet::SubAck(suback) | Packet::UnsubAck(suback) => suback_len(packet_type, suback)?,
            Packet::Unsubscribe(unsubscribe) => unsubscribe_len(unsubscribe)?,
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(disconnect) | Packet::Auth(disconnect) => {
                disconnect_len(packet_type, disconnect)?
            }
        };
        if len > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge);
        }
        Ok(len)
    }

    /// Writes the variable header and payload; fields were checked by `remaining_len`.
    fn put_body(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Connect(connect) => put_connect(connect, out),
            Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties,
            }) => {
                out.extend_from_slice(&[u8::from(*session_present), reason.code()]);
                properties.put(out);
            }
            Packet::Publish(publish) => put_publish_body(publish, out),
            Packet::PubAck(ack)
            | Packet::PubRec(ack)
            | Packet::PubRel(ack)
            | Packet::PubComp(ack) => {
                out.extend_from_slice(&ack.packet_id.to_be_bytes());
                put_reason_and_properties(ack.reason, &ack.properties, out);
            }
            Packet::Subscribe(subscribe) => {
                out.extend_from_slice(&subscribe.packet_id.to_be_bytes());
                subscribe.properties.put(out);
                for (filter, options) in &subscribe.filters {
                    put_field(filter.as_bytes(), out);
                    out.push(options.to_byte());
                }
            }
            Packet::SubAck(suback) | Packet::UnsubAck(suback) => {
                out.extend_from_slice(&suback.packet_id.to_be_bytes());
                suback.properties.put(out);
                out.extend(suback.reasons.iter().map(|reason| reason.code()));
            }
            Packet::Unsubscribe(unsubscribe) => {
                out.extend_from_slice(&unsubscribe.packet_id.to_be_bytes());
                unsubscribe.properties.put(out);
                for filter in &unsubscribe.filters {
                    put_field(filter.as_bytes(), out);
                }
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(disconnect) | Packet::Auth(disconnect) => {
                put_reason_and_properties(disconnect.reason, &disconnect.properties, out);
            }
        }
    }
}

/// Appends an MQTT 5 PUBLISH to `out` (no allocation beyond `out` growing).
pub fn encode_publish_into(publish: &Publish<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let remaining_len = check_publish(publish)?;
    out.reserve(1 + wire::remaining_length_len(remaining_len) + remaining_len);
    out.push(publish_first_byte(publish));
    wire::put_remaining_length(remaining_len, out);
    put_publish_body(publish, out);
    Ok(())
}

fn publish_first_byte(publish: &Publish<'_>) -> u8 {
    wire::PUBLISH << 4
        | u8::from(publish.dup) << 3
        | (publish.qos as u8) << 1
        | u8::from(publish.retain)
}

/// Checks a PUBLISH and returns its remaining length.
fn check_publish(publish: &Publish<'_>) -> Result<usize, EncodeError> {
    let topic = publish.topic;
    let aliased = publish.properties.topic_alias.is_some();
    if (topic.is_empty() && !aliased) || topic.contains(['+', '#', '\0']) {
        return Err(EncodeError::InvalidTopicName);
    }
    let mut len = string_len(topic)?;
    match publish.qos {
        QoS::AtMostOnce if publish.dup => {
            return Err(EncodeError::ProtocolViolation("DUP set on a QoS 0 PUBLISH"));
        }
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce | QoS::ExactlyOnce => {
            check_packet_id(publish.packet_id)?;
            len += 2;
        }
    }
    len += publish.properties.wire_len(wire::PUBLISH)?;
    Ok(len.saturating_add(publish.payload.len()))
}

fn put_publish_body(publish: &Publish<'_>, out: &mut Vec<u8>) {
    put_field(publish.topic.as_bytes(), out);
    if publish.qos != QoS::AtMostOnce {
        out.extend_from_slice(&publish.packet_id.to_be_bytes());
    }
    publish.properties.put(out);
    out.extend_from_slice(publish.payload);
}

/// Protocol name, level, flags, keep alive.
const CONNECT_VARIABLE_HEADER_LEN: usize = 2 + wire::PROTOCOL_NAME.len() + 1 + 1 + 2;

fn connect_len(connect: &Connect<'_>) -> Result<usize, EncodeError> {
    let mut len = CONNECT_VARIABLE_HEADER_LEN
        + connect.properties.wire_len(wire::CONNECT)?
        + string_len(connect.client_id)?;
    if let Some(will) = &connect.will {
        if !wire::is_valid_topic_name(will.topic) || will.topic.contains('\0') {
            return Err(EncodeError::InvalidTopicName);
        }
        len += will.properties.wire_len(WILL)? + string_len(will.topic)?;
        len += binary_len(will.message)?;
    }
    if let Some(username) = connect.username {
        len += string_len(username)?;
    }
    if let Some(password) = connect.password {
        len += binary_len(password)?;
    }
    Ok(len)
}

fn put_connect(connect: &Connect<'_>, out: &mut Vec<u8>) {
    let will_flags = match &connect.will {
        Some(will) => 0x04 | (will.qos as u8) << 3 | u8::from(will.retain) << 5,
        None => 0,
    };
    let flags = u8::from(connect.username.is_some()) << 7
        | u8::from(connect.password.is_some()) << 6
        | will_flags
        | u8::from(connect.clean_start) << 1;
    put_field(wire::PROTOCOL_NAME, out);
    out.push(wire::PROTOCOL_LEVEL_V5);
    out.push(flags);
    out.extend_from_slice(&connect.keep_alive.to_be_bytes());
    connect.properties.put(out);
    put_field(connect.client_id.as_bytes(), out);
    if let Some(will) = &connect.will {
        will.properties.put(out);
        put_field(will.topic.as_bytes(), out);
        put_field(will.message, out);
    }
    if let Some(username) = connect.username {
        put_field(username.as_bytes(), out);
    }
    if let Some(password) = connect.password {
        put_field(password, out);
    }
}

/// An ack takes its short form (id only) when it is a bare success, as the decoder reads it.
fn ack_len(packet_type: u8, ack: &Ack<'_>) -> Result<usize, EncodeError> {
    check_packet_id(ack.packet_id)?;
    Ok(2 + reason_and_properties_len(packet_type, ack.reason, &ack.properties)?)
}

fn disconnect_len(packet_type: u8, disconnect: &Disconnect<'_>) -> Result<usize, EncodeError> {
    reason_and_properties_len(packet_type, disconnect.reason, &disconnect.properties)
}

/// Bytes of an optional reason code and optional properties: none for a bare success.
fn reason_and_properties_len(
    packet_type: u8,
    reason: ReasonCode,
    properties: &Properties<'_>,
) -> Result<usize, EncodeError> {
    check_reason(packet_type, reason)?;
    let properties_len = properties.wire_len(packet_type)?;
    Ok(match (reason, properties.is_empty()) {
        (ReasonCode::Success, true) => 0,
        (_, true) => 1,
        (_, false) => 1 + properties_len,
    })
}

fn put_reason_and_properties(reason: ReasonCode, properties: &Properties<'_>, out: &mut Vec<u8>) {
    match (reason, properties.is_empty()) {
        (ReasonCode::Success, true) => {}
        (_, true) => out.push(reason.code()),
        (_, false) => {
            out.push(reason.code());
            properties.put(out);
        }
    }
}

fn subscribe_len(subscribe: &Subscribe<'_>) -> Result<usize, EncodeError> {
    check_packet_id(subscribe.packet_id)?;
    if subscribe.filters.is_empty() {
        return Err(EncodeError::ProtocolViolation(
            "SUBSCRIBE without topic filters",
        ));
    }
    let mut len = 2 + subscribe.properties.wire_len(wire::SUBSCRIBE)?;
    for (filter, options) in &subscribe.filters {
        check_filter(filter)?;
        if options.no_local && topic::shared_parts(filter).is_some() {
            return Err(EncodeError::ProtocolViolation(
                "no local on a shared subscription",
            ));
        }
        len = len.saturating_add(string_len(filter)? + 1);
    }
    Ok(len)
}

fn unsubscribe_len(unsubscribe: &Unsubscribe<'_>) -> Result<usize, EncodeError> {
    check_packet_id(unsubscribe.packet_id)?;
    if unsubscribe.filters.is_empty() {
        return Err(EncodeError::ProtocolViolation(
            "UNSUBSCRIBE without topic filters",
        ));
    }
    let mut len = 2 + unsubscribe.properties.wire_len(wire::UNSUBSCRIBE)?;
    for filter in &unsubscribe.filters {
        check_filter(filter)?;
        len = len.saturating_add(string_len(filter)?);
    }
    Ok(len)
}

fn suback_len(packet_type: u8, suback: &SubAck<'_>) -> Result<usize, EncodeError> {
    check_packet_id(suback.packet_id)?;
    if suback.reasons.is_empty() {
        return Err(EncodeError::ProtocolViolation(
            "acknowledgement without reason codes",
        ));
    }
    for &reason in &suback.reasons {
        check_reason(packet_type, reason)?;
    }
    let len = 2 + suback.properties.wire_len(packet_type)?;
    Ok(len.saturating_add(suback.reasons.len()))
}

fn check_reason(packet_type: u8, reason: ReasonCode) -> Result<(), EncodeError> {
    match reason.allowed_in(packet_type) {
        true => Ok(()),
        false => Err(EncodeError::InvalidReasonCode {
            packet_type,
            code: reason.code(),
        }),
    }
}

fn check_filter(filter: &str) -> Result<(), EncodeError> {
    match topic::is_valid_filter(filter) {
        true => Ok(()),
        false => Err(EncodeError::InvalidTopicFilter),
    }
}
