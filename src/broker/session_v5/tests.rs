//! The MQTT 5 server session without sockets: topic aliases, the Receive Maximum, session
//! expiry, and mutated byte streams that must not panic.

use std::sync::Arc;

use super::*;
use crate::broker::message::Message;
use crate::mqtt::v5::{Ack, Connect, Properties};

fn connected(receive_maximum: Option<u16>) -> (ServerSession, Vec<u8>) {
    let mut session = ServerSession::new();
    session.version = ProtocolVersion::V5;
    let connect = Packet::Connect(Connect {
        client_id: "dev",
        keep_alive: 30,
        clean_start: true,
        username: None,
        password: None,
        will: None,
        properties: Properties {
            receive_maximum,
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
    });
    let mut out = Vec::new();
    let event = session.on_packet_v5(connect, &mut out);
    assert!(matches!(event, Ok(Event::Connected)));
    assert_eq!(session.keep_for(), Some(Duration::from_secs(60)));
    (session, out)
}

fn replies(out: &[u8]) -> Vec<Packet<'_>> {
    let mut rest = out;
    let mut packets = Vec::new();
    while let Some((packet, used)) = v5::decode(rest, 1 << 20).expect("valid reply") {
        packets.push(packet);
        rest = &rest[used..];
    }
    packets
}

fn publish(topic: &str, alias: Option<u16>) -> Packet<'_> {
    Packet::Publish(v5::Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic,
        packet_id: 0,
        properties: Properties {
            topic_alias: alias,
            ..Properties::default()
        },
        payload: b"x",
    })
}

#[test]
fn topic_aliases_are_set_used_and_bounded() {
    let (mut s, mut out) = connected(None);
    let topic = |e: Result<Event<'_>, Violation>| match e {
        Ok(Event::Publish(p)) => p.topic.as_str().to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        topic(s.on_packet_v5(publish("a/b", Some(7)), &mut out)),
        "a/b"
    );
    assert_eq!(topic(s.on_packet_v5(publish("", Some(7)), &mut out)), "a/b");
    out.clear();
    let unknown = s.on_packet_v5(publish("", Some(8)), &mut out);
    assert_eq!(unknown.err(), Some(Violation::TopicAliasInvalid));
    assert_eq!(
        replies(&out),
        [Packet::Disconnect(v5::Disconnect::with_reason(
            ReasonCode::TopicAliasInvalid
        ))]
    );
}

#[test]
fn the_receive_maximum_holds_deliveries_until_acks() {
    let (mut s, _) = connected(Some(1));
    let now = Instant::now();
    let message = Arc::new(Message {
        topic: "t".into(),
        payload: b"p".as_slice().into(),
        qos: QoS::AtLeastOnce,
        extra: None,
    });
    let mut out = Vec::new();
    for _ in 0..3 {
        assert!(s.deliver(&message, QoS::AtLeastOnce, false, &mut out, now));
    }
    assert_eq!(replies(&out).len(), 1, "one in flight at most");
    out.clear();
    let ack = Packet::PubAck(Ack::success(1));
    assert!(s.on_packet_v5(ack, &mut out).is_ok());
    assert!(out.is_empty(), "released by the connection, as it has room");
    assert!(s.may_release_held());
    assert!(s.release_held(&mut out, now));
    assert!(!s.may_release_held(), "one slot, taken again");
    assert!(!s.release_held(&mut out, now));
    let sent = replies(&out);
    assert!(
        matches!(&sent[..], [Packet::Publish(p)] if p.packet_id == 2),
        "{sent:?}"
    );
    // Suspended with one held back, resumed: re-sent with DUP, then the held one waits.
    let mut again = ServerSession::new();
    again.version = ProtocolVersion::V5;
    again.v5.client_receive_max = 1;
    let mut resent = Vec::new();
    let held = again.resume(s.suspend());
    while again.resend_next(&mut resent, now) {}
    let packets = replies(&resent);
    assert!(
        matches!(&packets[..], [Packet::Publish(p)] if p.dup && p.packet_id == 2),
        "{packets:?}"
    );
    assert_eq!(
        held.len(),
        1,
        "the held one is handed back, to queue behind"
    );
}

#[test]
fn pubrel_for_an_unknown_id_and_a_will_kept_by_disconnect_0x04() {
    let (mut s, _) = connected(None);
    let mut out = Vec::new();
    let pubrel = Packet::PubRel(Ack::success(5));
    assert!(s.on_packet_v5(pubrel, &mut out).is_ok());
    assert!(matches!(
        &replies(&out)[..],
        [Packet::PubComp(a)] if a.reason == ReasonCode::PacketIdentifierNotFound
    ));
    s.will = Some(Will {
        topic: "w".into(),
        payload: Vec::new(),
        qos: QoS::AtMostOnce,
        retain: false,
    });
    let mut goodbye = v5::Disconnect::with_reason(ReasonCode::DisconnectWithWill);
    goodbye.properties.session_expiry_interval = Some(0);
    let event = s.on_packet_v5(Packet::Disconnect(goodbye), &mut out);
    assert!(matches!(event, Ok(Event::Disconnect)));
    assert!(s.will.is_some(), "0x04 keeps the will");
    assert_eq!(s.keep_for(), None, "session expiry set to 0 by DISCONNECT");
}

#[test]
fn a_delivery_too_large_for_the_client_takes_no_receive_maximum_slot() {
    let (mut s, _) = connected(Some(1));
    s.v5.client_max_packet = 64;
    let now = Instant::now();
    let message = |payload: &[u8]| {
        Arc::new(Message {
            topic: "t".into(),
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            extra: None,
        })
    };
    let mut out = Vec::new();
    assert!(s.deliver(&message(&[0; 200]), QoS::AtLeastOnce, false, &mut out, now));
    assert!(out.is_empty(), "too large for the client: skipped");
    assert!(s.deliver(&message(b"small"), QoS::AtLeastOnce, false, &mut out, now));
    assert!(
        matches!(&replies(&out)[..], [Packet::Publish(p)] if p.payload == b"small"),
        "the skipped one must not hold the only slot: {:?}",
        replies(&out)
    );
}

/// Feeds bytes as the broker does (decode, hand over, stop at the first violation).
fn feed(bytes: &[u8]) -> usize {
    let mut session = ServerSession::new();
    session.version = ProtocolVersion::V5;
    let (mut out, mut rest, mut accepted) = (Vec::new(), bytes, 0);
    loop {
        match v5::decode(rest, 1 << 16) {
            Ok(Some((packet, used))) => {
                rest = &rest[used..];
                if session.on_packet_v5(packet, &mut out).is_err() {
                    return accepted;
                }
                accepted += 1;
            }
            Ok(None) => return accepted,
            Err(e) => {
                session.on_decode_error(e, &mut out);
                return accepted;
            }
        }
    }
}

#[test]
fn random_and_mutated_mqtt5_streams_never_panic() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut valid = Vec::new();
    for packet in [
        Packet::Connect(Connect {
            client_id: "id",
            keep_alive: 10,
            clean_start: false,
            username: None,
            password: None,
            will: None,
            properties: Properties {
                receive_maximum: Some(3),
                ..Properties::default()
            },
        }),
        publish("a/b", Some(2)),
        publish("", Some(2)),
        Packet::PubRel(Ack::success(4)),
        Packet::PingReq,
        Packet::Disconnect(v5::Disconnect::with_reason(ReasonCode::Success)),
    ] {
        packet.encode(&mut valid).expect("encode");
    }
    assert_eq!(feed(&valid), 6);
    let mut rng = StdRng::seed_from_u64(0x6d71_7635);
    for _ in 0..20_000 {
        let mut bytes = valid.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        bytes.truncate(rng.random_range(0..=bytes.len()));
        feed(&bytes);
    }
}
