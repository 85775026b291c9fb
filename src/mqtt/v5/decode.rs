//! MQTT 5 bytes to packets: `decode` returns `Ok(None)` until a whole packet is buffered.

use super::{
    Ack, ConnAck, Connect, Disconnect, Packet, Publish, ReasonCode, SubAck, Subscribe,
    SubscriptionOptions, Unsubscribe, Will,
};
use crate::mqtt::decode::{FixedHeader, check_publish_flags, decode_whole, fixed_header};
use crate::mqtt::properties::{Properties, WILL};
use crate::mqtt::reader::Reader;
use crate::mqtt::{DecodeError, QoS, topic, wire};

/// Reads an MQTT 5 fixed header, or `Ok(None)` when more bytes are needed; refuses a packet
/// larger than `max_packet_size` as soon as its length bytes prove it.
pub fn decode_fixed_header(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<FixedHeader>, DecodeError> {
    fixed_header(buf, max_packet_size, true)
}

/// Decodes one MQTT 5 packet from the front of `buf`; returns it and the bytes it took.
pub fn decode(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    decode_whole(buf, max_packet_size, true, decode_body)
}

fn decode_body(first_byte: u8, body: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let mut reader = Reader::new(body);
    let r = &mut reader;
    let packet = match first_byte >> 4 {
        wire::CONNECT => Packet::Connect(decode_connect(r)?),
        wire::CONNACK => Packet::ConnAck(decode_connack(r)?),
        wire::PUBLISH => Packet::Publish(decode_publish(first_byte & 0x0F, r)?),
        wire::PUBACK => Packet::PubAck(decode_ack(wire::PUBACK, r)?),
        wire::PUBREC => Packet::PubRec(decode_ack(wire::PUBREC, r)?),
        wire::PUBREL => Packet::PubRel(decode_ack(wire::PUBREL, r)?),
        wire::PUBCOMP => Packet::PubComp(decode_ack(wire::PUBCOMP, r)?),
        wire::SUBSCRIBE => Packet::Subscribe(decode_subscribe(r)?),
        wire::SUBACK => Packet::SubAck(decode_suback(wire::SUBACK, r)?),
        wire::UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(r)?),
        wire::UNSUBACK => Packet::UnsubAck(decode_suback(wire::UNSUBACK, r)?),
        wire::PINGREQ => Packet::PingReq,
        wire::PINGRESP => Packet::PingResp,
        wire::DISCONNECT => Packet::Disconnect(decode_disconnect(wire::DISCONNECT, r)?),
        wire::AUTH => Packet::Auth(decode_disconnect(wire::AUTH, r)?),
        other => return Err(DecodeError::InvalidPacketType(other)),
    };
    reader.finish()?;
    Ok(packet)
}

/// Reads a reason code and checks that `packet_type` may carry it.
fn reason(packet_type: u8, reader: &mut Reader<'_>) -> Result<ReasonCode, DecodeError> {
    let code = reader.u8("reason code")?;
    ReasonCode::from_u8(code)
        .filter(|reason| reason.allowed_in(packet_type))
        .ok_or(DecodeError::InvalidReasonCode { packet_type, code })
}

fn decode_connect<'a>(reader: &mut Reader<'a>) -> Result<Connect<'a>, DecodeError> {
    if reader.binary("protocol name")? != wire::PROTOCOL_NAME {
        return Err(DecodeError::InvalidProtocolName);
    }
    let level = reader.u8("protocol level")?;
    if level != wire::PROTOCOL_LEVEL_V5 {
        return Err(DecodeError::UnsupportedProtocolLevel(level));
    }
    let flags = reader.u8("connect flags")?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ProtocolViolation(
            "CONNECT reserved flag is set",
        ));
    }
    let will_qos_bits = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    if flags & 0x04 == 0 && (will_qos_bits != 0 || will_retain) {
        return Err(DecodeError::ProtocolViolation(
            "will QoS or retain set without a will",
        ));
    }
    let keep_alive = reader.u16("keep alive")?;
    let properties = Properties::read(reader, wire::CONNECT)?;
    let client_id = reader.string("client identifier")?;
    let will = match flags & 0x04 != 0 {
        true => {
            let qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQoS(will_qos_bits))?;
            Some(read_will(reader, qos, will_retain)?)
        }
        false => None,
    };
    let username = match flags & 0x80 != 0 {
        true => Some(reader.string("user name")?),
        false => None,
    };
    let password = match flags & 0x40 != 0 {
        true => Some(reader.binary("password")?),
        false => None,
    };
    Ok(Connect {
        client_id,
        keep_alive,
        clean_start: flags & 0x02 != 0,
        username,
        password,
        will,
        properties,
    })
}

fn read_will<'a>(reader: &mut Reader<'a>, qos: QoS, retain: bool) -> Result<Will<'a>, DecodeError> {
    let properties = Properties::read(reader, WILL)?;
    let topic = reader.string("will topic")?;
    if !wire::is_valid_topic_name(topic) {
        return Err(DecodeError::InvalidTopicName);
    }
    let message = reader.binary("will message")?;
    Ok(Will {
        topic,
        message,
        qos,
        retain,
        properties,
    })
}

fn decode_connack<'a>(reader: &mut Reader<'a>) -> Result<ConnAck<'a>, DecodeError> {
    let ack_flags = reader.u8("connect acknowledge flags")?;
    if ack_flags & 0xFE != 0 {
        return Err(DecodeError::ProtocolViolation(
            "CONNACK reserved flags are set",
        ));
    }
    let reason = reason(wire::CONNACK, reader)?;
    let properties = Properties::read(reader, wire::CONNACK)?;
    Ok(ConnAck {
        session_present: ack_flags & 0x01 != 0,
        reason,
        properties,
    })
}

/// PUBLISH: topic (empty only with a topic alias), packet id when QoS > 0, properties,
/// then the payload to the end.
fn decode_publish<'a>(flags: u8, reader: &mut Reader<'a>) -> Result<Publish<'a>, DecodeError> {
    let (dup, qos, retain) = check_publish_flags(flags)?;
    let topic = reader.string("topic name")?;
    if topic.contains(['+', '#']) {
        return Err(DecodeError::InvalidTopicName);
    }
    let packet_id = match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce | QoS::ExactlyOnce => reader.packet_id()?,
    };
    let properties = Properties::read(reader, wire::PUBLISH)?;
    if topic.is_empty() && properties.topic_alias.is_none() {
        return Err(DecodeError::InvalidTopicName);
    }
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload: reader.take_rest(),
    })
}

/// PUBACK..PUBCOMP: packet id; reason code and properties only when the length says so.
fn decode_ack<'a>(packet_type: u8, reader: &mut Reader<'a>) -> Result<Ack<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let reason = match reader.is_empty() {
        true => ReasonCode::Success,
        false => reason(packet_type, reader)?,
    };
    let properties = match reader.is_empty() {
        true => Properties::default(),
        false => Properties::read(reader, packet_type)?,
    };
    Ok(Ack {
        packet_id,
        reason,
        properties,
    })
}

/// DISCONNECT or AUTH: empty means Success; otherwise a reason, then optional properties.
fn decode_disconnect<'a>(
    packet_type: u8,
    reader: &mut Reader<'a>,
) -> Result<Disconnect<'a>, DecodeError> {
    let reason = match reader.is_empty() {
        true => ReasonCode::Success,
        false => reason(packet_type, reader)?,
    };
    let properties = match reader.is_empty() {
        true => Properties::default(),
        false => Properties::read(reader, packet_type)?,
    };
    Ok(Disconnect { reason, properties })
}

fn decode_subscribe<'a>(reader: &mut Reader<'a>) -> Result<Subscribe<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let properties = Properties::read(reader, wire::SUBSCRIBE)?;
    let filters = read_list(reader, "SUBSCRIBE without topic filters", |reader| {
        let filter = read_filter(reader)?;
        let options = SubscriptionOptions::from_byte(reader.u8("subscription options")?)?;
        if options.no_local && topic::shared_parts(filter).is_some() {
            return Err(DecodeError::ProtocolViolation(
                "no local on a shared subscription",
            ));
        }
        Ok((filter, options))
    })?;
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

fn decode_unsubscribe<'a>(reader: &mut Reader<'a>) -> Result<Unsubscribe<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let properties = Properties::read(reader, wire::UNSUBSCRIBE)?;
    let filters = read_list(reader, "UNSUBSCRIBE without topic filters", read_filter)?;
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

/// SUBACK or UNSUBACK: packet id, properties, then one reason code per filter.
fn decode_suback<'a>(packet_type: u8, reader: &mut Reader<'a>) -> Result<SubAck<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let properties = Properties::read(reader, packet_type)?;
    let reasons = read_list(reader, "acknowledgement without reason codes", |reader| {
        reason(packet_type, reader)
    })?;
    Ok(SubAck {
        packet_id,
        properties,
        reasons,
    })
}

fn read_filter<'a>(reader: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let filter = reader.string("topic filter")?;
    if !topic::is_valid_filter(filter) {
        return Err(DecodeError::InvalidTopicFilter);
    }
    Ok(filter)
}

/// Reads items with `read` until the packet's end; none at all is the violation `empty`.
fn read_list<'a, T>(
    reader: &mut Reader<'a>,
    empty: &'static str,
    mut read: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut items = Vec::new();
    while !reader.is_empty() {
        items.push(read(reader)?);
    }
    match items.is_empty() {
        true => Err(DecodeError::ProtocolViolation(empty)),
        false => Ok(items),
    }
}
