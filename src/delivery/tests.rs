//! Unit tests of stamps and the per-publisher window: gaps, fills, duplicates, reordering,
//! window overflow, foreign and garbage payloads.

use super::*;
use crate::payload::{PayloadBuilder, PayloadFormat, PayloadRecipe, json_head};

fn stamp(publisher: u64, seq: u64) -> Stamp {
    Stamp {
        publisher,
        seq,
        due_unix_us: 0,
    }
}

fn feed(tracker: &mut SubscriberTracker, publisher: u64, seqs: &[u64]) -> DeliveryCounts {
    let mut counts = DeliveryCounts::default();
    for &seq in seqs {
        tracker.observe(stamp(publisher, seq), &mut counts);
    }
    counts
}

#[test]
fn in_order_messages_are_all_new() {
    let mut t = SubscriberTracker::new(10);
    let c = feed(&mut t, 1, &[0, 1, 2, 3, 4]);
    assert_eq!(
        (c.received, c.duplicates, c.reordered, c.stale),
        (5, 0, 0, 0)
    );
    assert_eq!(c.delivered(), 5);
}

#[test]
fn a_gap_filled_later_is_reordered_not_lost_and_a_second_copy_is_a_duplicate() {
    let mut t = SubscriberTracker::new(10);
    let c = feed(&mut t, 7, &[0, 1, 3, 4, 2, 2, 4]);
    assert_eq!(c.received, 7);
    assert_eq!(c.reordered, 1, "2 arrived after 4");
    assert_eq!(c.duplicates, 2, "2 and 4 twice");
    assert_eq!(c.delivered(), 5);
    let expected = DeliveryCounts { expected: 6, ..c };
    assert_eq!(expected.lost(), 1, "seq 5 never came");
}

#[test]
fn publishers_are_tracked_apart() {
    let mut t = SubscriberTracker::new(10);
    let mut c = feed(&mut t, 1, &[0, 1, 2]);
    c += feed(&mut t, 2, &[0, 1, 2]);
    assert_eq!((c.received, c.duplicates, c.reordered), (6, 0, 0));
    assert_eq!(t.publishers(), 2);
}

#[test]
fn what_falls_off_the_window_is_stale_and_counts_as_lost() {
    let mut t = SubscriberTracker::new(10);
    let far = WINDOW + 10;
    let c = feed(&mut t, 1, &[0, far, 5, 11, 10, far]);
    // 0 and far are new; 5 and 10 fell below far - WINDOW + 1 = 11; 11 is the window's base.
    assert_eq!(c.stale, 2, "{c:?}");
    assert_eq!(c.reordered, 1, "11 after far");
    assert_eq!(c.duplicates, 1, "far twice");
    assert_eq!(c.delivered(), 3);
    // A jump of more than a whole window clears every bit: an old seq is not a duplicate.
    let c = feed(&mut t, 1, &[far + 3 * WINDOW, far + 3 * WINDOW - 1]);
    assert_eq!((c.duplicates, c.reordered, c.stale), (0, 1, 0));
}

#[test]
fn the_window_slides_one_by_one_without_false_duplicates() {
    let mut t = SubscriberTracker::new(1);
    let seqs: Vec<u64> = (0..5 * WINDOW).collect();
    let c = feed(&mut t, 3, &seqs);
    assert_eq!(
        (c.received, c.duplicates, c.reordered, c.stale),
        (5 * WINDOW, 0, 0, 0)
    );
    // The last WINDOW seqs are still remembered.
    let c = feed(&mut t, 3, &[5 * WINDOW - 1, 4 * WINDOW, 4 * WINDOW - 1]);
    assert_eq!((c.duplicates, c.stale), (2, 1));
}

#[test]
fn publishers_beyond_the_limit_are_untracked() {
    let mut t = SubscriberTracker::new(2);
    let mut c = feed(&mut t, 1, &[0]);
    c += feed(&mut t, 2, &[0]);
    c += feed(&mut t, 3, &[0, 0]);
    assert_eq!((c.received, c.untracked, c.duplicates), (4, 2, 0));
    assert_eq!(t.publishers(), 2);
}

fn recipe(format: PayloadFormat, run_id: &str) -> PayloadRecipe {
    PayloadRecipe {
        format,
        run_id: run_id.into(),
        random_bytes: 40,
    }
}

#[test]
fn both_formats_carry_the_same_stamp_fields() {
    let reader = StampReader::new("RUN-1", json_head("RUN-1"));
    let mut out = Vec::new();
    let due = 1_764_270_000.25;
    let mut raw = PayloadBuilder::new(&recipe(PayloadFormat::Raw, "RUN-1"), 1);
    raw.build(12, "dev-12", 99, due, &mut out);
    let Reading::Ours(r) = reader.read(&out) else {
        panic!("raw stamp unread")
    };
    let mut json = PayloadBuilder::new(&recipe(PayloadFormat::Json, "RUN-1"), 1);
    json.build(12, "dev-\"12\"", 99, due, &mut out);
    let Reading::Ours(j) = reader.read(&out[..out.len().min(STAMP_HEAD_LEN)]) else {
        panic!("json stamp unread: {}", String::from_utf8_lossy(&out))
    };
    assert_eq!((r.seq, r.due_unix_us), (99, 1_764_270_000_250_000));
    assert_eq!((j.seq, j.due_unix_us), (r.seq, r.due_unix_us));
    assert_eq!(r.publisher, 12);
    json.build(13, "dev-13", 99, due, &mut out);
    let Reading::Ours(other) = reader.read(&out) else {
        panic!("json stamp unread")
    };
    assert_ne!(
        other.publisher, j.publisher,
        "client ids tell publishers apart"
    );
}

#[test]
fn other_runs_are_foreign_and_garbage_is_unparseable_never_a_panic() {
    let reader = StampReader::new("RUN-1", json_head("RUN-1"));
    let mut out = Vec::new();
    for format in [PayloadFormat::Raw, PayloadFormat::Json] {
        let mut other = PayloadBuilder::new(&recipe(format, "RUN-2"), 1);
        other.build(0, "c", 0, 1.0, &mut out);
        assert_eq!(reader.read(&out), Reading::Foreign, "{format:?}");
    }
    let mut json = PayloadBuilder::new(&recipe(PayloadFormat::Json, "RUN-1"), 1);
    json.build(0, "c", 5, 1.0, &mut out);
    // Every truncation and every single-byte corruption: read, never panic.
    for cut in 0..out.len().min(200) {
        let _ = reader.read(&out[..cut]);
        let mut bad = out.clone();
        bad[cut] ^= 0x5a;
        let _ = reader.read(&bad);
    }
    for garbage in [
        &b""[..],
        b"MQL1",
        b"MQL1\x00\x00",
        b"hello",
        b"{\"info\": {\"test_run_id\": \"RUN-1\", \"ts\": 12.5, \"client_id\": \"c\", \"seq\": 1}",
        b"{\"info\": {\"test_run_id\": \"RUN-1\", \"ts\": 1.000000, \"client_id\": \"c\", \"seq\": 99999999999999999999999}",
        b"{\"info\": {\"test_run_id\": \"RUN-1\", \"ts\": 99999999999999999999.000000, \"client_id\": \"c\", \"seq\": 1}",
        b"{\"info\": {\"test_run_id\": \"RUN-1\", \"ts\": 1.000000, \"client_id\": \"c\\",
    ] {
        assert_eq!(reader.read(garbage), Reading::Unparseable, "{garbage:?}");
    }
}

#[test]
fn topic_filters_match_as_mqtt_says() {
    for (filter, topic, matches) in [
        ("locust/#", "locust/test/topic", true),
        ("locust/#", "locust", true),
        ("locust/+/topic", "locust/test/topic", true),
        ("locust/+", "locust/test/topic", false),
        ("#", "a/b", true),
        ("#", "$SYS/x", false),
        ("+/x", "$SYS/x", false),
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
        ("+", "", true),
        ("a/+/c", "a//c", true),
    ] {
        assert_eq!(topic_matches(filter, topic), matches, "{filter} vs {topic}");
    }
}

#[test]
fn a_shared_subscription_expects_one_copy_for_the_group() {
    use super::expected_copies;
    assert_eq!(expected_copies("a/#", "a/1", 3), 3);
    assert_eq!(expected_copies("b/#", "a/1", 3), 0);
    assert_eq!(expected_copies("$share/g/a/#", "a/1", 3), 1);
    assert_eq!(expected_copies("$share/g/b/#", "a/1", 3), 0);
    assert_eq!(expected_copies("$share/g/a/#", "a/1", 0), 0);
}
