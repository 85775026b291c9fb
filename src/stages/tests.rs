//! The `--stages` profile and driver on virtual time: parsing, ramps, steps, spawn rates,
//! message integrals and the orders per tick.

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn the_issue_example_parses_and_ramps_linearly() {
    let stages = parse("2m:1000u, 5m:1000u,1m:5000u@2,2m:0u").expect("parses");
    assert_eq!(stages.len(), 4);
    assert_eq!(stages[2].rate, Some(2.0));
    let p = Profile::new(stages, 1.0, None);
    assert_eq!(p.total(), secs(600.0));
    assert_eq!(p.peak_users(), 5000);
    assert_eq!(p.peak_rate(), 2.0);
    assert_eq!(p.at(secs(60.0)).users, 500.0);
    assert_eq!(
        p.at(secs(300.0)),
        Target {
            users: 1000.0,
            rate: 1.0
        }
    );
    let mid = p.at(secs(450.0));
    assert_eq!((mid.users, mid.rate), (3000.0, 1.5));
    // The rate of the last segment stays at 2; users fall to 0.
    assert_eq!(
        p.at(secs(540.0)),
        Target {
            users: 2500.0,
            rate: 2.0
        }
    );
    assert_eq!(
        p.at(secs(9999.0)),
        Target {
            users: 0.0,
            rate: 2.0
        }
    );
    assert_eq!(p.stage_at(secs(119.9)), 0);
    assert_eq!(p.stage_at(secs(120.0)), 1);
    assert_eq!(p.bounds(2), (secs(420.0), secs(480.0)));
}

#[test]
fn a_zero_length_segment_is_a_step() {
    let p = Profile::new(parse("0s:100u,10s:100u@2").expect("parses"), 1.0, None);
    assert_eq!(
        p.at(Duration::ZERO),
        Target {
            users: 100.0,
            rate: 1.0
        }
    );
    let mut driver = Driver::new(p, 1.0);
    let first = driver.poll(Duration::ZERO);
    assert_eq!(
        first,
        vec![Order::Users {
            count: 100,
            spawn_rate: f64::INFINITY
        }]
    );
}

#[test]
fn with_a_spawn_rate_users_move_at_that_rate() {
    let p = Profile::new(parse("10s:100u,10s:10u").expect("parses"), 1.0, Some(20.0));
    assert_eq!(p.at(secs(2.0)).users, 40.0);
    assert_eq!(p.at(secs(5.0)).users, 100.0, "reached early, then held");
    assert_eq!(p.users_slope(secs(6.0)), 0.0);
    assert_eq!(p.at(secs(12.0)).users, 60.0);
    assert_eq!(p.at(secs(20.0)).users, 10.0);
    // Too slow for the segment: the next one starts from where it got to.
    let slow = Profile::new(parse("2s:100u,2s:100u").expect("parses"), 1.0, Some(10.0));
    assert_eq!(slow.at(secs(2.0)).users, 20.0);
    assert_eq!(slow.at(secs(4.0)).users, 40.0);
}

#[test]
fn messages_integrate_users_times_rate() {
    // 0 -> 10 users over 10 s at 1/s: 50; 10 s of 10 users at 1 -> 3/s: 200.
    let p = Profile::new(parse("10s:10u,10s:10u@3").expect("parses"), 1.0, None);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(p.messages_over(p.total()), 250.0));
    // Cut at 5 s: 0 -> 5 users at 1/s; 10 s longer: 10 users at 3/s hold.
    assert!(close(p.messages_over(secs(5.0)), 12.5));
    assert!(close(p.messages_over(secs(30.0)), 550.0));
    // With a spawn rate of 5/s: 0 -> 10 in 2 s (10 msgs) then 8 s of 10 (80).
    let p = Profile::new(parse("10s:10u").expect("parses"), 1.0, Some(5.0));
    assert!(
        close(p.messages_over(p.total()), 90.0),
        "{}",
        p.messages_over(p.total())
    );
}

#[test]
fn mistakes_name_the_form() {
    for (text, err) in [
        ("", StagesError::Empty),
        ("10s", StagesError::BadSegment("10s".into())),
        ("10s:5", StagesError::BadSegment("10s:5".into())),
        ("ten:5u", StagesError::BadSegment("ten:5u".into())),
        ("10s:5u@0", StagesError::BadRate("10s:5u@0".into())),
        ("10s:5u@x", StagesError::BadRate("10s:5u@x".into())),
        ("0s:5u", StagesError::ZeroLength),
        ("10s:0u", StagesError::NoUsers),
    ] {
        assert_eq!(parse(text), Err(err), "{text}");
    }
    assert!(StagesError::Empty.to_string().contains("2m:1000u"));
}

#[test]
fn the_driver_orders_whole_users_spread_over_each_tick_and_rate_changes_once() {
    let p = Profile::new(parse("1s:10u,1s:10u@2,1s:0u").expect("parses"), 1.0, None);
    let mut driver = Driver::new(p, 1.0);
    let mut orders = Vec::new();
    for tick in 0..=30 {
        for order in driver.poll(TICK * tick) {
            orders.push((tick, order));
        }
    }
    // A ramp of 10 users/s: one user more per tick, each spread at the ramp's slope.
    assert_eq!(
        orders[0],
        (
            0,
            Order::Users {
                count: 0,
                spawn_rate: 10.0
            }
        )
    );
    assert_eq!(
        orders[1],
        (
            1,
            Order::Users {
                count: 1,
                spawn_rate: 10.0
            }
        )
    );
    let held = orders.iter().find(|(t, _)| *t == 10).map(|o| o.1);
    assert_eq!(
        held,
        Some(Order::Users {
            count: 10,
            spawn_rate: f64::INFINITY
        })
    );
    // The rate ramps 1 -> 2 over the second segment: one order per tick, then none.
    let rates: Vec<f64> = orders
        .iter()
        .filter_map(|(_, o)| match o {
            Order::Rate(r) => Some(*r),
            Order::Users { .. } => None,
        })
        .collect();
    assert_eq!(rates.len(), 10);
    assert!((rates[9] - 2.0).abs() < 1e-9);
    assert!(rates.windows(2).all(|w| w[1] > w[0]));
    let last = orders.last().map(|o| o.1);
    assert_eq!(
        last,
        Some(Order::Users {
            count: 0,
            spawn_rate: f64::INFINITY
        })
    );
}

#[test]
fn the_steepest_second_of_users_is_what_a_connect_quota_must_allow() {
    let peak = |text: &str, spawn_rate: Option<f64>| {
        Profile::new(parse(text).expect("parses"), 1.0, spawn_rate).peak_users_per_sec()
    };
    // 0 -> 100 over 10 s (10/s), then 100 -> 1000 over 5 s (180/s); falling adds nobody.
    assert_eq!(peak("10s:100u,5s:1000u,5s:0u", None), 180.0);
    // --spawn-rate: 50/s whatever the segment's length, while the ramp lasts.
    assert_eq!(peak("10s:100u,5s:1000u", Some(50.0)), 50.0);
    // A ramp of half a second adds its 40 users within one second.
    assert_eq!(peak("500ms:40u,10s:40u", None), 40.0);
    // A step counts whole, with the ramp that follows it in the same second.
    assert_eq!(peak("0s:300u,2s:500u", None), 400.0);
    // Two short ramps back to back fall in one second: 100 + 100.
    assert_eq!(peak("500ms:100u,500ms:200u,10s:200u", None), 200.0);
}
