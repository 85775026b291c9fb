//! The 3.1.1 client session on virtual time with no sockets: the broker's bytes are made
//! with the crate's encoder, and what the session sends is decoded into typed packets.

use super::*;

fn config(max_inflight: u16) -> SessionConfig {
    SessionConfig {
        keep_alive: Duration::from_secs(60),
        clean_session: true,
        username: None,
        password: None,
        max_inflight,
        ack_timeout: Duration::from_secs(10),
        max_packet_size: 1 << 20,
        mqtt5: None,
    }
}

fn bytes(packet: Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    packet.encode(&mut out).expect("encodable");
    out
}

/// The session's output since the last look (marked sent), to read as typed packets.
struct Sent(Vec<u8>);

impl Sent {
    /// Every packet in the output, decoded; the output must end on a packet boundary.
    fn packets(&self) -> Vec<Packet<'_>> {
        let mut buf: &[u8] = &self.0;
        let mut packets = Vec::new();
        while let Some((p, n)) = mqtt::decode(buf, 1 << 20).expect("valid output") {
            packets.push(p);
            buf = &buf[n..];
        }
        assert!(buf.is_empty(), "output ends with a partial packet");
        packets
    }

    /// The packet ids of the PUBLISHes in the output, in order.
    fn publish_ids(&self) -> Vec<u16> {
        let packets = self.packets();
        let ids = packets.iter().filter_map(|p| match p {
            Packet::Publish(publish) => Some(publish.packet_id),
            _ => None,
        });
        ids.collect()
    }
}

/// A PUBLISH on topic `t`, as the tests' sessions send it.
fn publish_on_t(dup: bool, qos: QoS, packet_id: u16, payload: &[u8]) -> Packet<'_> {
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic: "t",
        packet_id,
        payload,
    })
}

fn sent(session: &mut Session, now: Instant) -> Sent {
    let out = Sent(session.pending_output().to_vec());
    session.output_sent(now);
    out
}

fn connected(max_inflight: u16) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(&config(max_inflight), "dev-1", t0).expect("session");
    let out = sent(&mut s, t0);
    assert!(
        matches!(
            out.packets()[..],
            [Packet::Connect(mqtt::Connect {
                client_id: "dev-1",
                keep_alive: 60,
                ..
            })]
        ),
        "{:?}",
        out.packets()
    );
    s.handle_input(
        &bytes(Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }),
        t0,
    )
    .expect("connack");
    assert_eq!(
        s.poll_event(),
        Some(Event::Connected {
            session_present: false,
            at: t0
        })
    );
    (s, t0)
}

#[test]
fn refused_connack_is_a_named_failure() {
    let t0 = Instant::now();
    let mut s = Session::new(&config(10), "dev", t0).expect("session");
    let err = s
        .handle_input(
            &bytes(Packet::ConnAck {
                session_present: false,
                code: ConnectReturnCode::NotAuthorized,
            }),
            t0,
        )
        .expect_err("refused");
    assert_eq!(err, SessionError::Refused(ConnectReturnCode::NotAuthorized));
    assert!(err.to_string().contains("not authorized"));
    assert!(!s.can_publish(QoS::AtMostOnce));
}

#[test]
fn packets_before_connack_and_server_only_packets_are_rejected() {
    let t0 = Instant::now();
    let mut s = Session::new(&config(10), "dev", t0).expect("session");
    assert!(matches!(
        s.handle_input(&bytes(Packet::PubAck(1)), t0),
        Err(SessionError::Unexpected(_))
    ));
    let (mut s, t0) = connected(10);
    assert!(matches!(
        s.handle_input(&bytes(Packet::PingReq), t0),
        Err(SessionError::Unexpected("PINGREQ"))
    ));
}

#[test]
fn qos1_acks_complete_in_any_order_with_their_due_time() {
    let (mut s, t0) = connected(10);
    for k in 0..3u64 {
        let due = t0 + Duration::from_millis(10 * k);
        s.publish("t", b"hello", QoS::AtLeastOnce, due, t0)
            .expect("publish");
    }
    let out = sent(&mut s, t0);
    assert_eq!(out.packets().len(), 3);
    assert_eq!(out.publish_ids(), [1, 2, 3]);
    let mut input = bytes(Packet::PubAck(2));
    input.extend(bytes(Packet::PubAck(1)));
    input.extend(bytes(Packet::PubAck(3)));
    s.handle_input(&input, t0).expect("acks");
    let dues: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .map(|e| match e {
            Event::Acked(c) => c.due.duration_since(t0).as_millis(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(dues, vec![10, 0, 20]);
    assert_eq!(s.inflight_len(), 0);
    assert!(matches!(
        s.handle_input(&bytes(Packet::PubAck(3)), t0),
        Err(SessionError::Unexpected(_))
    ));
}

#[test]
fn input_split_at_every_byte_still_decodes() {
    let (mut s, t0) = connected(10);
    s.publish("t", b"x", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    s.publish("t", b"y", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    let mut input = bytes(Packet::PubAck(1));
    input.extend(bytes(Packet::PubAck(2)));
    for b in input {
        s.handle_input(&[b], t0).expect("byte");
    }
    assert_eq!(s.inflight_len(), 0);
}

#[test]
fn the_window_limits_publishes_in_flight() {
    let (mut s, t0) = connected(2);
    s.publish("t", b"a", QoS::AtLeastOnce, t0, t0).expect("1");
    s.publish("t", b"b", QoS::AtLeastOnce, t0, t0).expect("2");
    assert!(!s.can_publish(QoS::AtLeastOnce));
    assert!(s.can_publish(QoS::AtMostOnce));
    assert!(s.publish("t", b"c", QoS::AtLeastOnce, t0, t0).is_err());
    s.handle_input(&bytes(Packet::PubAck(1)), t0).expect("ack");
    assert!(s.can_publish(QoS::AtLeastOnce));
}

#[test]
fn packet_ids_skip_zero_and_never_reuse_one_in_flight() {
    let (mut s, t0) = connected(100);
    // Packet id 1 stays unacknowledged while the ids wrap all the way round.
    s.publish("t", b"stuck", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    sent(&mut s, t0);
    for expected in 2..=u16::MAX {
        s.publish("t", b"", QoS::AtLeastOnce, t0, t0)
            .expect("publish");
        assert_eq!(sent(&mut s, t0).publish_ids(), [expected]);
        s.handle_input(&bytes(Packet::PubAck(expected)), t0)
            .expect("ack");
    }
    // The next id would be 1 again (0 is skipped), and 1 is still in flight.
    assert!(!s.can_publish(QoS::AtLeastOnce));
    s.handle_input(&bytes(Packet::PubAck(1)), t0)
        .expect("ack 1");
    assert!(s.can_publish(QoS::AtLeastOnce));
    s.publish("t", b"", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    assert_eq!(sent(&mut s, t0).publish_ids(), [1]);
}

#[test]
fn packet_ids_resume_where_the_last_connection_stopped() {
    let (mut s, t0) = connected(10);
    s.resume_packet_ids(0);
    assert_eq!(s.next_packet_id(), 1);
    s.resume_packet_ids(u16::MAX);
    s.publish("t", b"a", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    s.publish("t", b"b", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    assert_eq!(sent(&mut s, t0).publish_ids(), [65535, 1]);
    assert_eq!(s.next_packet_id(), 2);
}

#[test]
fn qos2_runs_the_four_step_handshake() {
    let (mut s, t0) = connected(10);
    s.publish("t", b"q2", QoS::ExactlyOnce, t0, t0)
        .expect("publish");
    sent(&mut s, t0);
    assert!(matches!(
        s.handle_input(&bytes(Packet::PubComp(1)), t0),
        Err(SessionError::Unexpected("PUBCOMP before PUBREC"))
    ));
    let (mut s, t0) = connected(10);
    s.publish("t", b"q2", QoS::ExactlyOnce, t0, t0)
        .expect("publish");
    sent(&mut s, t0);
    s.handle_input(&bytes(Packet::PubRec(1)), t0)
        .expect("pubrec");
    assert_eq!(sent(&mut s, t0).packets(), [Packet::PubRel(1)]);
    assert_eq!(s.poll_event(), None);
    s.handle_input(&bytes(Packet::PubComp(1)), t0)
        .expect("pubcomp");
    assert!(matches!(s.poll_event(), Some(Event::Acked(_))));
}

#[test]
fn incoming_publishes_are_acknowledged() {
    let (mut s, t0) = connected(10);
    let publish = |qos, packet_id| {
        bytes(Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "in",
            packet_id,
            payload: b"abc",
        }))
    };
    s.handle_input(&publish(QoS::AtLeastOnce, 7), t0)
        .expect("q1");
    s.handle_input(&publish(QoS::ExactlyOnce, 8), t0)
        .expect("q2");
    s.handle_input(&bytes(Packet::PubRel(8)), t0)
        .expect("pubrel");
    assert_eq!(
        sent(&mut s, t0).packets(),
        [Packet::PubAck(7), Packet::PubRec(8), Packet::PubComp(8)]
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::Received {
            qos: QoS::AtLeastOnce,
            payload_len: 3,
            head: (0, 0),
            at: t0,
        })
    );
}

#[test]
fn subscribe_reports_the_granted_qos_or_a_refusal_and_times_out() {
    let (mut s, t0) = connected(10);
    s.subscribe("locust/#", QoS::AtLeastOnce, t0)
        .expect("subscribe");
    let out = sent(&mut s, t0);
    assert!(
        matches!(
            &out.packets()[..],
            [Packet::Subscribe { filters, .. }] if filters[..] == [("locust/#", QoS::AtLeastOnce)]
        ),
        "{:?}",
        out.packets()
    );
    assert!(matches!(
        s.handle_input(
            &bytes(Packet::SubAck {
                packet_id: 9,
                return_codes: vec![None]
            }),
            t0
        ),
        Err(SessionError::Unexpected("SUBACK for no SUBSCRIBE"))
    ));
    let (mut s, t0) = connected(10);
    s.subscribe("a/+", QoS::ExactlyOnce, t0).expect("subscribe");
    let t1 = t0 + Duration::from_millis(3);
    let suback = |codes| {
        bytes(Packet::SubAck {
            packet_id: 1,
            return_codes: codes,
        })
    };
    s.handle_input(&suback(vec![Some(QoS::AtLeastOnce)]), t1)
        .expect("suback");
    assert_eq!(
        s.poll_event(),
        Some(Event::Subscribed {
            granted: Some(QoS::AtLeastOnce),
            refusal: None,
            sent: t0,
            at: t1
        })
    );
    s.subscribe("a/+", QoS::ExactlyOnce, t1).expect("again");
    s.handle_input(
        &bytes(Packet::SubAck {
            packet_id: 2,
            return_codes: vec![None],
        }),
        t1,
    )
    .expect("refusal is an event, not a broken session");
    assert!(matches!(
        s.poll_event(),
        Some(Event::Subscribed { granted: None, .. })
    ));
    assert!(SessionError::SubscribeRefused.to_string().contains("0x80"));
    s.subscribe("never/answered", QoS::AtMostOnce, t1)
        .expect("subscribe");
    let deadline = t1 + Duration::from_secs(10);
    assert_eq!(s.poll_timeout(), Some(deadline));
    assert_eq!(s.handle_timeout(deadline), Err(SessionError::SubAckTimeout));
}

#[test]
fn received_heads_are_kept_and_a_resent_qos2_message_is_delivered_once() {
    let (mut s, t0) = connected(10);
    s.keep_received_head(4);
    let publish = |qos, packet_id, payload| {
        bytes(Packet::Publish(Publish {
            dup: packet_id == 8,
            qos,
            retain: false,
            topic: "in",
            packet_id,
            payload,
        }))
    };
    let mut input = publish(QoS::ExactlyOnce, 7, b"first message");
    input.extend(publish(QoS::AtMostOnce, 0, b"ab"));
    input.extend(publish(QoS::ExactlyOnce, 7, b"first message"));
    s.handle_input(&input, t0).expect("publishes");
    let mut heads = Vec::new();
    while let Some(event) = s.poll_event() {
        if let Event::Received {
            head, payload_len, ..
        } = event
        {
            heads.push((s.received_head(head).to_vec(), payload_len));
        }
    }
    assert_eq!(heads, vec![(b"firs".to_vec(), 13), (b"ab".to_vec(), 2)]);
    assert_eq!(
        sent(&mut s, t0).packets(),
        [Packet::PubRec(7), Packet::PubRec(7)]
    );
    // After PUBREL the id is free again: a new message with it is delivered.
    s.handle_input(&bytes(Packet::PubRel(7)), t0)
        .expect("pubrel");
    s.handle_input(&publish(QoS::ExactlyOnce, 7, b"next"), t0)
        .expect("publish");
    assert!(matches!(s.poll_event(), Some(Event::Received { .. })));
    assert_eq!(
        s.received_head((1000, 4)),
        b"",
        "out of range is empty, not a panic"
    );
}

#[test]
fn idle_sessions_ping_and_fail_without_pingresp() {
    let (mut s, t0) = connected(10);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    s.handle_timeout(t0 + Duration::from_secs(59))
        .expect("early");
    assert!(s.pending_output().is_empty());
    let t1 = t0 + Duration::from_secs(60);
    s.handle_timeout(t1).expect("ping");
    assert_eq!(sent(&mut s, t1).packets(), [Packet::PingReq]);
    s.handle_input(&bytes(Packet::PingResp), t1)
        .expect("pingresp");
    let t2 = t1 + Duration::from_secs(60);
    assert_eq!(s.poll_timeout(), Some(t2));
    s.handle_timeout(t2).expect("ping again");
    sent(&mut s, t2);
    assert_eq!(s.poll_timeout(), Some(t2 + Duration::from_secs(10)));
    assert_eq!(
        s.handle_timeout(t2 + Duration::from_secs(10)),
        Err(SessionError::PingTimeout)
    );
}

#[test]
fn an_unacknowledged_publish_times_out() {
    let (mut s, t0) = connected(10);
    s.publish("t", b"a", QoS::AtLeastOnce, t0, t0)
        .expect("publish");
    sent(&mut s, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    assert_eq!(
        s.handle_timeout(t0 + Duration::from_secs(10)),
        Err(SessionError::AckTimeout)
    );
    assert_eq!(s.take_unacked().count(), 1);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let (mut s, t0) = connected(10);
    assert!(matches!(
        s.handle_input(&[0x00, 0x00], t0),
        Err(SessionError::Decode(_))
    ));
    let (mut s, t0) = connected(10);
    // A remaining length of 268 MB is refused from the header alone.
    assert!(matches!(
        s.handle_input(&[0x30, 0xff, 0xff, 0xff, 0x7f], t0),
        Err(SessionError::Decode(_))
    ));
}

#[test]
fn disconnect_is_sent_once_connected() {
    let (mut s, t0) = connected(10);
    s.disconnect();
    assert_eq!(sent(&mut s, t0).packets(), [Packet::Disconnect]);
    assert!(!s.is_connected());
}

fn persistent() -> SessionConfig {
    SessionConfig {
        clean_session: false,
        ..config(10)
    }
}

/// A second connection of the same client, adopting `carried`, answered with `present`.
fn reconnect(carried: Unacked, present: bool, now: Instant) -> Session {
    let mut s = Session::new(&persistent(), "dev-1", now).expect("session");
    s.adopt(carried);
    assert!(matches!(
        sent(&mut s, now).packets().first(),
        Some(Packet::Connect(_))
    ));
    s.handle_input(
        &bytes(Packet::ConnAck {
            session_present: present,
            code: ConnectReturnCode::Accepted,
        }),
        now,
    )
    .expect("connack");
    s
}

#[test]
fn unacked_publishes_are_resent_with_dup_and_their_ids_when_the_session_is_present() {
    let t0 = Instant::now();
    let mut s = Session::new(&persistent(), "dev-1", t0).expect("session");
    sent(&mut s, t0);
    s.handle_input(
        &bytes(Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }),
        t0,
    )
    .expect("connack");
    s.poll_event();
    let due = |ms| t0 + Duration::from_millis(ms);
    s.publish("t", b"one", QoS::AtLeastOnce, due(1), due(1))
        .expect("1");
    s.publish("t", b"two", QoS::ExactlyOnce, due(2), due(2))
        .expect("2");
    s.publish("t", b"three", QoS::ExactlyOnce, due(3), due(3))
        .expect("3");
    s.publish("t", b"four", QoS::AtLeastOnce, due(4), due(4))
        .expect("4");
    assert_eq!(
        sent(&mut s, due(4)).packets(),
        [
            publish_on_t(false, QoS::AtLeastOnce, 1, b"one"),
            publish_on_t(false, QoS::ExactlyOnce, 2, b"two"),
            publish_on_t(false, QoS::ExactlyOnce, 3, b"three"),
            publish_on_t(false, QoS::AtLeastOnce, 4, b"four"),
        ]
    );
    // Message 4 is acked, message 3 got as far as PUBREC; then the connection drops.
    s.handle_input(&bytes(Packet::PubAck(4)), due(5))
        .expect("ack");
    s.handle_input(&bytes(Packet::PubRec(3)), due(5))
        .expect("rec");
    assert_eq!(sent(&mut s, due(5)).packets(), [Packet::PubRel(3)]);
    assert!(matches!(s.poll_event(), Some(Event::Acked(_))));
    let next_id = s.next_packet_id();
    let carried = s.carry_over();
    assert_eq!(carried.len(), 3);

    let t1 = due(2000);
    let mut s = reconnect(carried, true, t1);
    s.resume_packet_ids(next_id);
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    assert_eq!(s.poll_event(), None, "nothing lost");
    assert_eq!(
        sent(&mut s, t1).packets(),
        [
            publish_on_t(true, QoS::AtLeastOnce, 1, b"one"),
            publish_on_t(true, QoS::ExactlyOnce, 2, b"two"),
            Packet::PubRel(3),
        ]
    );
    assert_eq!(s.resent_on_connect(), 3);
    // The ack timeout runs from the resend; latency still from the original due time.
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(10)));
    s.handle_input(&bytes(Packet::PubAck(1)), t1)
        .expect("ack 1");
    s.handle_input(&bytes(Packet::PubComp(3)), t1)
        .expect("comp 3");
    s.handle_input(&bytes(Packet::PubRec(2)), t1)
        .expect("rec 2");
    s.handle_input(&bytes(Packet::PubComp(2)), t1)
        .expect("comp 2");
    let dues: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .map(|e| match e {
            Event::Acked(c) => c.due,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(dues, vec![due(1), due(3), due(2)]);
    assert_eq!(s.inflight_len(), 0);
    // New publishes continue the ids and are not duplicates.
    s.publish("t", b"five", QoS::AtLeastOnce, t1, t1)
        .expect("5");
    assert_eq!(
        sent(&mut s, t1).packets(),
        [
            Packet::PubRel(2),
            publish_on_t(false, QoS::AtLeastOnce, 5, b"five"),
        ]
    );
}

#[test]
fn unacked_publishes_are_lost_when_the_broker_forgot_the_session() {
    let (mut s, t0) = connected(10);
    s.publish("t", b"a", QoS::AtLeastOnce, t0, t0).expect("a");
    sent(&mut s, t0);
    let carried = s.carry_over();
    let t1 = t0 + Duration::from_secs(1);
    let mut s = reconnect(carried, false, t1);
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    assert_eq!(s.poll_event(), Some(Event::Lost { due: t0 }));
    assert!(s.pending_output().is_empty(), "nothing re-sent");
    assert_eq!(s.inflight_len(), 0);
}

#[test]
fn carried_publishes_survive_a_failed_attempt() {
    let (mut s, t0) = connected(10);
    s.publish("t", b"a", QoS::AtLeastOnce, t0, t0).expect("a");
    let carried = s.carry_over();
    // The next attempt is refused before its CONNACK: what it adopted is carried again.
    let mut s = Session::new(&persistent(), "dev-1", t0).expect("session");
    s.adopt(carried);
    assert_eq!(s.inflight_len(), 1);
    let again = s.carry_over();
    assert_eq!(again.into_dues().collect::<Vec<_>>(), vec![t0]);
}
