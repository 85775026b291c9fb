//! Devices driven on virtual time with no sockets: the bytes a broker would send are made with
//! the crate's own encoder, and what a device sends is decoded into typed packets.

use std::time::{Duration, Instant};

use clap::Parser;

use super::*;
use crate::cli::Cli;
use crate::engine::Epoch;
use crate::engine::subscriber::{DRAIN_GRACE, DeliveryGate};
use crate::mqtt::{self, ConnectReturnCode, Packet, Publish, QoS};
use crate::plan::{NAME_CONNECT, NAME_DISCONNECT, NAME_PUBLISH, RunPlan};
use crate::stats::{ConnectionCounts, DeliveryCounts, NameId};

const MS: Duration = Duration::from_millis(1);
/// The tests' rate: 100 msg/s, one message every 10 ms.
const PERIOD: Duration = Duration::from_millis(10);

/// Everything a device recorded, in order.
#[derive(Debug, Default)]
struct Recorder {
    successes: Vec<(NameId, u64)>,
    failures: Vec<(NameId, u64, String)>,
    untimed: Vec<(NameId, u64, String)>,
    send_lags: Vec<u64>,
    held_back: Vec<u64>,
    delivery: DeliveryCounts,
    connections: ConnectionCounts,
}

impl StatsSink for Recorder {
    fn record_success(&mut self, name: NameId, response_us: u64, _content_length: u64) {
        self.successes.push((name, response_us));
    }
    fn record_failure(&mut self, name: NameId, response_us: u64, error: &str) {
        self.failures.push((name, response_us, error.to_owned()));
    }
    fn record_untimed_failures(&mut self, name: NameId, count: u64, error: &str) {
        self.untimed.push((name, count, error.to_owned()));
    }
    fn record_send_lag(&mut self, lag_us: u64) {
        self.send_lags.push(lag_us);
    }
    fn record_held_back(&mut self, lag_us: u64) {
        self.held_back.push(lag_us);
    }
    fn delivery(&mut self) -> &mut DeliveryCounts {
        &mut self.delivery
    }
    fn connections(&mut self) -> &mut ConnectionCounts {
        &mut self.connections
    }
}

impl Recorder {
    /// Latencies (µs) of the successes of row `name`, taken.
    fn take_successes(&mut self, name: NameId) -> Vec<u64> {
        let (taken, kept) = std::mem::take(&mut self.successes)
            .into_iter()
            .partition(|&(n, _)| n == name);
        self.successes = kept;
        taken.into_iter().map(|(_, us)| us).collect()
    }
}

/// A packet a device sent, decoded and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Connect { client_id: String },
    Publish { id: u16, dup: bool, topic: String },
    PubAck(u16),
    Subscribe { id: u16, filter: String },
    Disconnect,
    PingReq,
}

fn plan(extra: &[&str]) -> RunPlan {
    let mut args = vec![
        "mqload",
        "--host",
        "127.0.0.1",
        "--no-tls",
        "-u",
        "1",
        "--throughput",
        "100",
        "--qos",
        "1",
        "--max-inflight",
        "100",
        "--stop-timeout",
        "5s",
        "-t",
        "60s",
    ];
    args.extend_from_slice(extra);
    RunPlan::from_cli(&Cli::parse_from(args)).expect("a valid plan")
}

fn epoch(t0: Instant) -> Epoch {
    Epoch {
        instant: t0,
        unix: 1_800_000_000.0,
    }
}

fn encoded(packet: Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    #[allow(clippy::let_unit_value)]
    let _ = packet.encode(&mut out);
    out
}

/// The broker's bytes for `packet`, arriving at `at`.
fn feed(device: &mut Device, packet: Packet<'_>, at: Instant) {
    device
        .handle_input(&encoded(packet), at)
        .expect("the device accepts a well-formed packet");
}

/// Decodes and takes what the device has to send, as the loop would write it at `now`.
fn take_sent(device: &mut Device, now: Instant) -> Vec<Sent> {
    let mut buf = device.poll_transmit();
    let mut sent = Vec::new();
    while let Some((packet, n)) = mqtt::decode(buf, 1 << 20).expect("the device sends MQTT") {
        sent.push(match packet {
            Packet::Connect(c) => Sent::Connect {
                client_id: c.client_id.to_owned(),
            },
            Packet::Publish(p) => Sent::Publish {
                id: p.packet_id,
                dup: p.dup,
                topic: p.topic.to_owned(),
            },
            Packet::PubAck(id) => Sent::PubAck(id),
            Packet::Subscribe { packet_id, filters } => Sent::Subscribe {
                id: packet_id,
                filter: filters[0].0.to_owned(),
            },
            Packet::Disconnect => Sent::Disconnect,
            Packet::PingReq => Sent::PingReq,
            other => panic!("a device never sends {other:?}"),
        });
        buf = &buf[n..];
    }
    assert!(buf.is_empty(), "a partial packet in the output");
    device.transmitted(now);
    sent
}

/// One wakeup of a device with a socket, as the loop's pump does it; `backlog` says the socket
/// still holds unwritten bytes.
fn pump(
    device: &mut Device,
    env: &mut Env<'_, Recorder>,
    now: Instant,
    backlog: bool,
) -> Vec<Sent> {
    device.handle_events(now, env).expect("events");
    let mut sent = Vec::new();
    if device.may_publish(now, env) {
        while device.publish_due(now, backlog, env).expect("publish") == Batch::Full {
            sent.extend(take_sent(device, now));
        }
    }
    device.handle_timeout(now, env).expect("timers");
    sent.extend(take_sent(device, now));
    device.settle(now, env);
    sent
}

/// Starts an attempt at `at` and answers CONNACK `rtt` later; returns the CONNACK's time.
fn connect(
    device: &mut Device,
    env: &mut Env<'_, Recorder>,
    at: Instant,
    rtt: Duration,
) -> Instant {
    assert_eq!(device.poll_start(at, env), Start::Now);
    device.begin_attempt(at, env).expect("CONNECT");
    let sent = take_sent(device, at);
    assert!(matches!(&sent[..], [Sent::Connect { .. }]), "{sent:?}");
    assert_eq!(device.phase(), Phase::Connecting);
    let connack = at + rtt;
    feed(
        device,
        Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        },
        connack,
    );
    connack
}

/// The packet ids of the publishes in `sent`.
fn publish_ids(sent: &[Sent]) -> Vec<u16> {
    sent.iter()
        .filter_map(|s| match s {
            Sent::Publish { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

#[test]
fn a_publisher_keeps_its_plan_through_a_stall_a_drop_and_a_reconnect() {
    let plan = plan(&[]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    let first = connect_and_publish_five(&mut device, &mut env, t0);
    stall_for_250_ms(&mut device, &mut env, first);
    drop_and_reconnect(&mut device, &mut env, first);
}

/// Connects at `t0` and publishes five on time; returns when the first was due.
fn connect_and_publish_five(
    device: &mut Device,
    env: &mut Env<'_, Recorder>,
    t0: Instant,
) -> Instant {
    // Connect: CONNECT, CONNACK 5 ms later; the first message is due 1 s after the CONNACK.
    let connack = connect(device, env, t0, 5 * MS);
    assert!(pump(device, env, connack, false).is_empty());
    assert_eq!(device.phase(), Phase::Connected);
    assert_eq!(env.stats.take_successes(NAME_CONNECT), vec![5000]);
    assert_eq!(env.connected, 1);
    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    assert_eq!(device.poll_timeout(connack, env, false), first);

    // Five on time, each acked 2 ms later: latency from the due time.
    for k in 0..5u32 {
        let due = first + PERIOD * k;
        let sent = pump(device, env, due, false);
        assert_eq!(
            sent,
            vec![Sent::Publish {
                id: k as u16 + 1,
                dup: false,
                topic: "t/0".into()
            }]
        );
        feed(device, Packet::PubAck(k as u16 + 1), due + 2 * MS);
        assert!(pump(device, env, due + 2 * MS, false).is_empty());
    }
    assert_eq!(env.stats.send_lags, vec![0; 5]);
    assert_eq!(env.stats.take_successes(NAME_PUBLISH), vec![2000; 5]);
    first
}

/// The socket stays full for 250 ms, from the sixth message on.
fn stall_for_250_ms(device: &mut Device, env: &mut Env<'_, Recorder>, first: Instant) {
    // A 250 ms stall: the socket stays full while the slots at 50 .. 290 ms fall due.
    for k in 5..30u32 {
        assert!(pump(device, env, first + PERIOD * k, true).is_empty());
    }
    let unblocked = first + 295 * MS;
    let sent = pump(device, env, unblocked, false);
    // Exactly 25 held back, each late from its own due time; the plan did not slide.
    assert_eq!(publish_ids(&sent), (6..=30).collect::<Vec<u16>>());
    let expected_lags: Vec<u64> = (5..30u32)
        .map(|k| us(unblocked - (first + PERIOD * k)))
        .collect();
    assert_eq!(env.stats.held_back, expected_lags);
    assert_eq!(
        env.stats.send_lags.len(),
        5,
        "none of them counted as on time"
    );
    let acked = unblocked + MS;
    for id in 6..=30u16 {
        feed(device, Packet::PubAck(id), acked);
    }
    pump(device, env, acked, false);
    let expected_latencies: Vec<u64> = (5..30u32)
        .map(|k| us(acked - (first + PERIOD * k)))
        .collect();
    assert_eq!(env.stats.take_successes(NAME_PUBLISH), expected_latencies);
    assert_eq!(device.poll_timeout(acked, env, false), first + 300 * MS);
    let sent = pump(device, env, first + 300 * MS, false);
    assert_eq!(publish_ids(&sent), vec![31]);
    assert_eq!(env.stats.send_lags.len(), 6, "back on time");
}

/// The broker drops the connection at 305 ms; the device is back at 460 ms.
fn drop_and_reconnect(device: &mut Device, env: &mut Env<'_, Recorder>, first: Instant) {
    // The broker drops the connection 5 ms later, message 31 unacked.
    let dropped = first + 305 * MS;
    device.failed(dropped, env, "closed by the broker");
    assert_eq!(device.poll_close(), Some(Close::Abrupt));
    assert_eq!(device.phase(), Phase::Idle);
    assert_eq!(env.connected, 0);
    assert_eq!(
        env.stats.failures,
        vec![
            (NAME_DISCONNECT, 0, "closed by the broker".to_owned()),
            (
                NAME_PUBLISH,
                5000,
                "connection lost before the ack".to_owned()
            ),
        ]
    );
    assert_eq!(env.stats.connections.drops, 1);
    // The first backoff is 100 ms with jitter x0.5 .. x1.5.
    let backoff = device.idle_until() - dropped;
    assert!(backoff >= 50 * MS && backoff < 150 * MS, "{backoff:?}");
    assert_eq!(
        device.poll_start(dropped, env),
        Start::At(device.idle_until())
    );

    // Reconnected at 460 ms (after any backoff), CONNACK 4 ms later: the slots 310 .. 460 ms
    // fell due while down and count as missed, and publishing resumes at the next slot.
    let back = connect(device, env, first + 460 * MS, 4 * MS);
    assert!(pump(device, env, back, false).is_empty());
    assert_eq!(
        env.stats.untimed,
        vec![(NAME_PUBLISH, 16, "not connected when due".to_owned())]
    );
    assert_eq!(env.stats.connections.reconnects, 1);
    assert_eq!(device.poll_timeout(back, env, false), first + 470 * MS);
    let sent = pump(device, env, first + 470 * MS, false);
    assert_eq!(publish_ids(&sent), vec![32], "packet ids go on");
    assert_eq!(env.stats.send_lags.last(), Some(&0));
    assert_eq!(env.stats.delivery.sent, 32);
}

/// The seed's first-publish delay, as the schedule defines it.
const FIRST_PUBLISH_DELAY_FOR_TESTS: Duration = crate::engine::schedule::FIRST_PUBLISH_DELAY;

#[test]
fn a_connection_lifetime_retires_once_acked_and_reconnects_at_once_without_a_gap() {
    let plan = plan(&["--connection-lifetime", "2s"]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    let connack = connect(&mut device, &mut env, t0, 5 * MS);
    pump(&mut device, &mut env, connack, false);
    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    let retire = connack + Duration::from_secs(2);
    // Publishes until its lifetime ends, acking all but the last.
    let mut at = first;
    let mut last_id = 0;
    while at < retire {
        let ids = publish_ids(&pump(&mut device, &mut env, at, false));
        last_id = *ids.last().expect("one due");
        at += PERIOD;
    }
    assert_eq!(last_id, 100, "1 s of publishing at 100 msg/s");
    for id in 1..100 {
        feed(&mut device, Packet::PubAck(id), retire - MS);
    }
    // At its end it publishes nothing more and waits for the last ack.
    assert!(pump(&mut device, &mut env, retire, false).is_empty());
    assert_eq!(device.phase(), Phase::Connected);
    feed(&mut device, Packet::PubAck(100), retire + 3 * MS);
    let sent = pump(&mut device, &mut env, retire + 3 * MS, false);
    assert_eq!(sent, vec![Sent::Disconnect]);
    assert_eq!(device.poll_close(), Some(Close::Polite));
    assert_eq!(device.phase(), Phase::Idle);
    assert_eq!(env.stats.take_successes(NAME_DISCONNECT), vec![0]);
    // The reconnect goes at once, not after a backoff.
    let back = connect(&mut device, &mut env, retire + 3 * MS, 4 * MS);
    let sent = pump(&mut device, &mut env, back, false);
    // What fell due meanwhile (2.005, 2.015 s after t0 ...) goes now, none counted missed.
    let due_meanwhile = (back - retire).as_nanos().div_ceil(PERIOD.as_nanos()) as u16;
    assert_eq!(
        publish_ids(&sent),
        (101..101 + due_meanwhile).collect::<Vec<_>>()
    );
    assert!(env.stats.untimed.is_empty());
    assert!(env.stats.failures.is_empty());
    assert_eq!(env.stats.connections.connects, 2);
}

#[test]
fn a_stopping_publisher_waits_for_its_acks_then_disconnects() {
    let plan = plan(&[]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    let connack = connect(&mut device, &mut env, t0, 5 * MS);
    pump(&mut device, &mut env, connack, false);
    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    pump(&mut device, &mut env, first, false);
    pump(&mut device, &mut env, first + PERIOD, false);
    // Stop with 2 unacked.
    let stop = first + 15 * MS;
    env.stop_deadline = Some(stop + plan.stop_timeout);
    device.stop(stop, &mut env, AttemptStep::ConnAck);
    assert_eq!(device.phase(), Phase::Draining);
    assert!(pump(&mut device, &mut env, stop, false).is_empty());
    assert!(
        pump(&mut device, &mut env, first + 20 * MS, false).is_empty(),
        "no more publishes"
    );
    assert_eq!(
        device.poll_timeout(stop, &env, false),
        stop + plan.stop_timeout
    );
    feed(&mut device, Packet::PubAck(1), stop + 3 * MS);
    assert!(
        pump(&mut device, &mut env, stop + 3 * MS, false).is_empty(),
        "one to go"
    );
    feed(&mut device, Packet::PubAck(2), stop + 6 * MS);
    assert_eq!(
        pump(&mut device, &mut env, stop + 6 * MS, false),
        vec![Sent::Disconnect]
    );
    assert_eq!(
        (device.phase(), device.poll_close()),
        (Phase::Closed, Some(Close::Polite))
    );
    assert_eq!(env.stats.take_successes(NAME_DISCONNECT), vec![0]);
    assert!(env.stats.failures.is_empty());
}

#[test]
fn a_stopping_publisher_whose_acks_never_come_leaves_at_the_deadline() {
    let plan = plan(&[]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let first = t0 + 5 * MS + FIRST_PUBLISH_DELAY_FOR_TESTS;
    let stop = first + 15 * MS;
    // Its acks never come: at the deadline they count failed, then DISCONNECT.
    let mut late = Device::new(1, "dev-1".into(), "t/1".into(), t0);
    let connack = connect(&mut late, &mut env, t0, 5 * MS);
    pump(&mut late, &mut env, connack, false);
    pump(&mut late, &mut env, first, false);
    env.stop_deadline = Some(stop + plan.stop_timeout);
    late.stop(stop, &mut env, AttemptStep::ConnAck);
    let deadline = stop + plan.stop_timeout;
    assert!(pump(&mut late, &mut env, deadline - MS, false).is_empty());
    assert_eq!(
        pump(&mut late, &mut env, deadline, false),
        vec![Sent::Disconnect]
    );
    assert_eq!(late.phase(), Phase::Closed);
    assert_eq!(
        env.stats.failures,
        vec![(
            NAME_PUBLISH,
            us(deadline - first),
            "no ack before the stop timeout".to_owned()
        )]
    );
}

#[test]
fn a_device_still_connecting_when_the_run_stops_is_a_failed_connect_naming_its_step() {
    let plan = plan(&[]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let stop = t0 + 40 * MS;
    let mut connecting = Device::new(2, "dev-2".into(), "t/2".into(), t0);
    assert_eq!(connecting.poll_start(t0, &mut env), Start::Now);
    connecting.begin_attempt(t0, &mut env).expect("CONNECT");
    env.stop_deadline = Some(stop + plan.stop_timeout);
    connecting.stop(stop, &mut env, AttemptStep::Tls);
    assert_eq!(connecting.phase(), Phase::Closed);
    assert_eq!(
        env.stats.failures.last(),
        Some(&(
            NAME_CONNECT,
            40_000,
            "TLS handshake not finished before the run ended".to_owned()
        ))
    );
}

#[test]
fn failed_attempts_back_off_with_growing_jittered_waits() {
    let plan = plan(&[]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 11);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    let mut at = t0;
    for failures in 0..6u32 {
        assert_eq!(device.poll_start(at, &mut env), Start::Now);
        device.begin_attempt(at, &mut env).expect("CONNECT");
        // The broker refuses it.
        let refused = encoded(Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::ServerUnavailable,
        });
        let err = device.handle_input(&refused, at + MS).expect_err("refused");
        device.failed(at + MS, &mut env, &err.to_string());
        assert_eq!(device.poll_close(), Some(Close::Abrupt));
        let base = Duration::from_millis(100) * (1 << failures);
        let wait = device.idle_until() - (at + MS);
        assert!(
            wait >= base / 2 && wait < base * 3 / 2,
            "{failures}: {wait:?}"
        );
        at = device.idle_until();
    }
    assert_eq!(env.stats.connections.failed_attempts, 6);
    assert!(
        env.stats
            .failures
            .iter()
            .all(|(name, took, _)| (*name, *took) == (NAME_CONNECT, 1000))
    );
    // A CONNACK resets the backoff.
    connect(&mut device, &mut env, at, MS);
    pump(&mut device, &mut env, at + MS, false);
    device.failed(at + 2 * MS, &mut env, "reset");
    let wait = device.idle_until() - (at + 2 * MS);
    assert!(wait >= 50 * MS && wait < 150 * MS, "{wait:?}");
}

#[test]
fn a_removed_user_drains_and_one_wanted_again_resumes_or_starts_afresh() {
    let plan = plan(&[]);
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    let connack = connect(&mut device, &mut env, t0, 5 * MS);
    pump(&mut device, &mut env, connack, false);
    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    pump(&mut device, &mut env, first, false);
    // The master lowers the user count: it drains (its ack is awaited), publishing nothing.
    let removed = first + 5 * MS;
    assert!(device.unwant(removed, &mut env));
    assert_eq!(device.phase(), Phase::Draining);
    assert!(pump(&mut device, &mut env, first + PERIOD, false).is_empty());
    // Raised again before it disconnected: it carries on at the plan's next slot.
    let wanted = first + 23 * MS;
    assert!(device.want(wanted, wanted, &mut env));
    assert_eq!(device.phase(), Phase::Connected);
    assert!(pump(&mut device, &mut env, wanted, false).is_empty());
    assert_eq!(device.poll_timeout(wanted, &env, false), first + 30 * MS);
    assert_eq!(
        publish_ids(&pump(&mut device, &mut env, first + 30 * MS, false)),
        vec![2]
    );
    // Lowered again: the acks come, DISCONNECT, closed for good.
    assert!(device.unwant(first + 31 * MS, &mut env));
    feed(&mut device, Packet::PubAck(1), first + 32 * MS);
    feed(&mut device, Packet::PubAck(2), first + 32 * MS);
    assert_eq!(
        pump(&mut device, &mut env, first + 32 * MS, false),
        vec![Sent::Disconnect]
    );
    assert_eq!(device.phase(), Phase::Closed);
    assert_eq!(device.poll_close(), Some(Close::Polite));
    assert_eq!(env.connected, 0);
    // Raised again later: a new start on the spawn schedule, with the first-publish delay.
    let again = first + Duration::from_secs(30);
    assert!(!device.want(again, again - MS, &mut env));
    assert_eq!(device.poll_start(again - MS, &mut env), Start::At(again));
    let connack = connect(&mut device, &mut env, again, 5 * MS);
    pump(&mut device, &mut env, connack, false);
    assert!(env.stats.untimed.is_empty(), "30 s away is not missed");
    assert_eq!(
        device.poll_timeout(connack, &env, false),
        connack + FIRST_PUBLISH_DELAY_FOR_TESTS
    );
    // Packet ids go on across the new start.
    let sent = pump(
        &mut device,
        &mut env,
        connack + FIRST_PUBLISH_DELAY_FOR_TESTS,
        false,
    );
    assert_eq!(publish_ids(&sent), vec![3]);
    // Removed while idle: closed at once, nothing counted failed.
    let mut idle = Device::new(1, "dev-1".into(), "t/1".into(), again);
    assert!(!idle.unwant(again, &mut env));
    assert_eq!(idle.phase(), Phase::Closed);
    assert!(env.stats.failures.is_empty());
}

#[test]
fn a_subscriber_subscribes_measures_deliveries_and_leaves_after_the_publishers() {
    let plan = plan(&[
        "--subscribers",
        "1",
        "--subscribe-topic",
        "t/#",
        "--subscribe-qos",
        "1",
    ]);
    let sub = plan.subscribe.clone().expect("subscribers planned");
    let gate = DeliveryGate::new(1, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut subscriber = Device::subscriber(1, "sub-0".into(), t0, 16);
    let mut publisher = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    // Publishers wait for the subscribers' SUBACK.
    assert_eq!(
        publisher.poll_start(t0, &mut env),
        Start::At(t0 + GATE_POLL)
    );
    let connack = connect(&mut subscriber, &mut env, t0, 5 * MS);
    let sent = pump(&mut subscriber, &mut env, connack, false);
    let id = match &sent[..] {
        [Sent::Subscribe { id, filter }] if filter == "t/#" => *id,
        other => panic!("expected one SUBSCRIBE, got {other:?}"),
    };
    feed(
        &mut subscriber,
        Packet::SubAck {
            packet_id: id,
            return_codes: vec![Some(QoS::AtLeastOnce)],
        },
        connack + 2 * MS,
    );
    pump(&mut subscriber, &mut env, connack + 2 * MS, false);
    assert_eq!(env.stats.take_successes(sub.subscribe_name), vec![2000]);
    assert!(gate.open());
    assert_eq!(publisher.poll_start(t0 + MS, &mut env), Start::Now);

    // A message a publisher made, due at 1.5 s, delivered at 1.5123 s.
    let due = t0 + 1500 * MS;
    let mut body = Vec::new();
    env.payload
        .build(0, "dev-0", 0, env.epoch.unix_at(due), &mut body);
    let arrived = due + 12_300 * Duration::from_micros(1);
    let publish = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t/0",
        packet_id: 9,
        payload: &body,
    };
    feed(&mut subscriber, Packet::Publish(publish), arrived);
    assert_eq!(
        pump(&mut subscriber, &mut env, arrived, false),
        vec![Sent::PubAck(9)]
    );
    let latency = env.stats.take_successes(sub.receive_name);
    assert_eq!(latency.len(), 1);
    assert!(latency[0].abs_diff(12_300) <= 1, "{latency:?}");
    assert_eq!(env.stats.delivery.received, 1);

    // The run stops: it stays while a publisher is open, then a grace, then DISCONNECT.
    let stop = t0 + Duration::from_secs(3);
    env.stop_deadline = Some(stop + plan.stop_timeout);
    subscriber.stop(stop, &mut env, AttemptStep::ConnAck);
    assert!(pump(&mut subscriber, &mut env, stop, false).is_empty());
    assert_eq!(subscriber.poll_timeout(stop, &env, false), stop + GATE_POLL);
    publisher.stop(stop, &mut env, AttemptStep::Tcp);
    assert_eq!(publisher.phase(), Phase::Closed);
    let quiet = stop + GATE_POLL;
    assert!(pump(&mut subscriber, &mut env, quiet, false).is_empty());
    assert!(pump(&mut subscriber, &mut env, quiet + DRAIN_GRACE - MS, false).is_empty());
    let sent = pump(&mut subscriber, &mut env, quiet + DRAIN_GRACE, false);
    assert_eq!(sent, vec![Sent::Disconnect]);
    assert_eq!(subscriber.phase(), Phase::Closed);
}

mod v5;

#[test]
fn a_message_waiting_on_a_full_in_flight_window_is_held_back_not_send_lag() {
    // A window of one: message 1 is unacked while message 2 falls due.
    let mut plan = plan(&[]);
    plan.session.max_inflight = 1;
    let gate = DeliveryGate::new(0, 1);
    let t0 = Instant::now();
    let mut env = Env::new(&plan, epoch(t0), Recorder::default(), &gate, 7);
    let mut device = Device::new(0, "dev-0".into(), "t/0".into(), t0);
    let connack = connect(&mut device, &mut env, t0, 5 * MS);
    assert!(pump(&mut device, &mut env, connack, false).is_empty());
    let first = connack + FIRST_PUBLISH_DELAY_FOR_TESTS;
    assert_eq!(publish_ids(&pump(&mut device, &mut env, first, false)), [1]);

    // The window is full, yet the device wakes when message 2 is due, to mark it held back...
    let due = device.poll_timeout(first, &env, false);
    assert_eq!(due, first + PERIOD);
    assert!(pump(&mut device, &mut env, due, false).is_empty());
    // ...and then waits for the ack instead of spinning on a due time already past.
    assert!(device.poll_timeout(due, &env, false) > first + 2 * PERIOD);

    // The ack comes 15 ms late: message 2 goes, counted as held back by the broker.
    let acked = due + 15 * MS;
    feed(&mut device, Packet::PubAck(1), acked);
    assert_eq!(publish_ids(&pump(&mut device, &mut env, acked, false)), [2]);
    assert_eq!(env.stats.held_back, vec![us(15 * MS)]);
    assert_eq!(env.stats.send_lags, vec![0], "only message 1 went on time");
}
