//! The search on synthetic levels: a broker of known capacity, a flaky level, mqload as the
//! bottleneck, a maximum that holds, a start that breaks.

use super::search::{MAX_LEVELS, round_rate};
use super::*;

const LIMITS: Limits = Limits {
    p99_us: 20_000,
    failure_percent: 1.0,
    mode: SearchMode::Messages,
};

fn config(start: f64) -> SearchConfig {
    SearchConfig {
        start_per_s: start,
        max_per_s: None,
        precision: 0.05,
        limits: LIMITS,
    }
}

/// A level at `offered` against a broker that takes `capacity` msg/s: below it 2 ms p99;
/// above it the backlog shows as a p99 of seconds and held-back messages.
fn broker(capacity: f64, offered: f64) -> LevelResult {
    let seconds = 10.0;
    let acked = offered.min(capacity);
    let over = offered > capacity;
    LevelResult {
        offered_per_s: offered,
        seconds,
        acked_per_s: acked,
        p50_us: if over { 400_000 } else { 900 },
        p99_us: if over { 900_000 } else { 2_000 },
        requests: (acked * seconds) as u64,
        failures: 0,
        published: (acked * seconds) as u64,
        held_back: if over {
            ((offered - capacity) * seconds) as u64
        } else {
            0
        },
        lost: 0,
        send_lag_p99_us: 300,
        ..LevelResult::default()
    }
}

/// Runs the search against `level`; returns the verdict and the search.
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
fn it_finds_a_brokers_capacity_within_the_precision_and_confirms_it() {
    for (capacity, start) in [(2_000.0, 500.0), (5_000.0, 1_000.0), (41_800.0, 100.0)] {
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
            h <= capacity && b > capacity,
            "{capacity}: held {h}, broke {b}"
        );
        assert!(b <= h * 1.05 + 1.0, "{capacity}: {h}..{b} wider than 5 %");
        assert!(levels[held].confirmation, "the answer is a confirming run");
        let first = levels.iter().position(|l| l.result.offered_per_s == h);
        assert!(
            first.is_some_and(|i| i < held),
            "held once before the confirmation"
        );
        assert!(levels.len() < 20, "{capacity}: {} levels", levels.len());
    }
}

#[test]
fn a_start_above_the_capacity_halves_until_a_level_holds() {
    let (verdict, search) = run(Search::new(config(10_000.0)), |r| broker(2_000.0, r));
    let Verdict::Found { held, .. } = verdict else {
        panic!("{verdict:?}");
    };
    let rates: Vec<f64> = search
        .levels()
        .iter()
        .map(|l| l.result.offered_per_s)
        .collect();
    assert_eq!(&rates[..4], &[10_000.0, 5_000.0, 2_500.0, 1_250.0]);
    assert!(search.levels()[held].result.offered_per_s > 1_900.0);
}

#[test]
fn a_confirmation_that_breaks_sends_the_search_below_it() {
    // The broker holds 3,000 once, then never again: its real capacity is 2,500.
    let mut seen_3000 = false;
    let (verdict, search) = run(Search::new(config(1_000.0)), |r| {
        if (2_900.0..=3_000.0).contains(&r) && !seen_3000 {
            seen_3000 = true;
            return broker(f64::MAX, r);
        }
        broker(2_500.0, r)
    });
    let Verdict::Found { held, .. } = verdict else {
        panic!("{verdict:?}");
    };
    let levels = search.levels();
    assert!(
        levels.iter().any(|l| l.confirmation && !l.judgement.held()),
        "one confirmation broke"
    );
    let answer = levels[held].result.offered_per_s;
    assert!((2_380.0..=2_500.0).contains(&answer), "answer {answer}");
}

#[test]
fn mqload_lagging_ends_the_search_and_says_so() {
    let (verdict, search) = run(Search::new(config(1_000.0)), |r| {
        let mut level = broker(1e9, r);
        if r >= 8_000.0 {
            level.send_lag_p99_us = 15_000;
            level.p99_us = 25_000; // breaks the SLO, but only through mqload's own lag
        }
        level
    });
    assert_eq!(
        verdict,
        Verdict::MqloadLimit {
            at: 4,
            held: Some(2)
        },
        "8,000 lagged twice"
    );
    let text = verdict_sentence(&verdict, search.levels(), SearchMode::Messages);
    assert!(text.starts_with("mqload is the bottleneck"), "{text}");
    assert!(
        text.contains("8,000 msg/s") && text.contains("4,000 msg/s"),
        "{text}"
    );
}

#[test]
fn a_level_where_mqload_lagged_once_is_run_again_and_the_search_goes_on() {
    let mut lagged = false;
    let (verdict, search) = run(Search::new(config(1_000.0)), |r| {
        let mut level = broker(5_000.0, r);
        if r == 2_000.0 && !lagged {
            lagged = true;
            level.send_lag_p99_us = 40_000;
            level.p99_us = 41_000;
        }
        level
    });
    assert!(matches!(verdict, Verdict::Found { .. }), "{verdict:?}");
    let rates: Vec<f64> = search
        .levels()
        .iter()
        .map(|l| l.result.offered_per_s)
        .collect();
    assert_eq!(&rates[..4], &[1_000.0, 2_000.0, 2_000.0, 4_000.0]);
    assert_eq!(search.levels()[1].judgement.word(), "mqload_limit");
}

#[test]
fn a_maximum_that_holds_twice_is_reported_as_no_limit_below_it() {
    let mut cfg = config(1_000.0);
    cfg.max_per_s = Some(3_000.0);
    let (verdict, search) = run(Search::new(cfg), |r| broker(1e9, r));
    let Verdict::HeldMax { held } = verdict else {
        panic!("{verdict:?}");
    };
    let rates: Vec<f64> = search
        .levels()
        .iter()
        .map(|l| l.result.offered_per_s)
        .collect();
    assert_eq!(rates, [1_000.0, 2_000.0, 3_000.0, 3_000.0]);
    assert_eq!(held, 3);
}

#[test]
fn nothing_holding_ends_the_search_after_a_bounded_descent() {
    let (verdict, search) = run(Search::new(config(1_000.0)), |r| broker(0.0, r));
    assert!(
        matches!(verdict, Verdict::NothingHeld { .. }),
        "{verdict:?}"
    );
    assert!(search.levels().len() <= 8, "{}", search.levels().len());
    assert!(
        verdict_sentence(&verdict, search.levels(), SearchMode::Messages)
            .starts_with("no level held: at ")
    );
}

#[test]
fn an_interrupted_search_reports_what_it_knew() {
    let mut search = Search::new(config(1_000.0));
    search.record(broker(1_500.0, 1_000.0));
    search.record(broker(1_500.0, 2_000.0));
    search.interrupt();
    let Step::Done(verdict) = search.step() else {
        panic!("still running");
    };
    let text = verdict_sentence(&verdict, search.levels(), SearchMode::Messages);
    assert_eq!(verdict.held(), Some(0));
    assert!(
        text.contains("held 1,000 msg/s") && text.contains("at 2,000 msg/s"),
        "{text}"
    );
}

#[test]
fn each_limit_breaks_a_level_on_its_own() {
    let ok = broker(1e9, 1_000.0);
    assert_eq!(judge(&LIMITS, &ok), Judgement::Held);
    let cases: [(LevelResult, &str); 5] = [
        (
            LevelResult {
                p99_us: 20_001,
                ..ok
            },
            "p99 passed 20.0 ms (20.0 ms)",
        ),
        (
            LevelResult {
                failures: 101,
                ..ok
            },
            "failures passed 1 % (1.01 %)",
        ),
        (LevelResult { lost: 3, ..ok }, "subscribers lost 3 messages"),
        (
            LevelResult {
                held_back: 11,
                ..ok
            },
            "the broker held back 11 messages (of 10,000 published)",
        ),
        (
            LevelResult {
                published: 0,
                requests: 0,
                ..ok
            },
            "the broker completed no publish (0 held back)",
        ),
    ];
    for (level, text) in cases {
        let Judgement::Broke(breaches) = judge(&LIMITS, &level) else {
            panic!("{level:?} held");
        };
        assert_eq!(breaches.len(), 1, "{breaches:?}");
        assert_eq!(breach_text(&breaches[0]), text);
    }
    let tolerated = LevelResult {
        held_back: 10,
        ..ok
    };
    assert!(
        judge(&LIMITS, &tolerated).held(),
        "10 of 10,000 is tolerated"
    );
}

#[test]
fn the_found_sentence_carries_its_evidence() {
    let (verdict, search) = run(Search::new(config(10_000.0)), |r| broker(41_800.0, r));
    let text = verdict_sentence(&verdict, search.levels(), SearchMode::Messages);
    assert!(text.starts_with("held 4"), "{text}");
    assert!(text.contains("for 10 s with p99 2.0 ms"), "{text}");
    assert!(text.contains("twice; at "), "{text}");
    assert!(text.contains("p99 passed 20.0 ms (900.0 ms)"), "{text}");
}

#[test]
fn a_broker_holding_messages_back_is_the_limit_even_when_mqload_also_lagged() {
    let mut level = broker(1_000.0, 2_000.0);
    level.send_lag_p99_us = 900_000;
    let Judgement::Broke(breaches) = judge(&LIMITS, &level) else {
        panic!("not broke");
    };
    assert!(
        breaches
            .iter()
            .any(|b| matches!(b, Breach::HeldBack { .. }))
    );
    let lagging = LevelResult {
        send_lag_p99_us: 10_001,
        p99_us: 30_000,
        ..broker(1e9, 1_000.0)
    };
    assert_eq!(
        judge(&LIMITS, &lagging),
        Judgement::MqloadBound {
            send_lag_p99_us: 10_001
        },
        "without held-back messages, a high p99 is mqload's own"
    );
    let held_anyway = LevelResult {
        send_lag_p99_us: 15_000,
        p99_us: 18_000,
        ..lagging
    };
    assert!(
        judge(&LIMITS, &held_anyway).held(),
        "mqload lagged, but the level kept every limit with that lag in it"
    );
    let late_acks = LevelResult {
        p99_us: 10_001 + 20_001,
        ..lagging
    };
    assert!(
        matches!(judge(&LIMITS, &late_acks), Judgement::Broke(_)),
        "p99 minus mqload's lag still passes the limit: the broker's acks were late"
    );
}

#[test]
fn rates_are_rounded_to_three_significant_figures() {
    assert_eq!(round_rate(41_796.9), 41_800.0);
    assert_eq!(round_rate(1_234.0), 1_230.0);
    assert_eq!(round_rate(87.4), 87.0);
    assert_eq!(round_rate(0.2), 1.0);
    assert_eq!(round_rate(f64::NAN), 1.0);
}

#[test]
fn a_levels_figures_come_from_the_publish_rows_of_the_steady_window() {
    use crate::stats::{RequestKind, RowStats, Snapshot};
    let publish = |name: &str, requests: u64, failures: u64, p99_us: u64| RowStats {
        name: name.to_owned(),
        kind: Some(RequestKind::Publish),
        num_requests: requests,
        num_failures: failures,
        median_us: p99_us / 4,
        percentiles_us: [0, 0, 0, 0, 0, 0, 0, p99_us, 0, 0, 0],
        ..RowStats::default()
    };
    let connect = RowStats {
        name: "connect".to_owned(),
        kind: Some(RequestKind::Connect),
        num_requests: 10,
        percentiles_us: [900_000; 11],
        ..RowStats::default()
    };
    let mut steady = Snapshot {
        rows: vec![
            connect,
            publish("publish:1:a", 3_000, 10, 4_000),
            publish("publish:1:b", 1_000, 0, 8_000),
        ],
        ..Snapshot::default()
    };
    steady.total.num_requests = 4_010;
    steady.total.num_failures = 10;
    steady.send_lag.held_back = 7;
    steady.send_lag.p99_us = 1_500;
    let level = LevelResult::from_snapshot(2_000.0, 2.0, &steady, 3);
    assert_eq!(level.published, 4_000);
    assert_eq!(level.acked_per_s, 3_990.0 / 2.0);
    assert_eq!(
        (level.p50_us, level.p99_us),
        (2_000, 8_000),
        "the slowest publish row, not connect"
    );
    assert_eq!(
        (level.held_back, level.lost, level.send_lag_p99_us),
        (7, 3, 1_500)
    );
    assert!((level.failure_percent() - 10.0 * 100.0 / 4_010.0).abs() < 1e-9);
}
