//! `deploy/grafana/mqload.json` is valid JSON, every panel has a query, and every metric and
//! label its queries name is one mqload's `/metrics` serves.

use std::collections::BTreeSet;

use mqload::metrics::{Exposition, FailureTotal, Format, LoadSnapshot, RequestTotals, Snapshot};
use serde_json::Value;

/// What mqload serves with every family filled: its sample names and label names.
fn served_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut snapshot = LoadSnapshot::default();
    for kind in ["connect", "publish"] {
        let mut request = RequestTotals {
            kind: kind.into(),
            name: format!("{kind}:x"),
            requests: 1,
            ..RequestTotals::default()
        };
        request.response_time.record_micros(500, 1);
        snapshot.requests.push(request);
    }
    snapshot.failures.push(FailureTotal {
        reason: "timeout".into(),
        failures: 1,
    });
    let mut text = String::new();
    let mut exposition = Exposition::new(&mut text, Format::PrometheusText);
    snapshot.render(&mut exposition);
    exposition.finish();
    let (mut metrics, mut labels) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        metrics.insert(line[..name_end].to_owned());
        if let Some(inside) = line
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
        {
            for pair in inside.0.split(',') {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.to_owned());
                }
            }
        }
    }
    (metrics, labels)
}

/// Every `expr` in the dashboard's panels.
fn dashboard_queries() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/mqload.json");
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let panels = dashboard["panels"].as_array().expect("a panels list");
    assert!(!panels.is_empty(), "the dashboard has panels");
    let mut queries = Vec::new();
    for panel in panels {
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(
            !targets.is_empty(),
            "panel {:?} has no query",
            panel["title"]
        );
        for target in targets {
            queries.push(target["expr"].as_str().expect("an expr").to_owned());
        }
    }
    queries
}

/// The identifiers starting `mqload_` in a query.
fn metric_names(query: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("mqload_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(&tail[..end]);
        rest = &tail[end..];
    }
    names
}

/// Label names in `by (...)` clauses and `{label="..."}` matchers.
fn label_names(query: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for (_, rest) in query
        .match_indices("by (")
        .map(|(i, _)| ((), &query[i + 4..]))
    {
        let inside = rest.split(')').next().unwrap_or("");
        labels.extend(inside.split(',').map(|l| l.trim().to_owned()));
    }
    for (i, _) in query.match_indices('{') {
        let inside = query[i + 1..].split('}').next().unwrap_or("");
        labels.extend(
            inside
                .split(',')
                .filter_map(|m| m.split(['=', '!', '~']).next())
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty() && !l.starts_with('{')),
        );
    }
    labels
}

#[test]
fn every_metric_and_label_the_dashboard_queries_is_served() {
    let (metrics, labels) = served_names();
    let queries = dashboard_queries();
    let mut used = BTreeSet::new();
    for query in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty(), "query names no mqload metric: {query}");
        for name in names {
            assert!(
                metrics.contains(name),
                "{name} (in {query}) is not served; served: {metrics:?}"
            );
            used.insert(name.to_owned());
        }
        for label in label_names(query) {
            // `__rate_interval` and the like are Grafana's, not labels.
            if label.starts_with('$') {
                continue;
            }
            assert!(
                labels.contains(&label),
                "label {label} (in {query}) is not served"
            );
        }
    }
    // Every family the issue names has a panel.
    for family in [
        "mqload_requests_total",
        "mqload_failures_total",
        "mqload_connects_total",
        "mqload_connection_drops_total",
        "mqload_deliveries_total",
        "mqload_users",
        "mqload_connected_users",
        "mqload_in_flight_messages",
        "mqload_held_back_messages",
        "mqload_response_time_seconds_bucket",
    ] {
        assert!(used.contains(family), "no panel shows {family}");
    }
}

#[test]
fn the_name_and_label_readers_find_what_they_should() {
    assert_eq!(
        metric_names("sum(rate(mqload_a_total{kind=\"p\"}[1m])) / mqload_b"),
        ["mqload_a_total", "mqload_b"]
    );
    assert_eq!(
        label_names("sum by (le, kind) (rate(x{name=~\"a\",reason!=\"b\"}[1m]))"),
        ["le", "kind", "name", "reason"]
    );
}
