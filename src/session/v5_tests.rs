//! The session under MQTT 5, on virtual time: CONNECT properties, the broker's limits from
//! CONNACK, topic aliases, and reason codes turned into named failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Event, Mqtt5Options, Session, SessionConfig, SessionError};
use crate::mqtt::QoS;
use crate::mqtt::v5::{
    self, Ack, ConnAck, Disconnect, Packet, Properties, ReasonCode, SubAck, UserProperties,
};

fn options() -> Mqtt5Options {
    Mqtt5Options {
        session_expiry: Some(300),
        receive_maximum: Some(50),
        max_packet_size: Some(4096),
        topic_alias_maximum: Some(4),
        message_expiry: Some(30),
        content_type: Some("application/json".into()),
        ..Mqtt5Options::default()
    }
    .with_user_properties(vec![("site".into(), "lab".into())])
    .expect("valid")
}

fn config(max_inflight: u16, clean_session: bool) -> SessionConfig {
    SessionConfig {
        keep_alive: Duration::from_secs(60),
        clean_session,
        username: None,
        password: Some("token".into()),
        max_inflight,
        ack_timeout: Duration::from_secs(10),
        max_packet_size: 1 << 20,
        mqtt5: Some(Arc::new(options())),
    }
}

fn bytes(packet: Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    packet.encode(&mut out).expect("encodable");
    out
}

/// The session's output decoded as MQTT 5 (marked sent).
fn sent(session: &mut Session, now: Instant) -> Vec<u8> {
    let out = session.pending_output().to_vec();
    session.output_sent(now);
    out
}

fn packets(buf: &[u8]) -> Vec<Packet<'_>> {
    let mut rest = buf;
    let mut out = Vec::new();
    while let Some((packet, n)) = v5::decode(rest, 1 << 20).expect("valid MQTT 5") {
        out.push(packet);
        rest = &rest[n..];
    }
    assert!(rest.is_empty(), "output ends with a partial packet");
    out
}

fn connack(reason: ReasonCode, properties: Properties<'_>) -> Vec<u8> {
    bytes(Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        properties,
    }))
}

/// A session connected to a broker that allows `receive_maximum` and `alias_max` aliases.
fn connected(max_inflight: u16, receive_maximum: u16, alias_max: u16) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(&config(max_inflight, true), "dev-1", t0).expect("session");
    sent(&mut s, t0);
    let properties = Properties {
        receive_maximum: Some(receive_maximum),
        topic_alias_maximum: Some(alias_max),
        ..Properties::default()
    };
    s.handle_input(&connack(ReasonCode::Success, properties), t0)
        .expect("connack");
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    (s, t0)
}

#[test]
fn connect_carries_the_mqtt5_properties() {
    let t0 = Instant::now();
    let mut s = Session::new(&config(10, false), "dev-1", t0).expect("session");
    let out = sent(&mut s, t0);
    let [Packet::Connect(connect)] = &packets(&out)[..] else {
        panic!("one CONNECT");
    };
    assert_eq!(connect.client_id, "dev-1");
    assert!(!connect.clean_start);
    // MQTT 5 sends a password without a user name.
    assert_eq!(
        (connect.username, connect.password),
        (None, Some(&b"token"[..]))
    );
    let p = &connect.properties;
    assert_eq!(p.session_expiry_interval, Some(300));
    assert_eq!(p.receive_maximum, Some(50));
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.topic_alias_maximum, Some(4));
    // Without --session-expiry: a persistent session never expires, as in 3.1.1.
    for (clean, expiry) in [(false, Some(u32::MAX)), (true, None)] {
        let mut config = config(10, clean);
        config.mqtt5 = Some(Arc::new(Mqtt5Options::default()));
        let mut s = Session::new(&config, "dev-1", t0).expect("session");
        let out = sent(&mut s, t0);
        let [Packet::Connect(connect)] = &packets(&out)[..] else {
            panic!("one CONNECT");
        };
        assert_eq!(connect.properties.session_expiry_interval, expiry);
    }
}

#[test]
fn the_brokers_receive_maximum_caps_the_window() {
    let (mut s, t0) = connected(10, 2, 0);
    let mut published = 0;
    while s.can_publish(QoS::AtLeastOnce) {
        s.publish("t", b"x", QoS::AtLeastOnce, t0, t0)
            .expect("ready");
        published += 1;
    }
    assert_eq!(published, 2);
    // Our own --max-inflight still caps it when smaller.
    let (mut s, t0) = connected(1, 20, 0);
    s.publish("t", b"x", QoS::AtLeastOnce, t0, t0)
        .expect("ready");
    assert!(!s.can_publish(QoS::AtLeastOnce));
}

#[test]
fn repeated_topics_go_by_alias_within_the_brokers_limit() {
    let (mut s, t0) = connected(10, 100, 3);
    for _ in 0..3 {
        s.publish("devices/7/telemetry", b"{}", QoS::AtMostOnce, t0, t0)
            .expect("ready");
    }
    s.publish("other", b"{}", QoS::AtMostOnce, t0, t0)
        .expect("ready");
    let out = sent(&mut s, t0);
    let topics: Vec<(&str, Option<u16>)> = packets(&out)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic, p.properties.topic_alias),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        topics,
        [
            ("devices/7/telemetry", Some(1)),
            ("", Some(1)),
            ("", Some(1)),
            ("other", None)
        ]
    );
    // A broker that allows no alias gets the topic every time.
    let (mut s, t0) = connected(10, 100, 0);
    s.publish("t", b"", QoS::AtMostOnce, t0, t0).expect("ready");
    s.publish("t", b"", QoS::AtMostOnce, t0, t0).expect("ready");
    let out = sent(&mut s, t0);
    for packet in packets(&out) {
        let Packet::Publish(p) = packet else { panic!() };
        assert_eq!((p.topic, p.properties.topic_alias), ("t", None));
    }
}

#[test]
fn publishes_carry_expiry_content_type_and_user_properties() {
    let (mut s, t0) = connected(10, 100, 0);
    s.publish("t", b"{}", QoS::AtLeastOnce, t0, t0)
        .expect("ready");
    let out = sent(&mut s, t0);
    let [Packet::Publish(p)] = &packets(&out)[..] else {
        panic!("one PUBLISH");
    };
    assert_eq!(p.properties.message_expiry_interval, Some(30));
    assert_eq!(p.properties.content_type, Some("application/json"));
    assert_eq!(
        p.properties.user.iter().collect::<Vec<_>>(),
        [("site", "lab")]
    );
}

#[test]
fn refused_publishes_become_named_failures() {
    let (mut s, t0) = connected(10, 100, 0);
    s.publish("t", b"abc", QoS::AtLeastOnce, t0, t0)
        .expect("ready");
    s.publish("t", b"abc", QoS::ExactlyOnce, t0, t0)
        .expect("ready");
    sent(&mut s, t0);
    let t1 = t0 + Duration::from_millis(5);
    let refusal = |id, reason| Ack {
        packet_id: id,
        reason,
        properties: Properties::default(),
    };
    let mut input = bytes(Packet::PubAck(refusal(1, ReasonCode::NotAuthorized)));
    input.extend(bytes(Packet::PubRec(refusal(2, ReasonCode::QuotaExceeded))));
    s.handle_input(&input, t1)
        .expect("refusals are not protocol errors");
    let reasons: Vec<&str> = std::iter::from_fn(|| s.poll_event())
        .map(|event| match event {
            Event::Rejected { done, reason } => {
                assert_eq!((done.due, done.acked, done.payload_len), (t0, t1, 3));
                reason
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        ["PUBACK 0x87 not authorized", "PUBREC 0x97 quota exceeded"]
    );
    assert_eq!(s.inflight_len(), 0);
    // No PUBREL follows a refusing PUBREC.
    assert!(s.pending_output().is_empty());
    // A success PUBACK with a reason code byte (0x10) still completes.
    s.publish("t", b"abc", QoS::AtLeastOnce, t1, t1)
        .expect("ready");
    let ack = bytes(Packet::PubAck(refusal(
        3,
        ReasonCode::NoMatchingSubscribers,
    )));
    s.handle_input(&ack, t1).expect("ack");
    assert!(matches!(s.poll_event(), Some(Event::Acked(_))));
}

#[test]
fn refused_connack_and_server_disconnect_name_their_reason() {
    let t0 = Instant::now();
    let mut s = Session::new(&config(10, true), "dev-1", t0).expect("session");
    let refused = connack(ReasonCode::NotAuthorized, Properties::default());
    let error = s.handle_input(&refused, t0).unwrap_err();
    assert_eq!(error, SessionError::RefusedV5(ReasonCode::NotAuthorized));
    assert_eq!(error.to_string(), "CONNACK refused: 0x87 not authorized");

    let (mut s, t0) = connected(10, 100, 0);
    let disconnect = bytes(Packet::Disconnect(Disconnect::with_reason(
        ReasonCode::QuotaExceeded,
    )));
    let error = s.handle_input(&disconnect, t0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "DISCONNECT from broker: 0x97 quota exceeded"
    );
    assert!(!s.is_connected());
}

#[test]
fn suback_refusal_carries_its_reason_code() {
    let (mut s, t0) = connected(10, 100, 0);
    s.subscribe("$share/g/t/#", QoS::AtLeastOnce, t0)
        .expect("connected");
    let out = sent(&mut s, t0);
    let [Packet::Subscribe(sub)] = &packets(&out)[..] else {
        panic!("one SUBSCRIBE");
    };
    assert_eq!(sub.filters[0].0, "$share/g/t/#");
    let suback = bytes(Packet::SubAck(SubAck {
        packet_id: sub.packet_id,
        properties: Properties::default(),
        reasons: vec![ReasonCode::NotAuthorized],
    }));
    s.handle_input(&suback, t0).expect("suback");
    assert!(matches!(
        s.poll_event(),
        Some(Event::Subscribed {
            granted: None,
            refusal: Some(ReasonCode::NotAuthorized),
            ..
        })
    ));
}

#[test]
fn templated_properties_are_made_per_device() {
    let shared = options();
    assert_eq!(shared.for_device(|t| t.replace("{i}", "7")), None);
    let templated = Mqtt5Options {
        content_type: Some("text/{i}".into()),
        ..Mqtt5Options::default()
    }
    .with_user_properties(vec![("device".into(), "d-{i}".into())])
    .expect("valid");
    let mine = templated
        .for_device(|t| t.replace("{i}", "7"))
        .expect("personal");
    assert_eq!(mine.content_type.as_deref(), Some("text/7"));
    let wire = UserProperties::Wire(&mine.user_properties);
    assert_eq!(wire.iter().collect::<Vec<_>>(), [("device", "d-7")]);
}

#[test]
fn subscribe_sends_the_mqtt5_options() {
    let (mut s, t0) = connected(10, 100, 0);
    let options = v5::SubscriptionOptions {
        qos: QoS::ExactlyOnce,
        no_local: true,
        retain_as_published: true,
        retain_handling: v5::RetainHandling::SendIfNew,
    };
    s.subscribe_with("a/#", options, t0).expect("connected");
    let out = sent(&mut s, t0);
    let [Packet::Subscribe(sub)] = &packets(&out)[..] else {
        panic!("one SUBSCRIBE");
    };
    assert_eq!(sub.filters, [("a/#", options)]);
}

#[test]
fn incoming_aliases_past_our_maximum_are_refused() {
    let (mut s, t0) = connected(10, 100, 0);
    let publish = |alias| {
        bytes(Packet::Publish(v5::Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: 0,
            properties: Properties {
                topic_alias: Some(alias),
                ..Properties::default()
            },
            payload: b"hi",
        }))
    };
    s.handle_input(&publish(4), t0)
        .expect("within our maximum of 4");
    assert!(matches!(s.poll_event(), Some(Event::Received { .. })));
    assert_eq!(
        s.handle_input(&publish(5), t0),
        Err(SessionError::Unexpected("topic alias above our maximum"))
    );
}

#[test]
fn kept_copies_resend_with_the_full_topic() {
    let t0 = Instant::now();
    let mut s = Session::new(&config(10, false), "dev-1", t0).expect("session");
    sent(&mut s, t0);
    let properties = Properties {
        topic_alias_maximum: Some(2),
        ..Properties::default()
    };
    s.handle_input(&connack(ReasonCode::Success, properties), t0)
        .expect("connack");
    for _ in 0..2 {
        s.publish("t/1", b"x", QoS::AtLeastOnce, t0, t0)
            .expect("ready");
    }
    sent(&mut s, t0);
    let mut next = Session::new(&config(10, false), "dev-1", t0).expect("session");
    next.adopt(s.carry_over());
    sent(&mut next, t0);
    let present = bytes(Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }));
    next.handle_input(&present, t0).expect("connack");
    let out = sent(&mut next, t0);
    let resent: Vec<(bool, &str, Option<u16>)> = packets(&out)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.dup, p.topic, p.properties.topic_alias),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(resent, [(true, "t/1", None), (true, "t/1", None)]);
}

#[test]
fn publishes_over_the_brokers_maximum_packet_size_are_not_sent() {
    let t0 = Instant::now();
    let mut s = Session::new(&config(10, true), "dev-1", t0).expect("session");
    sent(&mut s, t0);
    let properties = Properties {
        maximum_packet_size: Some(200),
        ..Properties::default()
    };
    s.handle_input(&connack(ReasonCode::Success, properties), t0)
        .expect("connack");
    let big = [0u8; 300];
    assert_eq!(
        s.publish("t", &big, QoS::AtLeastOnce, t0, t0),
        Err(SessionError::OverBrokerMaximum)
    );
    assert!(s.pending_output().is_empty());
    assert_eq!(s.inflight_len(), 0);
    // A small one still goes, and fits.
    s.publish("t", &big[..50], QoS::AtLeastOnce, t0, t0)
        .expect("fits");
    let out = sent(&mut s, t0);
    assert!(out.len() <= 200, "{}", out.len());
    assert!(matches!(packets(&out)[..], [Packet::Publish(_)]));
}
