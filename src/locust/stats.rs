//! mqload's per-second statistics deltas, accumulated and reported as Locust's `stats` message.
//!
//! Each report is a delta since the previous one (the master adds them up): per request name
//! a Locust `StatsEntry` (counts, response-time sum in ms, min, max, bytes, response times
//! rounded into Locust's buckets, requests and failures per epoch second), the `Aggregated`
//! total, and the errors.

use std::collections::BTreeMap;

use super::msgpack::Encoder;
use super::protocol::{self, total_users};
use crate::stats::{METHOD, StatsDelta};

/// Locust's bucket for a response time in ms: whole ms below 100, tens below 1,000,
/// hundreds below 10,000, thousands above; halves go to the even neighbour as in Python.
pub fn locust_bucket(ms: f64) -> u64 {
    let step = if ms < 100.0 {
        1.0
    } else if ms < 1_000.0 {
        10.0
    } else if ms < 10_000.0 {
        100.0
    } else {
        1_000.0
    };
    ((ms / step).round_ties_even() * step).max(0.0) as u64
}

/// One name's (or the total's) figures since the last report.
#[derive(Debug, Default, Clone)]
struct Acc {
    num_requests: u64,
    num_none_requests: u64,
    num_failures: u64,
    total_ms: f64,
    min_ms: Option<f64>,
    max_ms: f64,
    content: u64,
    last_request: Option<f64>,
    response_times: BTreeMap<u64, u64>,
    reqs_per_sec: BTreeMap<i64, u64>,
    fails_per_sec: BTreeMap<i64, u64>,
}

#[derive(Debug, Clone)]
struct ErrorAcc {
    occurrences: u64,
    first_seen: f64,
    last_seen: f64,
}

/// Statistics waiting for the next `stats` message.
#[derive(Debug)]
pub struct LocustStats {
    names: Vec<String>,
    start_time: f64,
    entries: Vec<Acc>,
    total: Acc,
    /// (name id, error text) -> occurrences.
    errors: BTreeMap<(usize, String), ErrorAcc>,
}

impl LocustStats {
    /// Empty statistics for the run's request names; `start_time` is the test's start (unix s).
    pub fn new(names: Vec<String>, start_time: f64) -> LocustStats {
        LocustStats {
            entries: vec![Acc::default(); names.len()],
            names,
            start_time,
            total: Acc::default(),
            errors: BTreeMap::new(),
        }
    }

    /// Adds one engine thread's delta.
    pub fn add(&mut self, delta: &StatsDelta) {
        let (start, end) = delta.interval_unix();
        // A delta covers about one second: its requests count in the second it mostly covers.
        let second = ((start + end) / 2.0).floor() as i64;
        for (id, entry) in delta.entries.iter().enumerate() {
            let (Some(entry), Some(acc)) = (entry, self.entries.get_mut(id)) else {
                continue;
            };
            let mut part = Acc::default();
            let timed = entry.histogram.len();
            part.num_requests = entry.num_requests;
            part.num_none_requests = entry.num_requests.saturating_sub(timed);
            part.num_failures = entry.num_failures;
            part.total_ms = entry.total_us as f64 / 1_000.0;
            if timed > 0 {
                part.min_ms = Some(entry.min_us as f64 / 1_000.0);
                part.max_ms = entry.max_us as f64 / 1_000.0;
            }
            part.content = entry.content_length;
            part.last_request = Some(end);
            for v in entry.histogram.iter_recorded() {
                let us = entry
                    .histogram
                    .median_equivalent(v.value_iterated_to())
                    .clamp(entry.min_us, entry.max_us.max(entry.min_us));
                *part
                    .response_times
                    .entry(locust_bucket(us as f64 / 1_000.0))
                    .or_default() += v.count_at_value();
            }
            part.reqs_per_sec.insert(second, entry.num_requests);
            if entry.num_failures > 0 {
                part.fails_per_sec.insert(second, entry.num_failures);
            }
            acc.merge(&part);
            self.total.merge(&part);
        }
        for (id, text, n) in &delta.errors {
            let e = self.errors.entry((*id, text.clone())).or_insert(ErrorAcc {
                occurrences: 0,
                first_seen: end,
                last_seen: end,
            });
            e.occurrences += n;
            e.last_seen = e.last_seen.max(end);
        }
    }

    /// Forgets everything not yet reported (`--reset-stats` when spawning completes).
    pub fn reset(&mut self) {
        self.entries
            .iter_mut()
            .for_each(|acc| *acc = Acc::default());
        self.total = Acc::default();
        self.errors.clear();
    }

    /// Requests waiting to be reported (all names).
    pub fn pending_requests(&self) -> u64 {
        self.total.num_requests
    }

    /// Writes the `stats` data map and starts a new delta.
    pub fn write_report(&mut self, e: &mut Encoder, classes: &[(String, u64)]) {
        let changed: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].num_requests > 0 || self.entries[i].num_failures > 0)
            .collect();
        e.map(5);
        e.str("stats");
        e.array(changed.len());
        for &i in &changed {
            write_entry(e, &self.names[i], METHOD, &self.entries[i], self.start_time);
        }
        e.str("stats_total");
        write_entry(e, "Aggregated", "", &self.total, self.start_time);
        e.str("errors");
        e.map(self.errors.len());
        for ((id, text), err) in &self.errors {
            let name = self.names.get(*id).map_or("", String::as_str);
            e.str(&format!("{METHOD}.{name}.{text}"));
            e.map(6);
            e.str("name");
            e.str(name);
            e.str("method");
            e.str(METHOD);
            e.str("error");
            e.str(text);
            e.str("occurrences");
            e.uint(err.occurrences);
            e.str("first_seen");
            e.float(err.first_seen);
            e.str("last_seen");
            e.float(err.last_seen);
        }
        e.str("user_classes_count");
        protocol::write_class_counts(e, classes);
        e.str("user_count");
        e.uint(total_users(classes));
        for acc in &mut self.entries {
            *acc = Acc::default();
        }
        self.total = Acc::default();
        self.errors.clear();
    }
}

impl LocustStats {
    /// Locust's `--json` text (`print_stats_json`): the list of entries that saw a request,
    /// as `json.dumps(stats.serialize_stats(), indent=4)` prints it. The totals and errors
    /// are not part of it, as in Locust.
    pub fn locust_json(&self) -> String {
        let rows: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].num_requests > 0 || self.entries[i].num_failures > 0)
            .collect();
        if rows.is_empty() {
            return "[]".into();
        }
        let mut out = String::from("[\n");
        for (n, &i) in rows.iter().enumerate() {
            let acc = &self.entries[i];
            let opt = |v: Option<f64>| v.map_or("null".to_owned(), python_float);
            let fields = [
                ("name", py_str(&self.names[i])),
                ("method", py_str(METHOD)),
                ("last_request_timestamp", opt(acc.last_request)),
                ("start_time", python_float(self.start_time)),
                ("num_requests", acc.num_requests.to_string()),
                ("num_none_requests", acc.num_none_requests.to_string()),
                ("num_failures", acc.num_failures.to_string()),
                ("total_response_time", python_float(acc.total_ms)),
                ("max_response_time", python_float(acc.max_ms)),
                ("min_response_time", opt(acc.min_ms)),
                ("total_content_length", acc.content.to_string()),
                (
                    "response_times",
                    py_map(acc.response_times.iter().map(|(k, v)| (k.to_string(), v))),
                ),
                (
                    "num_reqs_per_sec",
                    py_map(acc.reqs_per_sec.iter().map(|(k, v)| (k.to_string(), v))),
                ),
                (
                    "num_fail_per_sec",
                    py_map(acc.fails_per_sec.iter().map(|(k, v)| (k.to_string(), v))),
                ),
            ];
            out.push_str("    {\n");
            for (f, (key, value)) in fields.iter().enumerate() {
                let comma = if f + 1 < fields.len() { "," } else { "" };
                out.push_str(&format!("        \"{key}\": {value}{comma}\n"));
            }
            out.push_str(if n + 1 < rows.len() {
                "    },\n"
            } else {
                "    }\n"
            });
        }
        out.push(']');
        out
    }
}

/// A JSON string as Python's `json.dumps` writes it (non-ASCII as `\\uXXXX`).
fn py_str(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as Python's `repr` writes it for ordinary values (`12.0`, `0.25`).
fn python_float(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "NaN".into()
    }
}

/// A dict of counts, indented as the third level of Locust's `--json`.
fn py_map<'a>(items: impl Iterator<Item = (String, &'a u64)>) -> String {
    let items: Vec<String> = items
        .map(|(k, v)| format!("            \"{k}\": {v}"))
        .collect();
    if items.is_empty() {
        "{}".into()
    } else {
        format!("{{\n{}\n        }}", items.join(",\n"))
    }
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.num_requests += o.num_requests;
        self.num_none_requests += o.num_none_requests;
        self.num_failures += o.num_failures;
        self.total_ms += o.total_ms;
        self.min_ms = match (self.min_ms, o.min_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_ms = self.max_ms.max(o.max_ms);
        self.content += o.content;
        self.last_request = match (self.last_request, o.last_request) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (k, v) in &o.response_times {
            *self.response_times.entry(*k).or_default() += v;
        }
        for (k, v) in &o.reqs_per_sec {
            *self.reqs_per_sec.entry(*k).or_default() += v;
        }
        for (k, v) in &o.fails_per_sec {
            *self.fails_per_sec.entry(*k).or_default() += v;
        }
    }
}

fn write_entry(e: &mut Encoder, name: &str, method: &str, acc: &Acc, start_time: f64) {
    e.map(14);
    e.str("name");
    e.str(name);
    e.str("method");
    e.str(method);
    e.str("last_request_timestamp");
    match acc.last_request {
        Some(t) => e.float(t),
        None => e.nil(),
    }
    e.str("start_time");
    e.float(start_time);
    e.str("num_requests");
    e.uint(acc.num_requests);
    e.str("num_none_requests");
    e.uint(acc.num_none_requests);
    e.str("num_failures");
    e.uint(acc.num_failures);
    e.str("total_response_time");
    e.float(acc.total_ms);
    e.str("max_response_time");
    e.float(acc.max_ms);
    e.str("min_response_time");
    match acc.min_ms {
        Some(m) => e.float(m),
        None => e.nil(),
    }
    e.str("total_content_length");
    e.uint(acc.content);
    e.str("response_times");
    e.map(acc.response_times.len());
    for (k, v) in &acc.response_times {
        e.uint(*k);
        e.uint(*v);
    }
    e.str("num_reqs_per_sec");
    write_per_sec(e, &acc.reqs_per_sec);
    e.str("num_fail_per_sec");
    write_per_sec(e, &acc.fails_per_sec);
}

fn write_per_sec(e: &mut Encoder, map: &BTreeMap<i64, u64>) {
    e.map(map.len());
    for (k, v) in map {
        e.int(*k);
        e.uint(*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locust::msgpack::{Value, decode};
    use crate::stats::WorkerStats;

    #[test]
    fn buckets_follow_locusts_rounding() {
        for (ms, want) in [
            (0.4, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (99.4, 99),
            (99.6, 100),
            (147.0, 150),
            (145.0, 140),
            (155.0, 160),
            (3_432.0, 3_400),
            (3_450.0, 3_400),
            (58_760.0, 59_000),
        ] {
            assert_eq!(locust_bucket(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn a_report_carries_the_deltas_once_in_locusts_shape() {
        let names = vec!["connect".to_owned(), "publish:1:t".to_owned()];
        let mut w = WorkerStats::with_start(0, 2, 100.0);
        w.record_success(1, 1_400, 10);
        w.record_success(1, 2_600, 10);
        w.record_success(1, 147_000, 10);
        w.record_failure(0, 5_000, "refused");
        w.record_untimed_failures(1, 4, "not connected when due");
        let mut stats = LocustStats::new(names, 99.0);
        stats.add(&w.take_delta(101.0));
        assert_eq!(stats.pending_requests(), 8);
        let mut e = Encoder::new();
        stats.write_report(&mut e, &[("MqttPublisher".into(), 3)]);
        let v = decode(&e.buf).expect("valid msgpack");
        let Some(Value::Array(entries)) = v.get("stats") else {
            panic!("stats list");
        };
        assert_eq!(entries.len(), 2);
        let publish = &entries[1];
        assert_eq!(
            publish.get("name").and_then(Value::as_str),
            Some("publish:1:t")
        );
        assert_eq!(publish.get("num_requests").and_then(Value::as_u64), Some(7));
        assert_eq!(
            publish.get("num_none_requests").and_then(Value::as_u64),
            Some(4)
        );
        assert_eq!(publish.get("num_failures").and_then(Value::as_u64), Some(4));
        assert_eq!(
            publish.get("total_response_time").and_then(Value::as_f64),
            Some(151.0)
        );
        assert_eq!(
            publish.get("min_response_time").and_then(Value::as_f64),
            Some(1.4)
        );
        assert_eq!(
            publish.get("max_response_time").and_then(Value::as_f64),
            Some(147.0)
        );
        assert_eq!(
            publish.get("response_times"),
            Some(&Value::Map(vec![
                (Value::Int(1), Value::Int(1)),
                (Value::Int(3), Value::Int(1)),
                (Value::Int(150), Value::Int(1)),
            ]))
        );
        assert_eq!(
            publish.get("num_reqs_per_sec"),
            Some(&Value::Map(vec![(Value::Int(100), Value::Int(7))]))
        );
        let total = v.get("stats_total").expect("total");
        assert_eq!(
            total.get("name").and_then(Value::as_str),
            Some("Aggregated")
        );
        assert_eq!(total.get("method").and_then(Value::as_str), Some(""));
        assert_eq!(total.get("num_requests").and_then(Value::as_u64), Some(8));
        let Some(Value::Map(errors)) = v.get("errors") else {
            panic!("errors");
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(v.get("user_count").and_then(Value::as_u64), Some(3));
        // The next report is empty.
        let mut e = Encoder::new();
        stats.write_report(&mut e, &[]);
        let v = decode(&e.buf).expect("valid msgpack");
        assert_eq!(v.get("stats"), Some(&Value::Array(vec![])));
        let total = v.get("stats_total").expect("total");
        assert_eq!(total.get("last_request_timestamp"), Some(&Value::Nil));
        assert_eq!(total.get("min_response_time"), Some(&Value::Nil));
    }
}
