//! Codec-wide properties: every packet round-trips, truncation is never an error, garbage
//! never panics, and the encoder refuses what the decoder would refuse.

use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

const MAX: usize = 1 << 20;

/// One packet of every type, with every optional field exercised somewhere.
fn samples() -> Vec<Packet<'static>> {
    vec![
        Packet::Connect(Connect {
            client_id: "locust-0123456789abcdef",
            keep_alive: 60,
            clean_session: true,
            username: None,
            password: None,
            will: None,
        }),
        Packet::Connect(Connect {
            client_id: "",
            keep_alive: 0,
            clean_session: false,
            username: Some("user"),
            password: Some(b"\x00secret\xff"),
            will: Some(LastWill {
                topic: "devices/gone",
                message: b"bye",
                qos: QoS::ExactlyOnce,
                retain: true,
            }),
        }),
        Packet::Connect(Connect {
            client_id: "c\u{e9}",
            keep_alive: u16::MAX,
            clean_session: true,
            username: Some(""),
            password: None,
            will: Some(LastWill {
                topic: "w",
                message: b"",
                qos: QoS::AtMostOnce,
                retain: false,
            }),
        }),
        Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        },
        Packet::ConnAck {
            session_present: true,
            code: ConnectReturnCode::BadUserNameOrPassword,
        },
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "locust/test/topic",
            packet_id: 0,
            payload: b"{}",
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "a",
            packet_id: 1,
            payload: &[0xAB; 300],
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t/\u{1F600}",
            packet_id: u16::MAX,
            payload: b"",
        }),
        Packet::PubAck(1),
        Packet::PubRec(2),
        Packet::PubRel(3),
        Packet::PubComp(u16::MAX),
        Packet::Subscribe {
            packet_id: 10,
            filters: vec![("a/+/c", QoS::AtMostOnce), ("#", QoS::AtLeastOnce)],
        },
        Packet::SubAck {
            packet_id: 10,
            return_codes: vec![Some(QoS::AtMostOnce), None, Some(QoS::ExactlyOnce)],
        },
        Packet::Unsubscribe {
            packet_id: 11,
            filters: vec!["a/+/c", "x"],
        },
        Packet::UnsubAck(11),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect,
    ]
}

fn encoded(packet: &Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    packet.encode(&mut out).expect("sample packets are valid");
    out
}

#[test]
fn every_packet_round_trips() {
    for packet in samples() {
        let bytes = encoded(&packet);
        assert_eq!(packet.encoded_len(), Ok(bytes.len()), "{}", packet.name());
        // A maximum of exactly the packet's size admits it; one byte less refuses it.
        assert_eq!(
            decode::decode(&bytes, bytes.len()),
            Ok(Some((packet.clone(), bytes.len()))),
            "{}",
            packet.name()
        );
        assert_eq!(
            decode::decode(&bytes, bytes.len() - 1),
            Err(DecodeError::PacketTooLarge {
                size: bytes.len(),
                max: bytes.len() - 1
            }),
            "{}",
            packet.name()
        );
    }
}

#[test]
fn every_truncated_prefix_is_incomplete() {
    for packet in samples() {
        let bytes = encoded(&packet);
        for cut in 0..bytes.len() {
            assert_eq!(
                decode::decode(&bytes[..cut], MAX),
                Ok(None),
                "{} cut at {cut}",
                packet.name()
            );
        }
    }
}

#[test]
fn back_to_back_packets_decode_in_turn() {
    let packets = samples();
    let mut stream = Vec::new();
    for packet in &packets {
        packet.encode(&mut stream).expect("valid");
    }
    let mut rest = &stream[..];
    for packet in &packets {
        let (decoded, consumed) = decode::decode(rest, MAX).expect("valid").expect("complete");
        assert_eq!(&decoded, packet);
        rest = &rest[consumed..];
    }
    assert!(rest.is_empty());
    assert_eq!(decode::decode(rest, MAX), Ok(None));
}

#[test]
fn spec_byte_examples() {
    assert_eq!(encoded(&Packet::PubAck(0x1234)), [0x40, 0x02, 0x12, 0x34]);
    assert_eq!(encoded(&Packet::PubRel(0x0102)), [0x62, 0x02, 0x01, 0x02]);
    assert_eq!(encoded(&Packet::PingReq), [0xC0, 0x00]);
    assert_eq!(encoded(&Packet::PingResp), [0xD0, 0x00]);
    assert_eq!(encoded(&Packet::Disconnect), [0xE0, 0x00]);
    let connack = Packet::ConnAck {
        session_present: true,
        code: ConnectReturnCode::NotAuthorized,
    };
    assert_eq!(encoded(&connack), [0x20, 0x02, 0x01, 0x05]);
    // CONNECT "mqload", keep alive 60, clean session, user "u", password "p".
    let connect = Packet::Connect(Connect {
        client_id: "mqload",
        keep_alive: 60,
        clean_session: true,
        username: Some("u"),
        password: Some(b"p"),
        will: None,
    });
    let expected: &[u8] = &[
        0x10, 0x18, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xC2, 0x00, 0x3C, 0x00, 0x06, b'm',
        b'q', b'l', b'o', b'a', b'd', 0x00, 0x01, b'u', 0x00, 0x01, b'p',
    ];
    assert_eq!(encoded(&connect), expected);
    assert_eq!(
        decode::decode(expected, MAX),
        Ok(Some((connect, expected.len())))
    );
}

#[test]
fn publish_length_is_exact_across_varint_boundaries() {
    let topic = "t/1";
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for payload_len in [
            0, 100, 120, 121, 122, 123, 5120, 16_370, 16_380, 16_400, 2_097_140,
        ] {
            let payload = vec![7u8; payload_len];
            let publish = Publish {
                dup: false,
                qos,
                retain: false,
                topic,
                packet_id: 9,
                payload: &payload,
            };
            let mut out = Vec::new();
            encode_publish_into(&publish, &mut out).expect("valid");
            assert_eq!(
                out.len(),
                encoded_publish_len(topic.len(), payload_len, qos)
            );
            let (decoded, consumed) = decode::decode(&out, usize::MAX)
                .expect("valid")
                .expect("complete");
            assert_eq!(consumed, out.len());
            let Packet::Publish(decoded) = decoded else {
                panic!("not a PUBLISH");
            };
            assert_eq!(decoded.payload.len(), payload_len);
            assert_eq!(
                decoded.packet_id,
                if qos == QoS::AtMostOnce { 0 } else { 9 }
            );
        }
    }
}

#[test]
fn publish_encoding_reuses_the_buffer() {
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "locust/test/topic",
        packet_id: 7,
        payload: &[1; 5120],
    };
    let mut out = Vec::with_capacity(8192);
    let (pointer, capacity) = (out.as_ptr(), out.capacity());
    for _ in 0..10 {
        out.clear();
        encode_publish_into(&publish, &mut out).expect("valid");
    }
    assert_eq!(
        (out.as_ptr(), out.capacity()),
        (pointer, capacity),
        "no reallocation"
    );
}

#[test]
fn encoder_refuses_invalid_packets_and_leaves_out_untouched() {
    let long = "x".repeat(65_536);
    let publish = |topic, qos, packet_id, dup| {
        Packet::Publish(Publish {
            dup,
            qos,
            retain: false,
            topic,
            packet_id,
            payload: b"",
        })
    };
    let connect = |client_id, username, password| {
        Packet::Connect(Connect {
            client_id,
            keep_alive: 0,
            clean_session: true,
            username,
            password,
            will: None,
        })
    };
    let cases: Vec<(Packet<'_>, EncodeError)> = vec![
        (
            publish(&long, QoS::AtMostOnce, 0, false),
            EncodeError::FieldTooLong,
        ),
        (
            publish("", QoS::AtMostOnce, 0, false),
            EncodeError::InvalidTopicName,
        ),
        (
            publish("a/#", QoS::AtMostOnce, 0, false),
            EncodeError::InvalidTopicName,
        ),
        (
            publish("a\0", QoS::AtMostOnce, 0, false),
            EncodeError::InvalidTopicName,
        ),
        (
            publish("a", QoS::AtLeastOnce, 0, false),
            EncodeError::ZeroPacketId,
        ),
        (
            publish("a", QoS::AtMostOnce, 0, true),
            EncodeError::ProtocolViolation("DUP set on a QoS 0 PUBLISH"),
        ),
        (connect(&long, None, None), EncodeError::FieldTooLong),
        (connect("a\0", None, None), EncodeError::NullCharacter),
        (
            connect("a", None, Some(b"p")),
            EncodeError::ProtocolViolation("password without a user name"),
        ),
        (Packet::PubAck(0), EncodeError::ZeroPacketId),
        (Packet::UnsubAck(0), EncodeError::ZeroPacketId),
        (
            Packet::Subscribe {
                packet_id: 1,
                filters: vec![],
            },
            EncodeError::ProtocolViolation("SUBSCRIBE without topic filters"),
        ),
        (
            Packet::Subscribe {
                packet_id: 1,
                filters: vec![("a/#/b", QoS::AtMostOnce)],
            },
            EncodeError::InvalidTopicFilter,
        ),
        (
            Packet::Unsubscribe {
                packet_id: 1,
                filters: vec![],
            },
            EncodeError::ProtocolViolation("UNSUBSCRIBE without topic filters"),
        ),
        (
            Packet::SubAck {
                packet_id: 1,
                return_codes: vec![],
            },
            EncodeError::ProtocolViolation("SUBACK without return codes"),
        ),
    ];
    for (packet, error) in cases {
        let mut out = vec![0xEE];
        assert_eq!(packet.encode(&mut out), Err(error.clone()), "{packet:?}");
        assert_eq!(packet.encoded_len(), Err(error));
        assert_eq!(out, [0xEE]);
    }
}

#[test]
fn encoder_refuses_packets_beyond_the_protocol_maximum() {
    // calloc'd and never touched: the length check comes before any copy.
    let payload = vec![0u8; 268_435_455];
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        packet_id: 0,
        payload: &payload,
    };
    let mut out = Vec::new();
    assert_eq!(
        encode_publish_into(&publish, &mut out),
        Err(EncodeError::PacketTooLarge)
    );
    assert!(out.is_empty());
    assert_eq!(
        encoded_publish_len(1, 268_435_455 - 3, QoS::AtMostOnce),
        268_435_455 + 5
    );
    assert_eq!(
        encoded_publish_len(usize::MAX, usize::MAX, QoS::AtLeastOnce),
        usize::MAX
    );
}

#[test]
fn oversize_packets_are_refused_before_their_body_arrives() {
    let bytes = encoded(&samples()[6]); // 300-byte payload PUBLISH
    let max = bytes.len() - 1;
    assert_eq!(
        decode::decode(&bytes[..3], max),
        Err(DecodeError::PacketTooLarge {
            size: bytes.len(),
            max
        })
    );
    assert!(decode::decode(&bytes, bytes.len()).is_ok());
}

/// Decodes random buffers (and mutated valid packets): any result is fine but a panic, and a
/// successful decode must consume a prefix that re-decodes to the same packet.
#[test]
fn garbage_never_panics() {
    let mut rng = SmallRng::seed_from_u64(0x6d71_6c6f_6164);
    let valid: Vec<Vec<u8>> = samples().iter().map(encoded).collect();
    let mut buf = Vec::with_capacity(512);
    let (mut packets, mut errors) = (0, 0);
    for round in 0..100_000 {
        buf.clear();
        if round % 2 == 0 {
            let len = rng.random_range(0..64);
            buf.resize(len, 0);
            rng.fill_bytes(&mut buf);
            // Make plausible first bytes common so bodies get parsed, not just headers.
            if let Some(first) = buf.first_mut() {
                *first = (rng.random_range(1..15u8) << 4) | (*first % 4);
            }
            if let Some(length) = buf.get_mut(1) {
                *length %= 70;
            }
        } else {
            buf.extend_from_slice(&valid[rng.random_range(0..valid.len())]);
            for _ in 0..rng.random_range(1..4) {
                let index = rng.random_range(0..buf.len());
                buf[index] ^= 1 << rng.random_range(0..8);
            }
        }
        let max = rng.random_range(0..600);
        let result = decode::decode(&buf, max);
        errors += usize::from(result.is_err());
        if let Ok(Some((packet, consumed))) = result {
            packets += 1;
            assert!(consumed <= buf.len() && consumed <= max);
            let mut again = Vec::new();
            packet
                .encode(&mut again)
                .expect("what decodes also encodes");
            assert_eq!(
                decode::decode(&again, usize::MAX),
                Ok(Some((packet, again.len())))
            );
        }
    }
    // The sweep reaches the body parsers: some inputs decode, many are refused.
    assert!(
        packets > 1_000 && errors > 10_000,
        "{packets} packets, {errors} errors"
    );
}

#[test]
fn fixed_packets_encode_as_their_checked_packet_does() {
    let codes = [
        ConnectReturnCode::Accepted,
        ConnectReturnCode::NotAuthorized,
    ];
    let mut pairs: Vec<(FixedPacket, Packet<'static>)> = codes
        .into_iter()
        .flat_map(|code| {
            [false, true].map(|session_present| {
                (
                    FixedPacket::ConnAck {
                        session_present,
                        code,
                    },
                    Packet::ConnAck {
                        session_present,
                        code,
                    },
                )
            })
        })
        .collect();
    for id in [1, 0x1234, u16::MAX] {
        pairs.extend([
            (FixedPacket::PubAck(id), Packet::PubAck(id)),
            (FixedPacket::PubRec(id), Packet::PubRec(id)),
            (FixedPacket::PubRel(id), Packet::PubRel(id)),
            (FixedPacket::PubComp(id), Packet::PubComp(id)),
            (FixedPacket::UnsubAck(id), Packet::UnsubAck(id)),
        ]);
    }
    pairs.extend([
        (FixedPacket::PingReq, Packet::PingReq),
        (FixedPacket::PingResp, Packet::PingResp),
        (FixedPacket::Disconnect, Packet::Disconnect),
    ]);
    for (fixed, packet) in pairs {
        let mut out = vec![0xAA];
        fixed.encode(&mut out);
        assert_eq!(out[1..], encoded(&packet)[..], "{fixed:?}");
        assert_eq!(
            decode::decode(&out[1..], 1 << 16),
            Ok(Some((packet, out.len() - 1)))
        );
    }
}
