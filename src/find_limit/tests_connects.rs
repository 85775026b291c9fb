//! The connect-rate search on synthetic levels: a broker answering a known number of connects
//! a second, mqload failing to start its connects on time, and each connect limit on its own.

use super::evidence::rate;
use super::search::MAX_LEVELS;
use super::*;

const LIMITS: Limits = Limits {
    p99_us: 100_000,
    failure_percent: 1.0,
    mode: SearchMode::Connects,
};

fn config(start: f64) -> SearchConfig {
    SearchConfig {
        start_per_s: start,
        max_per_s: None,
        precision: 0.05,
        limits: LIMITS,
    }
}

/// A level offering `offered` connects a second to a broker that answers `capacity`: below
/// it 1 ms p99; above it a backlog that grows for the whole window (p99 of seconds, the
/// excess unanswered).
fn broker(capacity: f64, offered: f64) -> LevelResult {
    let seconds = 4.0;
    let answered = offered.min(capacity) * seconds;
    let over = offered > capacity;
    LevelResult {
        offered_per_s: offered,
        seconds,
        acked_per_s: answered / seconds,
        p50_us: if over { 300_000 } else { 300 },
        p99_us: if over { 600_000 } else { 1_000 },
        requests: answered as u64,
        published: answered as u64,
        unanswered: ((offered * seconds) - answered) as u64,
        due_in_level: (offered * 6.5) as u64,
        ..LevelResult::default()
    }
}

fn run(mut search: Search, mut level: impl FnMut(f64) -> LevelResult) -> (Verdict, Search) {
    for _ in 0..=MAX_LEVELS {
        match search.step() {
            Step::Run(rate) => search.record(level(rate)),
            Step::Done(verdict) => return (verdict, search),
        }
    }
    panic!("the search did not end within {MAX_LEVELS} levels");
}

#[test]
fn it_finds_a_brokers_connect_rate_and_states_it_in_connections_per_second() {
    for (capacity, start) in [(200.0, 140.0), (1_500.0, 100.0)] {
        let (verdict, search) = run(Search::new(config(start)), |r| broker(capacity, r));
        let Verdict::Found { held, broke } = verdict else {
            panic!("{capacity}: {verdict:?}");
        };
        let levels = search.levels();
        let (h, b) = (
            levels[held].result.offered_per_s,
            levels[broke].result.offered_per_s,
        );
        assert!(
            h <= capacity && b > capacity && b <= h * 1.05 + 1.0,
            "{capacity}: held {h}, broke {b}"
        );
        let text = verdict_sentence(&verdict, levels, SearchMode::Connects);
        assert!(
            text.starts_with(&format!(
                "held {} for 4 s with connect p99 1.0 ms",
                rate(h, SearchMode::Connects)
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "; at {} connect p99 passed 100.0 ms",
                rate(b, SearchMode::Connects)
            )),
            "{text}"
        );
        assert!(!text.contains("msg/s"), "{text}");
    }
}

#[test]
fn mqload_not_starting_its_connects_ends_the_search_as_mqloads_limit() {
    // This host starts at most 900 connects a second; the broker would answer 5,000.
    let host = |offered: f64| {
        let mut level = broker(5_000.0, offered);
        level.not_started = ((offered - 900.0).max(0.0) * 6.5) as u64;
        level
    };
    let (verdict, search) = run(Search::new(config(400.0)), host);
    let Verdict::MqloadLimit { at, held } = verdict else {
        panic!("{verdict:?}");
    };
    let levels = search.levels();
    assert_eq!(levels[at].result.offered_per_s, 1_600.0);
    assert!(matches!(
        levels[at].judgement,
        Judgement::MqloadSlowStart { .. }
    ));
    assert_eq!(held.map(|i| levels[i].result.offered_per_s), Some(800.0));
    let text = verdict_sentence(&verdict, levels, SearchMode::Connects);
    assert!(
        text.starts_with("mqload is the bottleneck, not the broker: at 1,600 connections/s mqload never started 4,550 of the 10,400 connects due"),
        "{text}"
    );
}

#[test]
fn each_connect_limit_breaks_a_level_on_its_own() {
    let ok = broker(1_000.0, 500.0);
    assert_eq!(judge(&LIMITS, &ok), Judgement::Held);
    let slow = LevelResult {
        p99_us: 150_000,
        ..ok
    };
    let failing = LevelResult { failures: 40, ..ok };
    let unanswered = LevelResult {
        unanswered: 41,
        ..ok
    };
    for (level, want) in [
        (slow, "connect p99 passed 100.0 ms (150.0 ms)"),
        (failing, "failures passed 1 % (2.00 %)"),
        (unanswered, "41 connects not answered (of 2,000 due)"),
    ] {
        let Judgement::Broke(breaches) = judge(&LIMITS, &level) else {
            panic!("{level:?} held");
        };
        assert_eq!(breaches.len(), 1, "{breaches:?}");
        assert_eq!(breach_text(&breaches[0]), want);
    }
    // Within the tolerance: the window's edges, not the broker.
    let edge = LevelResult {
        unanswered: 40,
        not_started: 60,
        due_in_level: 3_250,
        ..ok
    };
    assert_eq!(judge(&LIMITS, &edge), Judgement::Held);
    // The same level under the msg/s limits is judged by its publish figures instead.
    let messages = Limits {
        mode: SearchMode::Messages,
        ..LIMITS
    };
    assert_eq!(judge(&messages, &unanswered), Judgement::Held);
}

#[test]
fn a_connect_levels_figures_come_from_the_connect_row_and_the_whole_level() {
    use crate::stats::{RequestKind, RowStats, Snapshot};
    let connect = RowStats {
        name: "connect".to_owned(),
        kind: Some(RequestKind::Connect),
        num_requests: 790,
        num_failures: 4,
        median_us: 300,
        percentiles_us: [0, 0, 0, 0, 0, 0, 0, 2_500, 0, 0, 0],
        ..RowStats::default()
    };
    let disconnect = RowStats {
        name: "disconnect".to_owned(),
        kind: Some(RequestKind::Disconnect),
        num_requests: 50,
        percentiles_us: [900_000; 11],
        ..RowStats::default()
    };
    let error = |error: &str, occurrences: u64| crate::stats::ErrorRow {
        name: "connect".to_owned(),
        error: error.to_owned(),
        occurrences,
        ..crate::stats::ErrorRow::default()
    };
    let mut steady = Snapshot {
        rows: vec![disconnect, connect],
        errors: vec![error("no CONNACK: connection reset by the broker", 4)],
        ..Snapshot::default()
    };
    // 200/s for 4 s: 800 due in the window, 790 answered in it; 1,300 due before the stop,
    // 1,290 attempts made.
    let level = LevelResult::from_connect_snapshot(200.0, 4.0, &steady, 1_290, 1_300);
    assert_eq!(
        (level.requests, level.failures),
        (790, 4),
        "the connect row only"
    );
    assert_eq!(level.acked_per_s, 786.0 / 4.0);
    assert_eq!((level.p50_us, level.p99_us), (300, 2_500));
    assert_eq!(
        (level.unanswered, level.not_started, level.due_in_level),
        (10, 10, 1_300)
    );
    assert_eq!(judge(&LIMITS, &level), Judgement::Held);
    // Out of local ports: this host's limit, however few, and never the broker's.
    steady.errors.push(error(
        "TCP connect: Cannot assign requested address (os error 99)",
        3,
    ));
    let level = LevelResult::from_connect_snapshot(200.0, 4.0, &steady, 1_290, 1_300);
    let judgement = judge(&LIMITS, &level);
    assert_eq!(judgement, Judgement::MqloadOutOfResources { failures: 3 });
    assert!(judgement.mqload_bound());
    assert_eq!(
        mqload_bound_text(&judgement).as_deref(),
        Some("3 connects failed for want of mqload's own local ports or open files")
    );
}
