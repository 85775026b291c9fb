//! SUBSCRIBE, SUBACK and UNSUBSCRIBE bodies: a packet id and a list filling the packet.
//!
//! These are the only packets whose decoding allocates: one Vec, bounded by the packet's
//! own size (each entry takes at least one wire byte).

use super::reader::Reader;
use super::wire;
use super::{DecodeError, Packet, QoS};

/// SUBSCRIBE body: packet id, then (filter, requested QoS) pairs; at least one.
pub(crate) fn decode_subscribe<'a>(reader: &mut Reader<'a>) -> Result<Packet<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let mut filters = Vec::new();
    while !reader.is_empty() {
        let filter = read_filter(reader)?;
        let qos = reader.qos("requested QoS")?;
        filters.push((filter, qos));
    }
    if filters.is_empty() {
        return Err(DecodeError::ProtocolViolation(
            "SUBSCRIBE without topic filters",
        ));
    }
    Ok(Packet::Subscribe { packet_id, filters })
}

/// SUBACK body: packet id, then one return code per requested filter.
pub(crate) fn decode_suback<'a>(reader: &mut Reader<'a>) -> Result<Packet<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let codes = reader.take_rest();
    if codes.is_empty() {
        return Err(DecodeError::ProtocolViolation(
            "SUBACK without return codes",
        ));
    }
    let return_codes = codes
        .iter()
        .map(|&code| suback_return_code(code))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Packet::SubAck {
        packet_id,
        return_codes,
    })
}

/// UNSUBSCRIBE body: packet id, then filters; at least one.
pub(crate) fn decode_unsubscribe<'a>(reader: &mut Reader<'a>) -> Result<Packet<'a>, DecodeError> {
    let packet_id = reader.packet_id()?;
    let mut filters = Vec::new();
    while !reader.is_empty() {
        filters.push(read_filter(reader)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::ProtocolViolation(
            "UNSUBSCRIBE without topic filters",
        ));
    }
    Ok(Packet::Unsubscribe { packet_id, filters })
}

fn read_filter<'a>(reader: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let filter = reader.string("topic filter")?;
    if !wire::is_valid_topic_filter(filter) {
        return Err(DecodeError::InvalidTopicFilter);
    }
    Ok(filter)
}

fn suback_return_code(code: u8) -> Result<Option<QoS>, DecodeError> {
    match code {
        wire::SUBACK_FAILURE => Ok(None),
        _ => QoS::from_u8(code)
            .map(Some)
            .ok_or(DecodeError::InvalidSubAckReturnCode(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    const MAX: usize = 1 << 16;

    #[test]
    fn subscribe_with_two_filters() {
        let bytes = [
            0x82, 10, 0x00, 0x07, 0x00, 0x01, b'a', 0x01, 0x00, 0x01, b'#', 0x02,
        ];
        let expected = Packet::Subscribe {
            packet_id: 7,
            filters: vec![("a", QoS::AtLeastOnce), ("#", QoS::ExactlyOnce)],
        };
        assert_eq!(decode(&bytes, MAX), Ok(Some((expected, bytes.len()))));
    }

    #[test]
    fn subscribe_rules() {
        assert!(matches!(
            decode(&[0x82, 0x02, 0x00, 0x01], MAX),
            Err(DecodeError::ProtocolViolation(_))
        ));
        assert_eq!(
            decode(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03], MAX),
            Err(DecodeError::InvalidQoS(3))
        );
        // Reserved bits of the requested QoS byte.
        assert_eq!(
            decode(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x41], MAX),
            Err(DecodeError::InvalidQoS(0x41))
        );
        assert_eq!(
            decode(&[0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'#', 0x00], MAX),
            Err(DecodeError::InvalidTopicFilter)
        );
        // Filter without its QoS byte.
        assert_eq!(
            decode(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], MAX),
            Err(DecodeError::UnexpectedEnd("requested QoS"))
        );
        assert_eq!(
            decode(&[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00], MAX),
            Err(DecodeError::ZeroPacketId)
        );
    }

    #[test]
    fn suback_codes() {
        let expected = Packet::SubAck {
            packet_id: 1,
            return_codes: vec![
                Some(QoS::AtMostOnce),
                Some(QoS::AtLeastOnce),
                Some(QoS::ExactlyOnce),
                None,
            ],
        };
        let bytes = [0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x02, 0x80];
        assert_eq!(decode(&bytes, MAX), Ok(Some((expected, 8))));
        assert_eq!(
            decode(&[0x90, 0x03, 0x00, 0x01, 0x03], MAX),
            Err(DecodeError::InvalidSubAckReturnCode(3))
        );
        assert_eq!(
            decode(&[0x90, 0x03, 0x00, 0x01, 0x81], MAX),
            Err(DecodeError::InvalidSubAckReturnCode(0x81))
        );
        assert!(decode(&[0x90, 0x02, 0x00, 0x01], MAX).is_err());
    }

    #[test]
    fn unsubscribe_rules() {
        let bytes = [0xA2, 0x05, 0x00, 0x09, 0x00, 0x01, b'+'];
        let expected = Packet::Unsubscribe {
            packet_id: 9,
            filters: vec!["+"],
        };
        assert_eq!(decode(&bytes, MAX), Ok(Some((expected, 7))));
        assert!(decode(&[0xA2, 0x02, 0x00, 0x09], MAX).is_err());
        assert_eq!(
            decode(&[0xA2, 0x04, 0x00, 0x09, 0x00, 0x00], MAX),
            Err(DecodeError::InvalidTopicFilter)
        );
    }
}
