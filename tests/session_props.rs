//! Property test: arbitrary broker bytes, split at arbitrary points, through the session never
//! panic, keep memory bounded and end, if at all, in a typed error. 256 cases, fixed seed.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use mqload::mqtt::{ConnectReturnCode, Packet, QoS};
use mqload::session::{Event, Session, SessionConfig, SessionError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

/// Small, so that the size limit is hit as well as the partial-packet path.
const MAX_PACKET: usize = 2048;

fn config(clean_session: bool) -> SessionConfig {
    SessionConfig {
        keep_alive: Duration::from_secs(60),
        clean_session,
        username: None,
        password: None,
        max_inflight: 8,
        ack_timeout: Duration::from_secs(10),
        max_packet_size: MAX_PACKET,
        mqtt5: None,
    }
}

/// A stream that often starts like a real broker's (CONNACK, then acks for ids in flight) and
/// then goes anywhere, so the fuzzing reaches past the first byte's checks.
fn broker_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Mostly acks for ids likely in flight (so the ack paths run), sometimes anything.
    let packet = prop_oneof![
        6 => (1u16..5).prop_map(|id| encode(Packet::PubAck(id))),
        3 => (1u16..5).prop_map(|id| encode(Packet::PubRec(id))),
        3 => (1u16..5).prop_map(|id| encode(Packet::PubComp(id))),
        1 => any::<u16>().prop_map(|id| encode(Packet::PubRel(id.max(1)))),
        1 => Just(encode(Packet::PingResp)),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        // A header announcing up to 4 bytes of remaining length, and whatever follows.
        1 => (any::<u8>(), proptest::collection::vec(0x80u8..=0xff, 0..4), any::<u8>())
            .prop_map(|(first, more, last)| {
                let mut v = vec![first];
                v.extend(more);
                v.push(last);
                v
            }),
    ];
    (any::<bool>(), proptest::collection::vec(packet, 0..24)).prop_map(|(connack, packets)| {
        let mut bytes = if connack {
            encode(Packet::ConnAck {
                session_present: false,
                code: ConnectReturnCode::Accepted,
            })
        } else {
            Vec::new()
        };
        bytes.extend(packets.into_iter().flatten());
        bytes
    })
}

fn encode(packet: Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    packet.encode(&mut out).expect("encodable");
    out
}

/// How many cases reached an ack, and how many ended in an error: the property must explore both.
static ACKED_CASES: AtomicUsize = AtomicUsize::new(0);
static ERROR_CASES: AtomicUsize = AtomicUsize::new(0);

#[test]
fn arbitrary_broker_bytes_never_panic_and_stay_bounded() {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x6d71_6c6f_6164),
        failure_persistence: None,
        ..Config::default()
    });
    let inputs = (
        broker_bytes(),
        proptest::collection::vec(any::<usize>(), 0..16),
        any::<bool>(),
        0usize..8,
        any::<bool>(),
    );
    if let Err(e) = runner.run(
        &inputs,
        |(bytes, splits, clean_session, publishes, qos2)| {
            let qos = if qos2 {
                QoS::ExactlyOnce
            } else {
                QoS::AtLeastOnce
            };
            one_case(&bytes, &splits, clean_session, publishes, qos)
        },
    ) {
        panic!("{e}");
    }
    let (acked, errors) = (ACKED_CASES.load(Relaxed), ERROR_CASES.load(Relaxed));
    eprintln!("acked in {acked}, errors in {errors} of 256 cases");
    assert!(
        acked > 10 && errors > 10,
        "acked in {acked}, errors in {errors} of 256 cases"
    );
}

fn one_case(
    bytes: &[u8],
    splits: &[usize],
    clean_session: bool,
    publishes: usize,
    qos: QoS,
) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let mut session = Session::new(&config(clean_session), "dev-1", t0).expect("session");
    session.output_sent(t0);
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (bytes.len() + 1)).collect();
    // A cut after a leading CONNACK (4 bytes), so publishes go out before the acks arrive.
    cuts.extend([bytes.len().min(4), bytes.len()]);
    cuts.sort_unstable();
    let mut start = 0;
    let mut events = 0usize;
    let mut acked = false;
    let mut outcome: Result<(), SessionError> = Ok(());
    for (k, &end) in cuts.iter().enumerate() {
        let now = t0 + Duration::from_millis(k as u64);
        // Publish into whatever state the bytes so far left, so acks can match something.
        for _ in 0..publishes {
            if session.can_publish(qos) {
                session
                    .publish("t", b"p", qos, now, now)
                    .expect("can_publish said yes");
            }
        }
        outcome = session.handle_input(&bytes[start..end], now);
        start = end;
        while let Some(event) = session.poll_event() {
            events += 1;
            if let Event::Acked(done) = event {
                acked = true;
                prop_assert!(done.due <= done.acked);
            }
        }
        // Memory stays bounded: at most one partial maximum-size packet is held, the window
        // bounds what is in flight, and the replies are smaller than what they answer.
        prop_assert!(session.buffered_input() <= MAX_PACKET + 5);
        prop_assert!(session.inflight_len() <= 8);
        prop_assert!(session.pending_output().len() <= 2 * end + 16 * publishes * (k + 1) + 4);
        let _ = session.handle_timeout(now + Duration::from_secs(61));
        if outcome.is_err() {
            break;
        }
    }
    prop_assert!(events <= bytes.len() / 2 + 1 + publishes * cuts.len());
    if acked {
        ACKED_CASES.fetch_add(1, Relaxed);
    }
    // Failures are typed, with a message for the error table.
    if let Err(e) = outcome {
        ERROR_CASES.fetch_add(1, Relaxed);
        prop_assert!(!e.to_string().is_empty());
        prop_assert!(matches!(
            e,
            SessionError::Decode(_) | SessionError::Unexpected(_) | SessionError::Refused(_)
        ));
    }
    Ok(())
}
