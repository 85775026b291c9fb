//! A device speaking MQTT 5 on virtual time: the broker's Receive Maximum holds publishes
//! back, repeated topics go by alias, user property templates are expanded per device, and a
//! refusing PUBACK is a named publish failure.

use std::time::Instant;

use super::*;
use crate::mqtt::v5::{self, Ack, ConnAck, Properties, ReasonCode};

/// What the device sent, decoded as MQTT 5: (topic, topic alias, packet id) per PUBLISH.
fn take_publishes(device: &mut Device, now: Instant) -> Vec<(String, Option<u16>, u16)> {
    let mut buf = device.poll_transmit();
    let mut publishes = Vec::new();
    while let Some((packet, n)) = v5::decode(buf, 1 << 20).expect("the device sends MQTT 5") {
        match packet {
            v5::Packet::Publish(p) => {
                // `--user-property dev={client_id}`, expanded for this device.
                let user: Vec<_> = p.properties.user.iter().collect();
                assert_eq!(user, [("dev", "dev-0")]);
                publishes.push((p.topic.to_owned(), p.properties.topic_alias, p.packet_id));
            }
            v5::Packet::Connect(c) => assert_eq!(c.properties.topic_alias_maximum, Some(2)),
            other => panic!("unexpected {other:?}"),
        }
        buf = &buf[n..];
    }
    device.transmitted(now);
    publishes
}

fn feed5(device: &mut Device, packet: v5::Packet<'_>, at: Instant) {
    let mut bytes = Vec::new();
    packet.encode(&mut bytes).expect("encodable");
    device.handle_input(&bytes, at).expect("well-formed");
}

/// One wakeup, as the loop's pump does it.
fn wake(device: &mut Device, env: &mut Env<'_, Recorder>, now: Instant) {
    device.handle_events(now, env).expect("events");
    if device.may_publish(now, env) {
        while device.publish_due(now, false, env).expect("publish") == Batch::Full {}
    }
    device.handle_timeout(now, env).expect("timers");
}

#[test]
fn receive_maximum_aliases_and_refusals() {
    let plan = plan(&[
        "--mqtt-version",
        "5",
        "--topic-alias-maximum",
        "2",
        "--user-property",
        "dev={client_id}",
    ]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    device.set_expected_copies(1);
    assert_eq!(device.poll_start(t0, &mut env), Start::Now);
    device.begin_attempt(t0, &mut env).expect("CONNECT");
    assert!(take_publishes(&mut device, t0).is_empty());
    // The broker allows one message in flight and one topic alias.
    let connack = t0 + 5 * MS;
    let limits = Properties {
        receive_maximum: Some(1),
        topic_alias_maximum: Some(1),
        ..Properties::default()
    };
    feed5(
        &mut device,
        v5::Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: limits,
        }),
        connack,
    );
    wake(&mut device, &mut env, connack);
    assert_eq!(device.phase(), Phase::Connected);

    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    wake(&mut device, &mut env, first);
    assert_eq!(
        take_publishes(&mut device, first),
        [("t/0".to_owned(), Some(1), 1)]
    );
    // The second falls due while the first is unacknowledged: held back by the window of 1.
    let second = first + PERIOD;
    wake(&mut device, &mut env, second);
    assert!(take_publishes(&mut device, second).is_empty());

    // The broker refuses the first (ACL): a named failure; the second goes, by alias.
    let refused = second + 2 * MS;
    feed5(
        &mut device,
        v5::Packet::PubAck(Ack {
            packet_id: 1,
            reason: ReasonCode::NotAuthorized,
            properties: Properties::default(),
        }),
        refused,
    );
    wake(&mut device, &mut env, refused);
    assert_eq!(
        take_publishes(&mut device, refused),
        [(String::new(), Some(1), 2)]
    );
    assert_eq!(
        env.stats.failures,
        [(
            NAME_PUBLISH,
            us(refused - first),
            "PUBACK 0x87 not authorized".to_owned()
        )]
    );
    // Refused, so no subscriber can get it: not expected, not lost.
    assert_eq!(env.stats.delivery.sent, 2);
    assert_eq!(env.stats.delivery.expected, 1);
}

#[test]
fn publishes_too_large_for_the_broker_are_named_failures_and_the_plan_goes_on() {
    let plan = plan(&["--mqtt-version", "5", "--payload-bytes", "2000"]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    assert_eq!(device.poll_start(t0, &mut env), Start::Now);
    device.begin_attempt(t0, &mut env).expect("CONNECT");
    device.transmitted(t0);
    let connack = t0 + 5 * MS;
    let limits = Properties {
        maximum_packet_size: Some(1024),
        ..Properties::default()
    };
    feed5(
        &mut device,
        v5::Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: limits,
        }),
        connack,
    );
    wake(&mut device, &mut env, connack);
    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    for k in 0..3u32 {
        wake(&mut device, &mut env, first + PERIOD * k);
    }
    assert!(
        device.poll_transmit().is_empty(),
        "nothing over the limit is sent"
    );
    let names: Vec<&str> = env.stats.failures.iter().map(|f| f.2.as_str()).collect();
    assert_eq!(names, [crate::session::OVER_BROKER_MAXIMUM; 3]);
    assert_eq!(device.phase(), Phase::Connected);
    assert_eq!(
        device.poll_timeout(first + PERIOD * 2, &env, false),
        first + PERIOD * 3
    );
}
