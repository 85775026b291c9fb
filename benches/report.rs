//! Criterion bench of the report writers at their largest: a run whose time series is full
//! (1,800 points, the bound before downsampling) rendered as JSON and as the HTML page.

use criterion::{Criterion, criterion_group, criterion_main};
use mqload::report::json::{ReportData, RunParameters, StopReason};
use mqload::report::{html, json};
use mqload::stats::{MAX_POINTS, RowStats, SeriesPoint, Snapshot, TimeSeries};
use std::hint::black_box;

fn full_run() -> (Snapshot, TimeSeries) {
    let mut stats = Snapshot::default();
    for name in ["connect", "disconnect", "publish:1:locust/test/topic"] {
        stats.rows.push(RowStats {
            method: "MQTT".into(),
            name: name.into(),
            num_requests: 1_000_000,
            ..RowStats::default()
        });
    }
    let points = (0..MAX_POINTS as i64)
        .map(|i| SeriesPoint {
            start_unix: 1_800_000_000 + i,
            seconds: 1,
            requests: vec![3, 1, 10_000],
            failures: vec![0, 0, 2],
            p50_us: 700 + i as u64,
            p95_us: 1_500,
            p99_us: 3_000,
            users: 1_000,
            send_lag_p99_us: 1_200,
        })
        .collect();
    let names = stats.rows.iter().map(|r| r.name.clone()).collect();
    let series = TimeSeries {
        names,
        resolution_s: 1,
        points,
    };
    (stats, series)
}

fn render(c: &mut Criterion) {
    let (stats, series) = full_run();
    let data = ReportData {
        parameters: RunParameters::default(),
        stats: &stats,
        series: &series,
        start_unix: 0.0,
        end_unix: 1800.0,
        stopped_by: StopReason::RunTime,
        sections: Vec::new(),
        find_limit: None,
    };
    eprintln!(
        "report sizes at {MAX_POINTS} points: JSON {} bytes, HTML {} bytes",
        json::render(&data).len(),
        html::render(&data).len()
    );
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.bench_function("json_1800_points", |b| {
        b.iter(|| black_box(json::render(&data)))
    });
    group.bench_function("html_1800_points", |b| {
        b.iter(|| black_box(html::render(&data)))
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
