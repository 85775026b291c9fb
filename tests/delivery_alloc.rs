//! A subscriber's per-message path allocates nothing once warm: the session decoding received
//! PUBLISHes (and acking them), reading each stamp, and judging it in the publisher's window.
//! Counted by a global allocator wrapper, so this binary holds this one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mqload::delivery::{Reading, STAMP_HEAD_LEN, StampReader, SubscriberTracker};
use mqload::mqtt::{ConnectReturnCode, Packet, Publish, QoS};
use mqload::payload::{PayloadBuilder, PayloadFormat, PayloadRecipe, json_head};
use mqload::session::{Event, Session, SessionConfig};
use mqload::stats::DeliveryCounts;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RUN_ID: &str = "alloc-run";
const PUBLISHERS: u64 = 50;

/// One read's worth of PUBLISH packets: one message of every publisher, seq `seq`.
fn burst(format: PayloadFormat, seq: u64, qos: QoS) -> Vec<u8> {
    let recipe = PayloadRecipe {
        format,
        run_id: RUN_ID.into(),
        random_bytes: 300,
    };
    let mut builder = PayloadBuilder::new(&recipe, 1);
    let mut body = Vec::new();
    let mut bytes = Vec::new();
    for user in 0..PUBLISHERS {
        builder.build(user, &format!("dev-{user}"), seq, 1.7e9, &mut body);
        let id = u16::try_from(user + 1).expect("small");
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "locust/test/topic",
            packet_id: id,
            payload: &body,
        })
        .encode(&mut bytes)
        .expect("encodable");
    }
    bytes
}

/// Feeds `input` in 1,000-byte chunks, drains the events through the stamp reader and
/// tracker, and takes the output (the acks); returns the stamps read.
fn receive(
    session: &mut Session,
    input: &[u8],
    reader: &StampReader,
    tracker: &mut SubscriberTracker,
    counts: &mut DeliveryCounts,
    now: Instant,
) -> u64 {
    let mut read = 0;
    for chunk in input.chunks(1_000) {
        session.handle_input(chunk, now).expect("valid input");
    }
    while let Some(event) = session.poll_event() {
        if let Event::Received { head, .. } = event
            && let Reading::Ours(stamp) = reader.read(session.received_head(head))
        {
            tracker.observe(stamp, counts);
            read += 1;
        }
    }
    session.output_sent(now);
    read
}

#[test]
fn receiving_checking_and_acking_allocate_nothing_once_warm() {
    for (format, qos) in [
        (PayloadFormat::Raw, QoS::AtLeastOnce),
        (PayloadFormat::Json, QoS::AtMostOnce),
    ] {
        let config = SessionConfig {
            keep_alive: Duration::from_secs(60),
            clean_session: true,
            username: None,
            password: None,
            max_inflight: 100,
            ack_timeout: Duration::from_secs(30),
            max_packet_size: 1 << 20,
            mqtt5: None,
        };
        let now = Instant::now();
        let mut session = Session::new(&config, "sub-0", now).expect("session");
        session.keep_received_head(STAMP_HEAD_LEN);
        let mut connack = Vec::new();
        Packet::ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }
        .encode(&mut connack)
        .expect("connack");
        session.handle_input(&connack, now).expect("connack");
        session.output_sent(now);
        let reader = StampReader::new(RUN_ID, json_head(RUN_ID));
        let mut tracker = SubscriberTracker::new(PUBLISHERS as usize);
        let mut counts = DeliveryCounts::default();
        let bursts: Vec<Vec<u8>> = (0..20).map(|seq| burst(format, seq, qos)).collect();
        // Warm up: every publisher seen once, every buffer at its size.
        let cold = ALLOCATIONS.load(Ordering::Relaxed);
        for input in &bursts[..2] {
            receive(&mut session, input, &reader, &mut tracker, &mut counts, now);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        assert!(before > cold, "the counter sees the warm-up's allocations");
        let mut read = 0;
        for input in &bursts[2..] {
            read += receive(&mut session, input, &reader, &mut tracker, &mut counts, now);
        }
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(read, 18 * PUBLISHERS, "{format:?}: every stamp read");
        assert_eq!(counts.received, 20 * PUBLISHERS);
        assert_eq!(counts.duplicates + counts.reordered + counts.stale, 0);
        assert_eq!(
            allocations, 0,
            "{format:?}: allocations on the receive path"
        );
    }
}
