//! MQTT 5 codec-wide properties: every packet round-trips, truncation is never an error,
//! garbage never panics, oversize is refused before the body, and the encoder refuses what
//! the decoder would refuse.

use super::*;
use crate::mqtt::{DecodeError, EncodeError, QoS};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

const MAX: usize = 1 << 20;

const USER: &[(&str, &str)] = &[("device", "d-1"), ("k\u{e9}y", "")];

fn props() -> Properties<'static> {
    Properties::default()
}

fn full_publish_properties() -> Properties<'static> {
    Properties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(30),
        content_type: Some("application/json"),
        response_topic: Some("replies/1"),
        correlation_data: Some(b"\x00\x01"),
        subscription_ids: SubscriptionIds::List(&[1, 268_435_455]),
        topic_alias: Some(3),
        user: UserProperties::List(USER),
        ..props()
    }
}

fn connack_properties() -> Properties<'static> {
    Properties {
        session_expiry_interval: Some(u32::MAX),
        assigned_client_identifier: Some("auto-1"),
        server_keep_alive: Some(30),
        authentication_method: Some("SCRAM"),
        authentication_data: Some(b"x"),
        response_information: Some("r/"),
        server_reference: Some("other"),
        reason_string: Some("why"),
        receive_maximum: Some(20),
        topic_alias_maximum: Some(10),
        maximum_qos: Some(1),
        retain_available: Some(0),
        maximum_packet_size: Some(1 << 20),
        wildcard_subscription_available: Some(1),
        subscription_identifier_available: Some(0),
        shared_subscription_available: Some(1),
        user: UserProperties::List(USER),
        ..props()
    }
}

fn ack(packet_id: u16, reason: ReasonCode, with_props: bool) -> Ack<'static> {
    let properties = match with_props {
        true => Properties {
            reason_string: Some("denied"),
            user: UserProperties::List(USER),
            ..props()
        },
        false => props(),
    };
    Ack {
        packet_id,
        reason,
        properties,
    }
}

/// One packet of every type, with every property and optional field exercised somewhere.
fn samples() -> Vec<Packet<'static>> {
    let connect_properties = Properties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(100),
        maximum_packet_size: Some(65_536),
        topic_alias_maximum: Some(16),
        request_response_information: Some(1),
        request_problem_information: Some(0),
        authentication_method: Some("m"),
        authentication_data: Some(b""),
        user: UserProperties::List(USER),
        ..props()
    };
    let will_properties = Properties {
        will_delay_interval: Some(5),
        message_expiry_interval: Some(60),
        content_type: Some("text/plain"),
        payload_format_indicator: Some(0),
        ..props()
    };
    vec![
        Packet::Connect(Connect {
            client_id: "locust-0123456789abcdef",
            keep_alive: 60,
            clean_start: true,
            username: None,
            password: None,
            will: None,
            properties: props(),
        }),
        Packet::Connect(Connect {
            client_id: "",
            keep_alive: u16::MAX,
            clean_start: false,
            username: None,
            password: Some(b"token"),
            will: Some(Will {
                topic: "devices/gone",
                message: b"bye",
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: will_properties,
            }),
            properties: connect_properties,
        }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: props(),
        }),
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason: ReasonCode::Success,
            properties: connack_properties(),
        }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::NotAuthorized,
            properties: props(),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "locust/test/topic",
            packet_id: 0,
            properties: props(),
            payload: b"{}",
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "",
            packet_id: 1,
            properties: full_publish_properties(),
            payload: &[0xAB; 300],
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t/\u{1F600}",
            packet_id: u16::MAX,
            properties: Properties {
                topic_alias: Some(1),
                ..props()
            },
            payload: b"",
        }),
        Packet::PubAck(Ack::success(1)),
        Packet::PubAck(ack(2, ReasonCode::NotAuthorized, false)),
        Packet::PubAck(ack(3, ReasonCode::QuotaExceeded, true)),
        Packet::PubAck(ack(4, ReasonCode::Success, true)),
        Packet::PubRec(ack(5, ReasonCode::NoMatchingSubscribers, false)),
        Packet::PubRel(ack(6, ReasonCode::PacketIdentifierNotFound, true)),
        Packet::PubComp(Ack::success(u16::MAX)),
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            properties: Properties {
                subscription_ids: SubscriptionIds::List(&[7]),
                user: UserProperties::List(USER),
                ..props()
            },
            filters: vec![
                ("a/+/c", SubscriptionOptions::qos(QoS::AtMostOnce)),
                (
                    "#",
                    SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: RetainHandling::DoNotSend,
                    },
                ),
                (
                    "$share/g/x/#",
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: false,
                        retain_as_published: false,
                        retain_handling: RetainHandling::SendIfNew,
                    },
                ),
            ],
        }),
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: props(),
            reasons: vec![
                ReasonCode::Success,
                ReasonCode::GrantedQoS2,
                ReasonCode::NotAuthorized,
            ],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 11,
            properties: Properties {
                user: UserProperties::List(USER),
                ..props()
            },
            filters: vec!["a/+/c", "$share/g/x"],
        }),
        Packet::UnsubAck(SubAck {
            packet_id: 11,
            properties: Properties {
                reason_string: Some("r"),
                ..props()
            },
            reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::with_reason(ReasonCode::Success)),
        Packet::Disconnect(Disconnect::with_reason(ReasonCode::QuotaExceeded)),
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::ServerMoved,
            properties: Properties {
                session_expiry_interval: Some(0),
                server_reference: Some("b:1883"),
                reason_string: Some("moved"),
                ..props()
            },
        }),
        Packet::Auth(Disconnect {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties {
                authentication_method: Some("SCRAM"),
                authentication_data: Some(b"\x01\x02"),
                ..props()
            },
        }),
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
        assert_eq!(
            decode(&bytes, bytes.len()),
            Ok(Some((packet.clone(), bytes.len()))),
            "{}",
            packet.name()
        );
        assert_eq!(
            decode(&bytes, bytes.len() - 1),
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
                decode(&bytes[..cut], MAX),
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
        let (decoded, consumed) = decode(rest, MAX).expect("valid").expect("complete");
        assert_eq!(&decoded, packet);
        rest = &rest[consumed..];
    }
    assert!(rest.is_empty());
}

#[test]
fn decoded_properties_borrow_and_iterate() {
    let bytes = encoded(&samples()[6]);
    let Ok(Some((Packet::Publish(publish), _))) = decode(&bytes, MAX) else {
        panic!("a PUBLISH");
    };
    assert!(matches!(publish.properties.user, UserProperties::Wire(_)));
    assert_eq!(publish.properties.user.iter().collect::<Vec<_>>(), USER);
    let ids: Vec<u32> = publish.properties.subscription_ids.iter().collect();
    assert_eq!(ids, [1, 268_435_455]);
    assert_eq!(publish.properties.content_type, Some("application/json"));
}

#[test]
fn spec_byte_examples() {
    // A bare success ack is the 3.1.1 short form; a refusal adds its reason code.
    assert_eq!(
        encoded(&Packet::PubAck(Ack::success(0x1234))),
        [0x40, 2, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubAck(ack(
            0x1234,
            ReasonCode::NotAuthorized,
            false
        ))),
        [0x40, 3, 0x12, 0x34, 0x87]
    );
    assert_eq!(
        encoded(&Packet::Disconnect(Disconnect::with_reason(
            ReasonCode::Success
        ))),
        [0xE0, 0]
    );
    assert_eq!(
        encoded(&Packet::Auth(Disconnect::with_reason(ReasonCode::Success))),
        [0xF0, 0]
    );
    // CONNECT "a", keep alive 60, clean start, receive maximum 10.
    let connect = Packet::Connect(Connect {
        client_id: "a",
        keep_alive: 60,
        clean_start: true,
        username: None,
        password: None,
        will: None,
        properties: Properties {
            receive_maximum: Some(10),
            ..props()
        },
    });
    let expected: &[u8] = &[
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 3, 0x21, 0, 10, 0, 1, b'a',
    ];
    assert_eq!(encoded(&connect), expected);
    // A PUBACK with reason code and an empty property block decodes like the short one.
    assert_eq!(
        decode(&[0x40, 4, 0, 1, 0x97, 0], MAX),
        Ok(Some((
            Packet::PubAck(ack(1, ReasonCode::QuotaExceeded, false)),
            6
        )))
    );
    // The 3.1.1 decoder names the level, so a broker can switch to this one.
    assert_eq!(
        crate::mqtt::decode(expected, MAX),
        Err(DecodeError::UnsupportedProtocolLevel(5))
    );
}

#[test]
fn decoder_refuses_what_mqtt5_forbids() {
    let cases: &[(&[u8], DecodeError)] = &[
        // PUBACK with a reason code PUBACK may not carry (0x01 granted QoS 1).
        (
            &[0x40, 3, 0, 1, 0x01],
            DecodeError::InvalidReasonCode {
                packet_type: 4,
                code: 1,
            },
        ),
        // PUBACK with an undefined reason code.
        (
            &[0x40, 3, 0, 1, 0x03],
            DecodeError::InvalidReasonCode {
                packet_type: 4,
                code: 3,
            },
        ),
        // PUBACK with a topic alias property.
        (
            &[0x40, 7, 0, 1, 0x00, 3, 0x23, 0, 1],
            DecodeError::PropertyNotAllowed {
                packet_type: 4,
                property: 0x23,
            },
        ),
        // Unknown property 0x05.
        (
            &[0x40, 6, 0, 1, 0x80, 2, 0x05, 0],
            DecodeError::UnknownProperty(5),
        ),
        // Reason string twice.
        (
            &[0x40, 12, 0, 1, 0x80, 8, 0x1F, 0, 1, b'a', 0x1F, 0, 1, b'b'],
            DecodeError::DuplicateProperty(0x1F),
        ),
        // CONNACK with a zero receive maximum.
        (
            &[0x20, 6, 0, 0, 3, 0x21, 0, 0],
            DecodeError::InvalidPropertyValue(0x21),
        ),
        // CONNACK maximum QoS 2.
        (
            &[0x20, 5, 0, 0, 2, 0x24, 2],
            DecodeError::InvalidPropertyValue(0x24),
        ),
        // Property block longer than the packet.
        (
            &[0x20, 3, 0, 0, 5],
            DecodeError::UnexpectedEnd("properties"),
        ),
        // PUBLISH with an empty topic and no alias.
        (&[0x30, 3, 0, 0, 0], DecodeError::InvalidTopicName),
        // PUBLISH topic alias 0.
        (
            &[0x30, 7, 0, 1, b't', 3, 0x23, 0, 0],
            DecodeError::InvalidPropertyValue(0x23),
        ),
        // SUBSCRIBE options: retain handling 3, reserved bits.
        (
            &[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30],
            DecodeError::ProtocolViolation("retain handling 3"),
        ),
        (
            &[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x40],
            DecodeError::ProtocolViolation("subscription options reserved bits are set"),
        ),
        // SUBSCRIBE with two subscription identifiers.
        (
            &[0x82, 10, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, b'a', 0],
            DecodeError::DuplicateProperty(0x0B),
        ),
        // A property length varint of five bytes.
        (
            &[0x20, 7, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            DecodeError::MalformedVariableInteger("property length"),
        ),
        // PINGREQ with a body; AUTH flags.
        (
            &[0xC0, 1, 0],
            DecodeError::InvalidRemainingLength {
                packet_type: 12,
                len: 1,
            },
        ),
        (
            &[0xF1, 0],
            DecodeError::InvalidFlags {
                packet_type: 15,
                flags: 1,
            },
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            decode(bytes, MAX).map(|_| ()),
            Err(error.clone()),
            "{bytes:x?}"
        );
    }
}

#[test]
fn encoder_refuses_invalid_packets_and_leaves_out_untouched() {
    let publish = |topic, properties| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: 0,
            properties,
            payload: b"",
        })
    };
    let cases: Vec<(Packet<'_>, EncodeError)> = vec![
        (publish("", props()), EncodeError::InvalidTopicName),
        (publish("a/+", props()), EncodeError::InvalidTopicName),
        (
            publish(
                "a",
                Properties {
                    topic_alias: Some(0),
                    ..props()
                },
            ),
            EncodeError::InvalidPropertyValue(0x23),
        ),
        (
            publish(
                "a",
                Properties {
                    receive_maximum: Some(5),
                    ..props()
                },
            ),
            EncodeError::PropertyNotAllowed {
                packet_type: 3,
                property: 0x21,
            },
        ),
        (
            publish(
                "a",
                Properties {
                    user: UserProperties::List(&[("a\0", "b")]),
                    ..props()
                },
            ),
            EncodeError::NullCharacter,
        ),
        (
            Packet::PubAck(ack(1, ReasonCode::GrantedQoS1, false)),
            EncodeError::InvalidReasonCode {
                packet_type: 4,
                code: 1,
            },
        ),
        (Packet::PubAck(Ack::success(0)), EncodeError::ZeroPacketId),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                properties: props(),
                filters: vec![(
                    "$share/g/a",
                    SubscriptionOptions {
                        no_local: true,
                        ..SubscriptionOptions::qos(QoS::AtMostOnce)
                    },
                )],
            }),
            EncodeError::ProtocolViolation("no local on a shared subscription"),
        ),
        (
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                properties: Properties {
                    subscription_ids: SubscriptionIds::List(&[1, 2]),
                    ..props()
                },
                filters: vec![("a", SubscriptionOptions::qos(QoS::AtMostOnce))],
            }),
            EncodeError::ProtocolViolation("SUBSCRIBE with more than one subscription identifier"),
        ),
        (
            Packet::SubAck(SubAck {
                packet_id: 1,
                properties: props(),
                reasons: vec![],
            }),
            EncodeError::ProtocolViolation("acknowledgement without reason codes"),
        ),
        (
            Packet::Disconnect(Disconnect::with_reason(ReasonCode::Banned)),
            EncodeError::InvalidReasonCode {
                packet_type: 14,
                code: 0x8A,
            },
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
fn oversize_packets_are_refused_before_their_body_arrives() {
    let bytes = encoded(&samples()[6]);
    let max = bytes.len() - 1;
    assert_eq!(
        decode(&bytes[..3], max),
        Err(DecodeError::PacketTooLarge {
            size: bytes.len(),
            max
        })
    );
}

/// Random buffers and mutated valid packets: any result but a panic, and whatever decodes
/// re-encodes to bytes that decode the same.
#[test]
fn garbage_never_panics() {
    let mut rng = SmallRng::seed_from_u64(0x6d71_7474_3578);
    let valid: Vec<Vec<u8>> = samples().iter().map(encoded).collect();
    let mut buf = Vec::with_capacity(512);
    let (mut packets, mut errors) = (0, 0);
    for round in 0..100_000 {
        buf.clear();
        if round % 2 == 0 {
            let len = rng.random_range(0..64);
            buf.resize(len, 0);
            rng.fill_bytes(&mut buf);
            if let Some(first) = buf.first_mut() {
                *first = (rng.random_range(1..16u8) << 4) | (*first % 4);
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
        let result = decode(&buf, max);
        errors += usize::from(result.is_err());
        if let Ok(Some((packet, consumed))) = result {
            packets += 1;
            assert!(consumed <= buf.len() && consumed <= max);
            let mut again = Vec::new();
            packet
                .encode(&mut again)
                .expect("what decodes also encodes");
            assert_eq!(decode(&again, usize::MAX), Ok(Some((packet, again.len()))));
        }
    }
    assert!(
        packets > 1_000 && errors > 10_000,
        "{packets} packets, {errors} errors"
    );
}
