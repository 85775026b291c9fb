//! `--stages` in the JSON and HTML reports: one section per segment of the profile (its
//! target, and what the run's per-second series measured while it ran), named `stage_N` so
//! the sections sort in profile order and the HTML page shows each as a table.

use serde_json::{Value, json};

use crate::plan::NAME_PUBLISH;
use crate::stages::{Profile, Stage};
use crate::stats::{SeriesPoint, TimeSeries};

/// One section per segment. `start_unix` is when the run (and the profile) started; a
/// series point belongs to the segment its middle falls in.
pub fn stage_sections(
    profile: &Profile,
    series: &TimeSeries,
    start_unix: f64,
) -> Vec<(String, Value)> {
    let count = profile.stages().len();
    let width = count.to_string().len();
    let mut points: Vec<Vec<&SeriesPoint>> = vec![Vec::new(); count];
    for point in &series.points {
        let middle = point.start_unix as f64 + f64::from(point.seconds) / 2.0 - start_unix;
        if middle < 0.0 {
            continue;
        }
        let stage = profile.stage_at(std::time::Duration::from_secs_f64(middle));
        if let Some(bucket) = points.get_mut(stage) {
            bucket.push(point);
        }
    }
    profile
        .stages()
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let (from, to) = profile.bounds(i);
            let target = profile.at(to);
            let name = format!("stage_{:0width$}", i + 1);
            let mut section = measured(&points[i]);
            if let Value::Object(fields) = &mut section {
                fields.insert("segment".into(), json!(segment_text(stage)));
                fields.insert("from_s".into(), json!(from.as_secs_f64()));
                fields.insert("to_s".into(), json!(to.as_secs_f64()));
                fields.insert("target_users".into(), json!(stage.users));
                fields.insert("target_msg_per_s_per_user".into(), json!(target.rate));
                fields.insert(
                    "target_msg_per_s".into(),
                    json!(stage.users as f64 * target.rate),
                );
            }
            (name, section)
        })
        .collect()
}

/// What the series says about one segment's seconds.
fn measured(points: &[&SeriesPoint]) -> Value {
    let seconds: u32 = points.iter().map(|p| p.seconds).sum();
    let publishes: u64 = points
        .iter()
        .map(|p| p.requests.get(NAME_PUBLISH).copied().unwrap_or(0))
        .sum();
    let failures: u64 = points.iter().map(|p| p.total_failures()).sum();
    let users_mean = if seconds == 0 {
        0.0
    } else {
        points
            .iter()
            .map(|p| p.users as f64 * f64::from(p.seconds))
            .sum::<f64>()
            / f64::from(seconds)
    };
    let worst = |f: fn(&SeriesPoint) -> u64| points.iter().map(|p| f(p)).max().unwrap_or(0);
    json!({
        "seconds_measured": seconds,
        "users_connected_mean": users_mean,
        "users_connected_at_end": points.last().map_or(0, |p| p.users),
        "publishes": publishes,
        "publish_per_s": if seconds == 0 { 0.0 } else { publishes as f64 / f64::from(seconds) },
        "failures": failures,
        "p50_us_worst_second": worst(|p| p.p50_us),
        "p99_us_worst_second": worst(|p| p.p99_us),
        "send_lag_p99_us_worst_second": worst(|p| p.send_lag_p99_us),
    })
}

/// A segment as it is written on the command line (`120s:1000u@2`).
fn segment_text(stage: &Stage) -> String {
    let rate = stage.rate.map(|r| format!("@{r}")).unwrap_or_default();
    format!("{}s:{}u{rate}", stage.duration.as_secs_f64(), stage.users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::parse;

    #[test]
    fn each_segment_gets_its_seconds_and_its_target() {
        let profile = Profile::new(parse("2s:10u,3s:10u@2").expect("parses"), 1.0, None);
        let points: Vec<SeriesPoint> = (0..5)
            .map(|i| SeriesPoint {
                start_unix: 1000 + i,
                seconds: 1,
                requests: vec![0, 0, 10 * (i as u64 + 1)],
                failures: vec![0, 0, 0],
                users: 5 * (i as u64 + 1),
                p99_us: 100 * (i as u64 + 1),
                ..SeriesPoint::default()
            })
            .collect();
        let series = TimeSeries {
            names: vec!["connect".into(), "disconnect".into(), "publish".into()],
            resolution_s: 1,
            points,
        };
        let sections = stage_sections(&profile, &series, 1000.0);
        assert_eq!(sections.len(), 2);
        let (name, first) = &sections[0];
        assert_eq!(name, "stage_1");
        assert_eq!(first["segment"], "2s:10u");
        assert_eq!(first["seconds_measured"], 2);
        assert_eq!(first["publishes"], 30);
        assert_eq!(first["users_connected_mean"], 7.5);
        assert_eq!(first["target_msg_per_s"], 10.0);
        let (_, second) = &sections[1];
        assert_eq!(second["segment"], "3s:10u@2");
        assert_eq!(
            (second["from_s"].clone(), second["to_s"].clone()),
            (json!(2.0), json!(5.0))
        );
        assert_eq!(second["publish_per_s"], 40.0);
        assert_eq!(second["users_connected_at_end"], 25);
        assert_eq!(second["p99_us_worst_second"], 500);
        assert_eq!(second["target_msg_per_s"], 20.0);
    }
}
