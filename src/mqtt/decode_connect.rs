//! CONNECT and CONNACK bodies: protocol name and level, the connect flags and their rules.

use super::reader::Reader;
use super::wire;
use super::{Connect, ConnectReturnCode, DecodeError, LastWill, Packet, QoS};

const RESERVED: u8 = 0x01;
const CLEAN_SESSION: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

/// The connect flags byte of a CONNECT, checked against MQTT 3.1.1 section 3.1.2.
struct ConnectFlags {
    clean_session: bool,
    will: Option<(QoS, bool)>,
    username: bool,
    password: bool,
}

impl ConnectFlags {
    fn read(byte: u8) -> Result<Self, DecodeError> {
        if byte & RESERVED != 0 {
            return Err(DecodeError::ProtocolViolation(
                "CONNECT reserved flag is set",
            ));
        }
        let will_qos_bits = (byte >> WILL_QOS_SHIFT) & 0b11;
        let will_retain = byte & WILL_RETAIN != 0;
        let will = if byte & WILL != 0 {
            let qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQoS(will_qos_bits))?;
            Some((qos, will_retain))
        } else if will_qos_bits != 0 || will_retain {
            return Err(DecodeError::ProtocolViolation(
                "will QoS or retain set without a will",
            ));
        } else {
            None
        };
        let username = byte & USERNAME != 0;
        let password = byte & PASSWORD != 0;
        if password && !username {
            return Err(DecodeError::ProtocolViolation(
                "password without a user name",
            ));
        }
        Ok(ConnectFlags {
            clean_session: byte & CLEAN_SESSION != 0,
            will,
            username,
            password,
        })
    }
}

/// CONNECT body: variable header, then client id, will, user name, password.
pub(crate) fn decode_connect<'a>(reader: &mut Reader<'a>) -> Result<Connect<'a>, DecodeError> {
    if reader.binary("protocol name")? != wire::PROTOCOL_NAME {
        return Err(DecodeError::InvalidProtocolName);
    }
    let level = reader.u8("protocol level")?;
    if level != wire::PROTOCOL_LEVEL {
        return Err(DecodeError::UnsupportedProtocolLevel(level));
    }
    let flags = ConnectFlags::read(reader.u8("connect flags")?)?;
    let keep_alive = reader.u16("keep alive")?;
    let client_id = reader.string("client identifier")?;
    let will = match flags.will {
        Some((qos, retain)) => Some(read_will(reader, qos, retain)?),
        None => None,
    };
    let username = match flags.username {
        true => Some(reader.string("user name")?),
        false => None,
    };
    let password = match flags.password {
        true => Some(reader.binary("password")?),
        false => None,
    };
    Ok(Connect {
        client_id,
        keep_alive,
        clean_session: flags.clean_session,
        username,
        password,
        will,
    })
}

fn read_will<'a>(
    reader: &mut Reader<'a>,
    qos: QoS,
    retain: bool,
) -> Result<LastWill<'a>, DecodeError> {
    let topic = reader.string("will topic")?;
    if !wire::is_valid_topic_name(topic) {
        return Err(DecodeError::InvalidTopicName);
    }
    let message = reader.binary("will message")?;
    Ok(LastWill {
        topic,
        message,
        qos,
        retain,
    })
}

/// CONNACK body: acknowledge flags (only bit 0, session present) and the return code.
pub(crate) fn decode_connack<'a>(reader: &mut Reader<'a>) -> Result<Packet<'a>, DecodeError> {
    let ack_flags = reader.u8("connect acknowledge flags")?;
    if ack_flags & 0xFE != 0 {
        return Err(DecodeError::ProtocolViolation(
            "CONNACK reserved flags are set",
        ));
    }
    let code_byte = reader.u8("connect return code")?;
    let code = ConnectReturnCode::from_u8(code_byte)
        .ok_or(DecodeError::InvalidConnectReturnCode(code_byte))?;
    Ok(Packet::ConnAck {
        session_present: ack_flags & 0x01 != 0,
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    const MAX: usize = 1 << 16;

    /// CONNECT, client id "a", keep alive 60, clean session; flags byte at index 9.
    const MINIMAL: [u8; 15] = [
        0x10, 13, 0x00, 0x04, b'M', b'Q', b'T', b'T', 4, 0x02, 0x00, 60, 0x00, 0x01, b'a',
    ];

    fn with(index: usize, byte: u8) -> Vec<u8> {
        let mut bytes = MINIMAL.to_vec();
        bytes[index] = byte;
        bytes
    }

    #[test]
    fn minimal_connect_decodes() {
        let expected = Connect {
            client_id: "a",
            keep_alive: 60,
            clean_session: true,
            username: None,
            password: None,
            will: None,
        };
        assert_eq!(
            decode(&MINIMAL, MAX),
            Ok(Some((Packet::Connect(expected), MINIMAL.len())))
        );
    }

    #[test]
    fn protocol_name_and_level_are_checked() {
        assert_eq!(
            decode(&with(7, b'X'), MAX),
            Err(DecodeError::InvalidProtocolName)
        );
        assert_eq!(
            decode(&with(8, 3), MAX),
            Err(DecodeError::UnsupportedProtocolLevel(3))
        );
        assert_eq!(
            decode(&with(8, 5), MAX),
            Err(DecodeError::UnsupportedProtocolLevel(5))
        );
    }

    #[test]
    fn connect_flag_rules() {
        let violation = |flags| {
            matches!(
                decode(&with(9, flags), MAX),
                Err(DecodeError::ProtocolViolation(_))
            )
        };
        assert!(violation(0x03), "reserved bit");
        assert!(violation(0x42), "password without user name");
        assert!(violation(0x0A), "will QoS without will");
        assert!(violation(0x22), "will retain without will");
        assert_eq!(decode(&with(9, 0x1E), MAX), Err(DecodeError::InvalidQoS(3)));
        // A will flag whose fields are missing runs off the end.
        assert_eq!(
            decode(&with(9, 0x06), MAX),
            Err(DecodeError::UnexpectedEnd("will topic"))
        );
        // A user name flag with no user name.
        assert_eq!(
            decode(&with(9, 0x82), MAX),
            Err(DecodeError::UnexpectedEnd("user name"))
        );
    }

    #[test]
    fn connack_codes() {
        assert_eq!(
            decode(&[0x20, 0x02, 0x01, 0x00], MAX),
            Ok(Some((
                Packet::ConnAck {
                    session_present: true,
                    code: ConnectReturnCode::Accepted
                },
                4
            )))
        );
        assert_eq!(
            decode(&[0x20, 0x02, 0x00, 0x05], MAX).map(|p| p.map(|(p, _)| p)),
            Ok(Some(Packet::ConnAck {
                session_present: false,
                code: ConnectReturnCode::NotAuthorized
            }))
        );
        assert_eq!(
            decode(&[0x20, 0x02, 0x00, 0x06], MAX),
            Err(DecodeError::InvalidConnectReturnCode(6))
        );
        assert!(matches!(
            decode(&[0x20, 0x02, 0x02, 0x00], MAX),
            Err(DecodeError::ProtocolViolation(_))
        ));
    }
}
