//! The 3.1.1 server session without sockets: CONNECT and acks per QoS, client id rules,
//! protocol abuse, and deliveries kept in flight (bounded, numbered).

use super::*;
use crate::mqtt::{Connect, decode};

fn now() -> Instant {
    Instant::now()
}

fn connect(id: &str, clean: bool) -> Packet<'_> {
    Packet::Connect(Connect {
        client_id: id,
        keep_alive: 30,
        clean_session: clean,
        username: None,
        password: None,
        will: None,
    })
}

fn replies(out: &[u8]) -> Vec<Packet<'_>> {
    let mut rest = out;
    let mut packets = Vec::new();
    while let Some((packet, used)) = decode(rest, 1 << 20).expect("valid reply") {
        packets.push(packet);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    packets
}

#[test]
fn connect_then_acks_for_each_qos() {
    let mut s = ServerSession::new();
    let mut out = Vec::new();
    assert!(matches!(
        s.on_packet(connect("dev", true), &mut out),
        Ok(Event::Connected)
    ));
    put_connack(false, &mut out);
    for (qos, id) in [
        (QoS::AtMostOnce, 0),
        (QoS::AtLeastOnce, 7),
        (QoS::ExactlyOnce, 8),
    ] {
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t",
            packet_id: id,
            payload: b"x",
        };
        assert!(matches!(
            s.on_packet(Packet::Publish(p), &mut out),
            Ok(Event::Publish(_))
        ));
    }
    // The QoS 2 message re-sent before PUBREL is acknowledged, not routed again.
    let again = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "t",
        packet_id: 8,
        payload: b"x",
    };
    assert!(matches!(
        s.on_packet(Packet::Publish(again), &mut out),
        Ok(Event::Nothing)
    ));
    assert!(matches!(
        s.on_packet(Packet::PubRel(8), &mut out),
        Ok(Event::Nothing)
    ));
    assert!(matches!(
        s.on_packet(Packet::PingReq, &mut out),
        Ok(Event::Nothing)
    ));
    assert_eq!(
        replies(&out),
        vec![
            Packet::ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted
            },
            Packet::PubAck(7),
            Packet::PubRec(8),
            Packet::PubRec(8),
            Packet::PubComp(8),
            Packet::PingResp,
        ]
    );
}

#[test]
fn client_id_rules() {
    let mut out = Vec::new();
    let mut s = ServerSession::new();
    assert_eq!(
        s.on_packet(connect("", false), &mut out).err(),
        Some(Violation::Refused(ConnectReturnCode::IdentifierRejected))
    );
    assert_eq!(
        replies(&out),
        vec![Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::IdentifierRejected
        }]
    );
    let mut s = ServerSession::new();
    assert!(s.on_packet(connect("", true), &mut Vec::new()).is_ok());
    assert!(s.client_id.starts_with("mqload-auto-"));
}

#[test]
fn protocol_abuse_is_a_violation() {
    let mut s = ServerSession::new();
    assert_eq!(
        s.on_packet(Packet::PingReq, &mut Vec::new()).err(),
        Some(Violation::NotConnectFirst("PINGREQ"))
    );
    let mut s = ServerSession::new();
    assert!(s.on_packet(connect("a", true), &mut Vec::new()).is_ok());
    assert_eq!(
        s.on_packet(connect("a", true), &mut Vec::new()).err(),
        Some(Violation::SecondConnect)
    );
    assert_eq!(
        s.on_packet(Packet::PingResp, &mut Vec::new()).err(),
        Some(Violation::ServerOnlyPacket("PINGRESP"))
    );
    let mut out = Vec::new();
    let v =
        ServerSession::new().on_decode_error(DecodeError::UnsupportedProtocolLevel(5), &mut out);
    assert_eq!(
        v,
        Violation::Decode(DecodeError::UnsupportedProtocolLevel(5))
    );
    assert_eq!(out, [0x20, 0x02, 0x00, 0x01]);
}

fn message(payload: &[u8]) -> Arc<Message> {
    Arc::new(Message {
        topic: "a/b".into(),
        payload: payload.into(),
        qos: QoS::ExactlyOnce,
        extra: None,
    })
}

#[test]
fn a_delivery_that_does_not_encode_is_neither_sent_nor_kept_in_flight() {
    let mut s = ServerSession::new();
    let mut out = Vec::new();
    assert!(s.on_packet(connect("sub", true), &mut out).is_ok());
    out.clear();
    // A topic name with a wildcard is no valid PUBLISH's: the encoder refuses it.
    let bad = Arc::new(Message {
        topic: "a/+".into(),
        payload: b"x".as_slice().into(),
        qos: QoS::AtLeastOnce,
        extra: None,
    });
    assert!(!s.deliver(&bad, QoS::AtLeastOnce, false, &mut out, now()));
    assert!(out.is_empty(), "nothing appended");
    assert!(s.suspend().inflight.is_empty(), "no ack awaited for it");
    assert!(s.deliver(&message(b"ok"), QoS::AtLeastOnce, false, &mut out, now()));
    assert!(!out.is_empty());
}

#[test]
fn unacknowledged_deliveries_are_kept_and_bounded() {
    let mut s = ServerSession::new();
    let mut out = Vec::new();
    assert!(s.on_packet(connect("sub", true), &mut out).is_ok());
    for n in 0..3u8 {
        assert!(s.deliver(&message(&[n]), QoS::AtLeastOnce, false, &mut out, now()));
    }
    assert!(s.deliver(&message(b"q2"), QoS::ExactlyOnce, false, &mut out, now()));
    assert!(s.on_packet(Packet::PubAck(2), &mut out).is_ok());
    assert!(s.on_packet(Packet::PubRec(4), &mut out).is_ok());
    let suspended = s.suspend();
    let kept: Vec<_> = suspended
        .inflight
        .iter()
        .map(|f| (f.id, f.received))
        .collect();
    assert_eq!(
        kept,
        [(1, false), (3, false), (4, true)],
        "PUBACK'd 2 is gone"
    );
    let mut again = ServerSession::new();
    let mut resent = Vec::new();
    assert!(again.resume(suspended).is_empty());
    while again.resend_next(&mut resent, now()) {}
    assert!(!again.resending());
    let packets: Vec<_> = replies(&resent)
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.packet_id, p.dup, p.payload.to_vec()),
            Packet::PubRel(id) => (id, false, b"PUBREL".to_vec()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        packets,
        [
            (1, true, vec![0]),
            (3, true, vec![2]),
            (4, false, b"PUBREL".to_vec())
        ]
    );
    assert_eq!(again.next_packet_id, 5);
    // An inbound QoS 2 message re-sent after the reconnect is acknowledged, not routed again.
    let mut s = ServerSession::new();
    assert!(s.on_packet(connect("pub", false), &mut out).is_ok());
    let q2 = Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "t",
        packet_id: 9,
        payload: b"x",
    };
    assert!(matches!(
        s.on_packet(Packet::Publish(q2.clone()), &mut out),
        Ok(Event::Publish(_))
    ));
    let mut back = ServerSession::new();
    assert!(back.on_packet(connect("pub", false), &mut out).is_ok());
    back.resume(s.suspend());
    let again = Publish { dup: true, ..q2 };
    assert!(matches!(
        back.on_packet(Packet::Publish(again), &mut out),
        Ok(Event::Nothing)
    ));
    for _ in 0..MAX_INFLIGHT {
        assert!(s.deliver(&message(b"x"), QoS::AtLeastOnce, false, &mut out, now()));
    }
    assert!(!s.deliver(&message(b"x"), QoS::AtLeastOnce, false, &mut out, now()));
    assert!(
        s.deliver(&message(b"x"), QoS::AtMostOnce, false, &mut out, now()),
        "QoS 0 is not held"
    );
}

#[test]
fn deliveries_number_their_packets() {
    let mut s = ServerSession::new();
    let mut out = Vec::new();
    s.deliver(&message(b"1"), QoS::AtLeastOnce, false, &mut out, now());
    s.deliver(&message(b"2"), QoS::AtMostOnce, true, &mut out, now());
    s.deliver(&message(b"3"), QoS::ExactlyOnce, false, &mut out, now());
    let ids: Vec<_> = replies(&out)
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.packet_id, p.retain),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![(1, false), (0, true), (2, false)]);
}

#[test]
fn a_resumed_session_resends_one_at_a_time_and_skips_what_gets_acked_meanwhile() {
    let mut s = ServerSession::new();
    let mut out = Vec::new();
    assert!(s.on_packet(connect("sub", false), &mut out).is_ok());
    for n in 1..=4u8 {
        assert!(s.deliver(&message(&[n]), QoS::AtLeastOnce, false, &mut out, now()));
    }
    let mut back = ServerSession::new();
    assert!(back.on_packet(connect("sub", false), &mut out).is_ok());
    assert!(back.resume(s.suspend()).is_empty());
    assert!(back.resending());
    let mut resent = Vec::new();
    assert!(back.resend_next(&mut resent, now()));
    // Acks for one already sent again and for one still waiting to be.
    assert!(back.on_packet(Packet::PubAck(1), &mut out).is_ok());
    assert!(back.on_packet(Packet::PubAck(3), &mut out).is_ok());
    // A new delivery meanwhile is not sent again.
    assert!(back.deliver(&message(b"new"), QoS::AtLeastOnce, false, &mut out, now()));
    while back.resend_next(&mut resent, now()) {}
    assert!(!back.resending());
    let ids: Vec<_> = replies(&resent)
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) if p.dup => p.packet_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [1, 2, 4]);
    let kept: Vec<_> = back.suspend().inflight.iter().map(|f| f.id).collect();
    assert_eq!(kept, [2, 4, 5]);
}
