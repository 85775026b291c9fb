//! `--stages` in the JSON and HTML reports: one section per segment of the profile (its
//! target, and what the run measured in the seconds whose middle falls in it: its own
//! publish percentiles, merged from those seconds' histograms), named `stage_N` so the
//! sections sort in profile order and the HTML page shows each as a table.

use serde_json::{Value, json};

use crate::stages::{Profile, Stage};
use crate::stats::{StageFigures, StageSpans};

/// Where `profile`'s segments lie in time for a run that started at `start_unix`, for the
/// collector's per-stage figures.
pub fn stage_spans(profile: &Profile, start_unix: f64) -> StageSpans {
    let ends = (0..profile.stages().len())
        .map(|i| profile.bounds(i).1.as_secs_f64())
        .collect();
    StageSpans::new(start_unix, ends)
}

/// One section per segment, from the collector's per-stage `figures` (in profile order; a
/// segment without figures shows zeros).
pub fn stage_sections(profile: &Profile, figures: &[StageFigures]) -> Vec<(String, Value)> {
    let count = profile.stages().len();
    let width = count.to_string().len();
    profile
        .stages()
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let (from, to) = profile.bounds(i);
            let target = profile.at(to);
            let name = format!("stage_{:0width$}", i + 1);
            let mut section = measured(&figures.get(i).copied().unwrap_or_default());
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

/// What the run measured in one segment.
fn measured(f: &StageFigures) -> Value {
    let per_second = |n: u64| {
        if f.seconds == 0 {
            0.0
        } else {
            n as f64 / f64::from(f.seconds)
        }
    };
    let [p50, p90, p99, p999] = f.publish_us;
    json!({
        "seconds_measured": f.seconds,
        "users_connected_mean": f.users_mean,
        "users_connected_at_end": f.users_at_end,
        "requests": f.requests,
        "failures": f.failures,
        "publishes": f.publishes,
        "publish_per_s": per_second(f.publishes),
        "p50_us": p50,
        "p90_us": p90,
        "p99_us": p99,
        "p999_us": p999,
        "send_lag_p99_us": f.send_lag_p99_us,
        "p99_us_worst_second": f.p99_us_worst_second,
        "send_lag_p99_us_worst_second": f.send_lag_p99_us_worst_second,
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
    fn each_segment_gets_its_figures_and_its_target() {
        let profile = Profile::new(parse("2s:10u,3s:10u@2").expect("parses"), 1.0, None);
        let spans = stage_spans(&profile, 1000.0);
        assert_eq!(spans, StageSpans::new(1000.0, vec![2.0, 5.0]));
        let second = StageFigures {
            seconds: 3,
            users_at_end: 25,
            requests: 125,
            failures: 1,
            publishes: 120,
            publish_us: [100, 200, 300, 400],
            send_lag_p99_us: 50,
            p99_us_worst_second: 500,
            ..StageFigures::default()
        };
        let sections = stage_sections(&profile, &[StageFigures::default(), second]);
        assert_eq!(sections.len(), 2);
        let (name, first) = &sections[0];
        assert_eq!(name, "stage_1");
        assert_eq!(first["segment"], "2s:10u");
        assert_eq!(first["seconds_measured"], 0);
        assert_eq!(first["publish_per_s"], 0.0);
        assert_eq!(first["target_msg_per_s"], 10.0);
        let (_, second) = &sections[1];
        assert_eq!(second["segment"], "3s:10u@2");
        assert_eq!(
            (second["from_s"].clone(), second["to_s"].clone()),
            (json!(2.0), json!(5.0))
        );
        assert_eq!(second["publish_per_s"], 40.0);
        assert_eq!(second["users_connected_at_end"], 25);
        assert_eq!(
            (second["requests"].clone(), second["failures"].clone()),
            (json!(125), json!(1))
        );
        assert_eq!(
            [
                &second["p50_us"],
                &second["p90_us"],
                &second["p99_us"],
                &second["p999_us"]
            ],
            [100, 200, 300, 400]
        );
        assert_eq!(second["send_lag_p99_us"], 50);
        assert_eq!(second["p99_us_worst_second"], 500);
        assert_eq!(second["target_msg_per_s"], 20.0);
    }
}
