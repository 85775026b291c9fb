//! Packets to bytes, appended to a caller's reusable buffer (no allocation once it has grown).
//!
//! Every packet is validated before a byte is written, so an error leaves `out` untouched,
//! and everything the encoder accepts the decoder accepts too.

use super::wire::{self, MAX_FIELD_LEN, MAX_REMAINING_LENGTH};
use super::{Connect, ConnectReturnCode, EncodeError, LastWill, Packet, Publish, QoS};

impl Packet<'_> {
    /// Appends this packet's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if let Packet::Publish(publish) = self {
            return encode_publish_into(publish, out);
        }
        let remaining_len = self.remaining_len()?;
        out.reserve(1 + wire::remaining_length_len(remaining_len) + remaining_len);
        out.push(self.first_byte());
        wire::put_remaining_length(remaining_len, out);
        self.put_body(out);
        Ok(())
    }

    /// Total bytes [`Packet::encode`] would append, or why it would fail.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let remaining_len = match self {
            Packet::Publish(publish) => check_publish(publish)?,
            _ => self.remaining_len()?,
        };
        Ok(1 + wire::remaining_length_len(remaining_len) + remaining_len)
    }

    /// Type and flags of every packet but PUBLISH.
    fn first_byte(&self) -> u8 {
        let packet_type = match self {
            Packet::Connect(_) => wire::CONNECT,
            Packet::ConnAck { .. } => wire::CONNACK,
            Packet::Publish(_) => wire::PUBLISH,
            Packet::PubAck(_) => wire::PUBACK,
            Packet::PubRec(_) => wire::PUBREC,
            Packet::PubRel(_) => wire::PUBREL,
            Packet::PubComp(_) => wire::PUBCOMP,
            Packet::Subscribe { .. } => wire::SUBSCRIBE,
            Packet::SubAck { .. } => wire::SUBACK,
            Packet::Unsubscribe { .. } => wire::UNSUBSCRIBE,
            Packet::UnsubAck(_) => wire::UNSUBACK,
            Packet::PingReq => wire::PINGREQ,
            Packet::PingResp => wire::PINGRESP,
            Packet::Disconnect => wire::DISCONNECT,
        };
        packet_type << 4 | wire::required_flags(packet_type).unwrap_or(0)
    }

    /// Checks every field and returns the remaining length (every packet but PUBLISH).
    fn remaining_len(&self) -> Result<usize, EncodeError> {
        let len = match self {
            Packet::Connect(connect) => connect_remaining_len(connect)?,
            Packet::ConnAck { .. } => 2,
            Packet::Publish(publish) => check_publish(publish)?,
            Packet::PubAck(id)
            | Packet::PubRec(id)
            | Packet::PubRel(id)
            | Packet::PubComp(id)
            | Packet::UnsubAck(id) => {
                check_packet_id(*id)?;
                2
            }
            Packet::Subscribe { packet_id, filters } => {
                check_packet_id(*packet_id)?;
                let filters = filters.iter().map(|(filter, _qos)| filter);
                list_len(filters, "SUBSCRIBE without topic filters", 1)?
            }
            Packet::SubAck {
                packet_id,
                return_codes,
            } => {
                check_packet_id(*packet_id)?;
                if return_codes.is_empty() {
                    return Err(EncodeError::ProtocolViolation(
                        "SUBACK without return codes",
                    ));
                }
                2usize.saturating_add(return_codes.len())
            }
            Packet::Unsubscribe { packet_id, filters } => {
                check_packet_id(*packet_id)?;
                list_len(filters.iter(), "UNSUBSCRIBE without topic filters", 0)?
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
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
            Packet::ConnAck {
                session_present,
                code,
            } => out.extend_from_slice(&[u8::from(*session_present), code.code()]),
            Packet::Publish(publish) => put_publish_body(publish, out),
            Packet::PubAck(id)
            | Packet::PubRec(id)
            | Packet::PubRel(id)
            | Packet::PubComp(id)
            | Packet::UnsubAck(id) => out.extend_from_slice(&id.to_be_bytes()),
            Packet::Subscribe { packet_id, filters } => {
                out.extend_from_slice(&packet_id.to_be_bytes());
                for (filter, qos) in filters {
                    put_field(filter.as_bytes(), out);
                    out.push(*qos as u8);
                }
            }
            Packet::SubAck {
                packet_id,
                return_codes,
            } => {
                out.extend_from_slice(&packet_id.to_be_bytes());
                let codes = return_codes.iter().map(|code| match code {
                    Some(qos) => *qos as u8,
                    None => wire::SUBACK_FAILURE,
                });
                out.extend(codes);
            }
            Packet::Unsubscribe { packet_id, filters } => {
                out.extend_from_slice(&packet_id.to_be_bytes());
                for filter in filters {
                    put_field(filter.as_bytes(), out);
                }
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
        }
    }
}

/// A packet with no field that can be invalid: the acks (a packet id), CONNACK, and the
/// empty ones. Encoding it cannot fail, so it returns nothing; use [`Packet::encode`] for the
/// packets whose fields must be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedPacket {
    /// CONNACK with its session-present flag and return code.
    ConnAck {
        /// Session present (only meaningful when the code is `Accepted`).
        session_present: bool,
        /// The broker's answer.
        code: ConnectReturnCode,
    },
    /// PUBACK: QoS 1 PUBLISH received.
    PubAck(u16),
    /// PUBREC: QoS 2 PUBLISH received (step 1 of 3).
    PubRec(u16),
    /// PUBREL: PUBREC received (step 2 of 3).
    PubRel(u16),
    /// PUBCOMP: PUBREL received (step 3 of 3).
    PubComp(u16),
    /// UNSUBACK.
    UnsubAck(u16),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect,
}

impl FixedPacket {
    /// Appends this packet's wire form to `out` (2 or 4 bytes).
    ///
    /// Packet ids come from a decoded packet (which refuses 0) or from a sender's own
    /// allocator (which skips 0); a zero id is a bug in the caller, caught in debug builds.
    pub fn encode(self, out: &mut Vec<u8>) {
        let with_id = |packet_type: u8, id: u16| {
            debug_assert_ne!(id, 0, "packet id 0 in an ack");
            let first = packet_type << 4 | wire::required_flags(packet_type).unwrap_or(0);
            let [hi, lo] = id.to_be_bytes();
            [first, 2, hi, lo]
        };
        match self {
            FixedPacket::ConnAck {
                session_present,
                code,
            } => out.extend_from_slice(&[
                wire::CONNACK << 4,
                2,
                u8::from(session_present),
                code.code(),
            ]),
            FixedPacket::PubAck(id) => out.extend_from_slice(&with_id(wire::PUBACK, id)),
            FixedPacket::PubRec(id) => out.extend_from_slice(&with_id(wire::PUBREC, id)),
            FixedPacket::PubRel(id) => out.extend_from_slice(&with_id(wire::PUBREL, id)),
            FixedPacket::PubComp(id) => out.extend_from_slice(&with_id(wire::PUBCOMP, id)),
            FixedPacket::UnsubAck(id) => out.extend_from_slice(&with_id(wire::UNSUBACK, id)),
            FixedPacket::PingReq => out.extend_from_slice(&[wire::PINGREQ << 4, 0]),
            FixedPacket::PingResp => out.extend_from_slice(&[wire::PINGRESP << 4, 0]),
            FixedPacket::Disconnect => out.extend_from_slice(&[wire::DISCONNECT << 4, 0]),
        }
    }
}

/// Appends a PUBLISH to `out` (the hot path: no allocation beyond `out` growing).
///
/// `packet_id` must be non-zero for QoS 1 and 2 and is ignored for QoS 0.
pub fn encode_publish_into(publish: &Publish<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let remaining_len = check_publish(publish)?;
    out.reserve(1 + wire::remaining_length_len(remaining_len) + remaining_len);
    let first_byte = wire::PUBLISH << 4
        | u8::from(publish.dup) << 3
        | (publish.qos as u8) << 1
        | u8::from(publish.retain);
    out.push(first_byte);
    wire::put_remaining_length(remaining_len, out);
    put_publish_body(publish, out);
    Ok(())
}

/// Total bytes a PUBLISH takes on the wire, fixed header included.
///
/// Exact for every PUBLISH [`encode_publish_into`] accepts; saturates instead of overflowing.
pub fn encoded_publish_len(topic_len: usize, payload_len: usize, qos: QoS) -> usize {
    let remaining_len = publish_remaining_len(topic_len, payload_len, qos);
    remaining_len.saturating_add(1 + wire::remaining_length_len(remaining_len))
}

fn publish_remaining_len(topic_len: usize, payload_len: usize, qos: QoS) -> usize {
    let packet_id_len: usize = match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce | QoS::ExactlyOnce => 2,
    };
    (2 + packet_id_len)
        .saturating_add(topic_len)
        .saturating_add(payload_len)
}

/// Checks a PUBLISH and returns its remaining length.
fn check_publish(publish: &Publish<'_>) -> Result<usize, EncodeError> {
    if publish.topic.len() > MAX_FIELD_LEN {
        return Err(EncodeError::FieldTooLong);
    }
    check_topic_name(publish.topic)?;
    match publish.qos {
        QoS::AtMostOnce if publish.dup => {
            return Err(EncodeError::ProtocolViolation("DUP set on a QoS 0 PUBLISH"));
        }
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce | QoS::ExactlyOnce => check_packet_id(publish.packet_id)?,
    }
    let remaining_len =
        publish_remaining_len(publish.topic.len(), publish.payload.len(), publish.qos);
    if remaining_len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(remaining_len)
}

fn put_publish_body(publish: &Publish<'_>, out: &mut Vec<u8>) {
    put_field(publish.topic.as_bytes(), out);
    if publish.qos != QoS::AtMostOnce {
        out.extend_from_slice(&publish.packet_id.to_be_bytes());
    }
    out.extend_from_slice(publish.payload);
}

const CONNECT_VARIABLE_HEADER_LEN: usize = 2 + wire::PROTOCOL_NAME.len() + 1 + 1 + 2;

fn connect_remaining_len(connect: &Connect<'_>) -> Result<usize, EncodeError> {
    if connect.password.is_some() && connect.username.is_none() {
        return Err(EncodeError::ProtocolViolation(
            "password without a user name",
        ));
    }
    let mut len = CONNECT_VARIABLE_HEADER_LEN + string_len(connect.client_id)?;
    if let Some(will) = &connect.will {
        check_topic_name(will.topic)?;
        len += string_len(will.topic)? + binary_len(will.message)?;
    }
    if let Some(username) = connect.username {
        len += string_len(username)?;
    }
    if let Some(password) = connect.password {
        len += binary_len(password)?;
    }
    Ok(len)
}

fn connect_flags(connect: &Connect<'_>) -> u8 {
    let will_flags = match &connect.will {
        Some(LastWill { qos, retain, .. }) => 0x04 | (*qos as u8) << 3 | u8::from(*retain) << 5,
        None => 0,
    };
    u8::from(connect.username.is_some()) << 7
        | u8::from(connect.password.is_some()) << 6
        | will_flags
        | u8::from(connect.clean_session) << 1
}

fn put_connect(connect: &Connect<'_>, out: &mut Vec<u8>) {
    put_field(wire::PROTOCOL_NAME, out);
    out.push(wire::PROTOCOL_LEVEL);
    out.push(connect_flags(connect));
    out.extend_from_slice(&connect.keep_alive.to_be_bytes());
    put_field(connect.client_id.as_bytes(), out);
    if let Some(will) = &connect.will {
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

/// Remaining length of a SUBSCRIBE (`per_entry` = 1 QoS byte) or UNSUBSCRIBE (0).
fn list_len<'s>(
    filters: impl ExactSizeIterator<Item = &'s &'s str>,
    empty_rule: &'static str,
    per_entry: usize,
) -> Result<usize, EncodeError> {
    if filters.len() == 0 {
        return Err(EncodeError::ProtocolViolation(empty_rule));
    }
    let mut len = 2usize;
    for filter in filters {
        if !wire::is_valid_topic_filter(filter) {
            return Err(EncodeError::InvalidTopicFilter);
        }
        len = len.saturating_add(string_len(filter)? + per_entry);
    }
    Ok(len)
}

/// Refuses packet id 0, which MQTT reserves.
pub(super) fn check_packet_id(id: u16) -> Result<(), EncodeError> {
    match id {
        0 => Err(EncodeError::ZeroPacketId),
        _ => Ok(()),
    }
}

fn check_topic_name(topic: &str) -> Result<(), EncodeError> {
    if !wire::is_valid_topic_name(topic) || topic.contains('\0') {
        return Err(EncodeError::InvalidTopicName);
    }
    Ok(())
}

/// Wire bytes of a string field; rejects U+0000 and overlong strings.
pub(super) fn string_len(text: &str) -> Result<usize, EncodeError> {
    if text.contains('\0') {
        return Err(EncodeError::NullCharacter);
    }
    binary_len(text.as_bytes())
}

/// Wire bytes of a length-prefixed field.
pub(super) fn binary_len(bytes: &[u8]) -> Result<usize, EncodeError> {
    if bytes.len() > MAX_FIELD_LEN {
        return Err(EncodeError::FieldTooLong);
    }
    Ok(2 + bytes.len())
}

/// Appends a length-prefixed field whose length was checked.
pub(super) fn put_field(bytes: &[u8], out: &mut Vec<u8>) {
    debug_assert!(bytes.len() <= MAX_FIELD_LEN);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}
