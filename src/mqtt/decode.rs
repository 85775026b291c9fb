//! Bytes to packets: `decode` returns `Ok(None)` until a whole packet is buffered.
//!
//! [`decode_fixed_header`] is the cheap check (type, flags, length, size limit) that runs
//! before any body byte is looked at; [`decode`] then parses the body with a [`Reader`] that
//! cannot read past the packet, and insists that the fields fill it exactly.

use super::decode_connect::{decode_connack, decode_connect};
use super::decode_subscribe::{decode_suback, decode_subscribe, decode_unsubscribe};
use super::reader::Reader;
use super::wire::{self, fixed_remaining_length, required_flags};
use super::{DecodeError, Packet, Publish, QoS};

/// The fixed header of a packet: type and flags byte, remaining length, and its own length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// First byte: packet type (high nibble) and flags (low nibble).
    pub first_byte: u8,
    /// Remaining length (variable header + payload).
    pub remaining_len: usize,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// Packet type, 1 (CONNECT) to 14 (DISCONNECT).
    pub fn packet_type(&self) -> u8 {
        self.first_byte >> 4
    }

    /// Total bytes of the packet: fixed header plus remaining length.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Reads the fixed header, or `Ok(None)` when more bytes are needed.
///
/// Rejects a reserved type, wrong flags, a fifth length byte, a wrong length for fixed-size
/// packets, and a packet larger than `max_packet_size` (as soon as the length bytes read so
/// far prove it, without waiting for the body). Non-minimal length encodings are accepted;
/// `header_len` counts the bytes actually used.
pub fn decode_fixed_header(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<FixedHeader>, DecodeError> {
    fixed_header(buf, max_packet_size, false)
}

/// The fixed header of an MQTT 3.1.1 packet, or of an MQTT 5 one when `v5` is set (which
/// adds AUTH and lets acks, CONNACK and DISCONNECT carry reason codes and properties).
pub(crate) fn fixed_header(
    buf: &[u8],
    max_packet_size: usize,
    v5: bool,
) -> Result<Option<FixedHeader>, DecodeError> {
    let Some((&first_byte, length_bytes)) = buf.split_first() else {
        return Ok(None);
    };
    check_first_byte(first_byte, v5)?;
    let mut remaining_len = 0usize;
    for (index, &byte) in length_bytes.iter().take(4).enumerate() {
        remaining_len |= usize::from(byte & 0x7F) << (7 * index);
        let header_len = index + 2;
        if byte & 0x80 == 0 {
            let header = FixedHeader {
                first_byte,
                remaining_len,
                header_len,
            };
            check_size(header.packet_len(), max_packet_size)?;
            check_fixed_length(header.packet_type(), remaining_len, v5)?;
            return Ok(Some(header));
        }
        if index == 3 {
            return Err(DecodeError::MalformedRemainingLength);
        }
        // More length bytes follow, so the packet is at least this big already.
        check_size(header_len + 1 + remaining_len, max_packet_size)?;
    }
    Ok(None)
}

/// Decodes one packet from the front of `buf`; returns it and the bytes it took.
pub fn decode(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    decode_whole(buf, max_packet_size, false, decode_body)
}

/// Decodes the packet at the front of `buf` with `decode_body` (given the first byte and the
/// body) once all of it is buffered, in MQTT 5 when `v5`; returns it and the bytes it took.
pub(crate) fn decode_whole<'a, P>(
    buf: &'a [u8],
    max_packet_size: usize,
    v5: bool,
    decode_body: impl FnOnce(u8, &'a [u8]) -> Result<P, DecodeError>,
) -> Result<Option<(P, usize)>, DecodeError> {
    let Some(header) = fixed_header(buf, max_packet_size, v5)? else {
        return Ok(None);
    };
    let packet_len = header.packet_len();
    let Some(body) = buf.get(header.header_len..packet_len) else {
        return Ok(None);
    };
    let packet = decode_body(header.first_byte, body)?;
    Ok(Some((packet, packet_len)))
}

/// Checks the packet type and the flag bits its type prescribes.
fn check_first_byte(first_byte: u8, v5: bool) -> Result<(), DecodeError> {
    let packet_type = first_byte >> 4;
    let flags = first_byte & 0x0F;
    let last_type = if v5 { wire::AUTH } else { wire::DISCONNECT };
    if !(wire::CONNECT..=last_type).contains(&packet_type) {
        return Err(DecodeError::InvalidPacketType(packet_type));
    }
    match required_flags(packet_type) {
        Some(required) if flags != required => {
            Err(DecodeError::InvalidFlags { packet_type, flags })
        }
        Some(_) => Ok(()),
        None => check_publish_flags(flags).map(|_| ()),
    }
}

/// PUBLISH flags: DUP (bit 3), QoS (bits 2-1, 3 is invalid), RETAIN (bit 0).
pub(crate) fn check_publish_flags(flags: u8) -> Result<(bool, QoS, bool), DecodeError> {
    let dup = flags & 0b1000 != 0;
    let qos_bits = (flags >> 1) & 0b11;
    let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::InvalidQoS(qos_bits))?;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::InvalidFlags {
            packet_type: wire::PUBLISH,
            flags,
        });
    }
    Ok((dup, qos, flags & 0b0001 != 0))
}

fn check_size(size: usize, max: usize) -> Result<(), DecodeError> {
    if size > max {
        return Err(DecodeError::PacketTooLarge { size, max });
    }
    Ok(())
}

fn check_fixed_length(packet_type: u8, len: usize, v5: bool) -> Result<(), DecodeError> {
    let fixed = match v5 {
        false => fixed_remaining_length(packet_type),
        true if matches!(packet_type, wire::PINGREQ | wire::PINGRESP) => Some(0),
        true => None,
    };
    match fixed {
        Some(expected) if expected != len => {
            Err(DecodeError::InvalidRemainingLength { packet_type, len })
        }
        _ => Ok(()),
    }
}

/// Parses the body of a packet whose fixed header has been checked.
fn decode_body(first_byte: u8, body: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let mut reader = Reader::new(body);
    let packet_type = first_byte >> 4;
    let packet = match packet_type {
        wire::CONNECT => Packet::Connect(decode_connect(&mut reader)?),
        wire::CONNACK => decode_connack(&mut reader)?,
        wire::PUBLISH => Packet::Publish(decode_publish(first_byte & 0x0F, &mut reader)?),
        wire::PUBACK => Packet::PubAck(reader.packet_id()?),
        wire::PUBREC => Packet::PubRec(reader.packet_id()?),
        wire::PUBREL => Packet::PubRel(reader.packet_id()?),
        wire::PUBCOMP => Packet::PubComp(reader.packet_id()?),
        wire::SUBSCRIBE => decode_subscribe(&mut reader)?,
        wire::SUBACK => decode_suback(&mut reader)?,
        wire::UNSUBSCRIBE => decode_unsubscribe(&mut reader)?,
        wire::UNSUBACK => Packet::UnsubAck(reader.packet_id()?),
        wire::PINGREQ => Packet::PingReq,
        wire::PINGRESP => Packet::PingResp,
        wire::DISCONNECT => Packet::Disconnect,
        other => return Err(DecodeError::InvalidPacketType(other)),
    };
    reader.finish()?;
    Ok(packet)
}

/// PUBLISH body: topic name, packet id when QoS > 0, then the payload to the end.
fn decode_publish<'a>(flags: u8, reader: &mut Reader<'a>) -> Result<Publish<'a>, DecodeError> {
    let (dup, qos, retain) = check_publish_flags(flags)?;
    let topic = reader.string("topic name")?;
    if !wire::is_valid_topic_name(topic) {
        return Err(DecodeError::InvalidTopicName);
    }
    let packet_id = match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce | QoS::ExactlyOnce => reader.packet_id()?,
    };
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        payload: reader.take_rest(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn header(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        decode_fixed_header(buf, MAX)
    }

    #[test]
    fn fixed_header_needs_its_length_bytes() {
        assert_eq!(header(&[]), Ok(None));
        assert_eq!(header(&[0x30]), Ok(None));
        assert_eq!(header(&[0x30, 0x80]), Ok(None));
        assert_eq!(header(&[0x30, 0x80, 0x80, 0x80]), Ok(None));
        let h = header(&[0x30, 0x80, 0x01]).unwrap().unwrap();
        assert_eq!(
            (h.remaining_len, h.header_len, h.packet_len()),
            (128, 3, 131)
        );
    }

    #[test]
    fn fifth_length_byte_is_an_error() {
        assert_eq!(
            decode_fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF], usize::MAX),
            Err(DecodeError::MalformedRemainingLength)
        );
        assert_eq!(
            decode_fixed_header(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01], usize::MAX),
            Err(DecodeError::MalformedRemainingLength)
        );
    }

    #[test]
    fn non_minimal_length_is_accepted_and_counted() {
        // PINGREQ with remaining length 0 written in two bytes.
        assert_eq!(
            decode(&[0xC0, 0x80, 0x00], MAX),
            Ok(Some((Packet::PingReq, 3)))
        );
    }

    #[test]
    fn oversize_is_detected_from_the_header_alone() {
        // 2 MiB PUBLISH announced, max 1 MiB, no body bytes present.
        assert_eq!(
            header(&[0x30, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::PacketTooLarge {
                size: 5 + 2_097_152,
                max: MAX
            })
        );
        // The continuation bits already prove the packet is too large for a tiny max.
        assert!(matches!(
            decode_fixed_header(&[0x30, 0xFF], 100),
            Err(DecodeError::PacketTooLarge { .. })
        ));
        // Exactly the maximum is fine.
        assert_eq!(
            decode_fixed_header(&[0x30, 98], 100).map(|h| h.is_some()),
            Ok(true)
        );
        assert!(decode_fixed_header(&[0x30, 99], 100).is_err());
    }

    #[test]
    fn reserved_types_and_flags_are_rejected() {
        assert_eq!(
            header(&[0x00, 0x00]),
            Err(DecodeError::InvalidPacketType(0))
        );
        assert_eq!(
            header(&[0xF0, 0x00]),
            Err(DecodeError::InvalidPacketType(15))
        );
        assert_eq!(
            header(&[0xC1, 0x00]),
            Err(DecodeError::InvalidFlags {
                packet_type: 12,
                flags: 1
            })
        );
        // PUBREL, SUBSCRIBE and UNSUBSCRIBE need 0b0010.
        for packet_type in [6u8, 8, 10] {
            assert!(header(&[packet_type << 4, 2]).is_err(), "{packet_type}");
            assert!(header(&[packet_type << 4 | 2, 2]).is_ok(), "{packet_type}");
        }
        assert_eq!(header(&[0x40, 0x02]).map(|h| h.is_some()), Ok(true));
        assert!(header(&[0x42, 0x02]).is_err());
    }

    #[test]
    fn publish_qos3_and_dup_on_qos0_are_rejected() {
        assert_eq!(header(&[0x36, 0x03]), Err(DecodeError::InvalidQoS(3)));
        assert!(matches!(
            header(&[0x38, 0x03]),
            Err(DecodeError::InvalidFlags { .. })
        ));
        assert!(header(&[0x3B, 0x05]).is_ok()); // DUP, QoS 1, RETAIN
    }

    #[test]
    fn fixed_size_packets_must_announce_their_size() {
        assert_eq!(
            header(&[0xC0, 0x01]),
            Err(DecodeError::InvalidRemainingLength {
                packet_type: 12,
                len: 1
            })
        );
        assert!(header(&[0x40, 0x03]).is_err());
        assert!(header(&[0x20, 0x01]).is_err());
    }

    #[test]
    fn publish_decodes_borrowing_the_buffer() {
        let bytes = [0x32, 0x07, 0x00, 0x01, b't', 0x12, 0x34, b'h', b'i'];
        let expected = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t",
            packet_id: 0x1234,
            payload: b"hi",
        };
        assert_eq!(
            decode(&bytes, MAX),
            Ok(Some((Packet::Publish(expected), 9)))
        );
    }

    #[test]
    fn publish_rules_are_enforced() {
        // QoS 1 with packet id 0.
        assert_eq!(
            decode(&[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00], MAX),
            Err(DecodeError::ZeroPacketId)
        );
        // Wildcard in topic name.
        assert_eq!(
            decode(&[0x30, 0x03, 0x00, 0x01, b'#'], MAX),
            Err(DecodeError::InvalidTopicName)
        );
        // Empty topic name.
        assert_eq!(
            decode(&[0x30, 0x02, 0x00, 0x00], MAX),
            Err(DecodeError::InvalidTopicName)
        );
        // Invalid UTF-8 topic.
        assert_eq!(
            decode(&[0x30, 0x03, 0x00, 0x01, 0xC3], MAX),
            Err(DecodeError::InvalidUtf8)
        );
        // Topic longer than the packet.
        assert_eq!(
            decode(&[0x30, 0x03, 0x00, 0x05, b'a'], MAX),
            Err(DecodeError::UnexpectedEnd("topic name"))
        );
    }

    #[test]
    fn ack_with_zero_id_is_rejected() {
        assert_eq!(
            decode(&[0x40, 0x02, 0, 0], MAX),
            Err(DecodeError::ZeroPacketId)
        );
        assert_eq!(
            decode(&[0x40, 0x02, 0x01, 0x02], MAX),
            Ok(Some((Packet::PubAck(0x0102), 4)))
        );
    }
}
