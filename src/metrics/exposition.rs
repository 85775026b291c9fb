//! The text exposition formats Prometheus scrapes (text 0.0.4 and OpenMetrics 1.0): picking one
//! from the `Accept` header, escaping, and a writer for metric families and samples.

use std::fmt::Write as _;

use super::histogram::{LATENCY_BUCKET_BOUNDS, LatencyHistogram};

/// Which text format a scrape is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4: what `promtool check metrics` and old scrapers read.
    PrometheusText,
    /// OpenMetrics 1.0 text: what Prometheus asks for first; ends with `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format a client prefers, from its `Accept` header (absent: the text format).
    ///
    /// OpenMetrics is chosen when an `application/openmetrics-text` range (with no version,
    /// or version 1.0.0) has a higher quality than anything that admits the text format;
    /// on a tie, and for anything unreadable, the text format, which every scraper reads.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let mut open_metrics_q = 0.0_f32;
        let mut text_q = 0.0_f32;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or("");
            let mut quality = 1.0_f32;
            let mut version: Option<&str> = None;
            for parameter in parts {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                let key = key.trim();
                if key.eq_ignore_ascii_case("q") {
                    quality = value.trim().parse().unwrap_or(0.0);
                } else if key.eq_ignore_ascii_case("version") {
                    version = Some(value.trim());
                }
            }
            // Compared without case and without allocating: this runs on every scrape.
            let is = |name: &str| media_type.eq_ignore_ascii_case(name);
            if is("application/openmetrics-text") {
                if matches!(version, None | Some("1.0.0")) {
                    open_metrics_q = open_metrics_q.max(quality);
                }
            } else if is("text/plain") {
                if matches!(version, None | Some("0.0.4")) {
                    text_q = text_q.max(quality);
                }
            } else if is("text/*") || is("*/*") {
                text_q = text_q.max(quality);
            }
        }
        if open_metrics_q > 0.0 && open_metrics_q > text_q {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// What kind of metric a family is (the `# TYPE` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (resets when the process restarts); samples end in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative `_bucket{le=...}` samples, `_sum` and `_count`.
    Histogram,
}

impl MetricType {
    fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A metric family's metadata: its name without suffixes, help text, type and unit.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The family name, without `_total` for a counter (e.g. `mqload_requests`); for a
    /// family with a unit it ends with `_<unit>`, as OpenMetrics requires.
    pub name: &'static str,
    /// One line of help (escaped on output).
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub metric_type: MetricType,
    /// The base unit (`seconds`), written as OpenMetrics' `# UNIT` line.
    pub unit: Option<&'static str>,
}

/// A `(name, value)` label pair; values are escaped on output.
pub type Label<'a> = (&'a str, &'a str);

/// Writes families and samples in one [`Format`] into a caller's reusable `String`.
///
/// Writing to a `String` cannot fail, so nothing here returns an error; once the buffer has
/// grown to a scrape's size, rendering the next scrape does not allocate.
pub struct Exposition<'a> {
    out: &'a mut String,
    format: Format,
}

impl<'a> Exposition<'a> {
    /// A writer appending to `out` (the caller clears it between scrapes).
    pub fn new(out: &'a mut String, format: Format) -> Self {
        Exposition { out, format }
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The `# HELP`, `# TYPE` (and, in OpenMetrics, `# UNIT`) lines that open a family.
    pub fn family(&mut self, family: &Family) {
        // The text format names a counter family by its sample name; OpenMetrics by the
        // name without `_total`.
        let counter_suffix = match (self.format, family.metric_type) {
            (Format::PrometheusText, MetricType::Counter) => "_total",
            _ => "",
        };
        let name = family.name;
        let metric_type = family.metric_type.name();
        let _ = write!(self.out, "# HELP {name}{counter_suffix} ");
        escape_help(self.out, family.help, self.format);
        let _ = write!(self.out, "\n# TYPE {name}{counter_suffix} {metric_type}\n");
        if let (Format::OpenMetrics, Some(unit)) = (self.format, family.unit) {
            let _ = writeln!(self.out, "# UNIT {name} {unit}");
        }
    }

    /// A counter's one sample: `<family>_total{labels} value`.
    pub fn counter(&mut self, family: &Family, labels: &[Label<'_>], value: u64) {
        self.sample_start(family.name, "_total", labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A gauge's one sample: `<family>{labels} value`.
    pub fn gauge(&mut self, family: &Family, labels: &[Label<'_>], value: u64) {
        self.sample_start(family.name, "", labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's samples: a cumulative `_bucket` per bound and `+Inf`, then `_sum` (in
    /// seconds) and `_count`.
    pub fn histogram(
        &mut self,
        family: &Family,
        labels: &[Label<'_>],
        histogram: &LatencyHistogram,
    ) {
        for (bound, cumulative) in LATENCY_BUCKET_BOUNDS
            .iter()
            .zip(histogram.cumulative_counts())
        {
            self.sample_start(family.name, "_bucket", labels, Some(bound.le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.sample_start(family.name, "_bucket", labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", histogram.count());
        self.sample_start(family.name, "_sum", labels, None);
        self.out.push(' ');
        write_float(self.out, histogram.sum_seconds());
        self.out.push('\n');
        self.sample_start(family.name, "_count", labels, None);
        let _ = writeln!(self.out, " {}", histogram.count());
    }

    /// Ends the exposition (OpenMetrics' mandatory `# EOF`; nothing in the text format).
    pub fn finish(self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }

    fn sample_start(&mut self, name: &str, suffix: &str, labels: &[Label<'_>], le: Option<&str>) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (key, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_label_value(self.out, value);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// Appends `value` as a label value: backslash, double quote and line feed escaped (the same
/// in both formats).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `help` as `# HELP` text: the text format escapes backslash and line feed only;
/// OpenMetrics escapes double quotes too.
pub fn escape_help(out: &mut String, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Appends a float as both formats spell it (`+Inf`, `-Inf`, `NaN`; never an exponent).
pub fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        escape_label_value(&mut out, value);
        out
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escaped(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escaped("line\nnext"), r"line\nnext");
        assert_eq!(
            escaped(r"\n"),
            r"\\n",
            "a literal backslash-n stays two characters"
        );
        assert_eq!(
            escaped("publish:1:devices/{id}/té"),
            "publish:1:devices/{id}/té"
        );
    }

    #[test]
    fn help_escapes_quotes_only_in_open_metrics() {
        let help = "say \"hi\"\\\n";
        let mut text = String::new();
        escape_help(&mut text, help, Format::PrometheusText);
        assert_eq!(text, r#"say "hi"\\\n"#);
        let mut open = String::new();
        escape_help(&mut open, help, Format::OpenMetrics);
        assert_eq!(open, r#"say \"hi\"\\\n"#);
    }

    #[test]
    fn floats_are_spelled_as_prometheus_reads_them() {
        let spell = |value: f64| {
            let mut out = String::new();
            write_float(&mut out, value);
            out
        };
        assert_eq!(spell(f64::INFINITY), "+Inf");
        assert_eq!(spell(f64::NEG_INFINITY), "-Inf");
        assert_eq!(spell(f64::NAN), "NaN");
        assert_eq!(spell(0.000_1), "0.0001");
        assert_eq!(spell(1e-7), "0.0000001");
        assert_eq!(spell(3.0), "3");
    }

    #[test]
    fn accept_header_picks_the_format() {
        // What Prometheus 2.x sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,\
            application/openmetrics-text;version=0.0.1;q=0.75,\
            text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(None), Format::PrometheusText);
        assert_eq!(Format::from_accept(Some("*/*")), Format::PrometheusText);
        assert_eq!(
            Format::from_accept(Some("text/plain")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::from_accept(Some("text/plain;q=1, application/openmetrics-text;q=0.5")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;version=0.0.1")),
            Format::PrometheusText,
            "only OpenMetrics 1.0.0 is served"
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Format::PrometheusText
        );
        assert_eq!(Format::from_accept(Some(";;,=,q")), Format::PrometheusText);
        assert_eq!(
            Format::from_accept(Some(
                "Application/OpenMetrics-Text; Q=0.9, text/plain; q=0.5"
            )),
            Format::OpenMetrics,
            "media types and parameter names ignore case"
        );
    }

    const REQUESTS: Family = Family {
        name: "mqload_requests",
        help: "Requests.",
        metric_type: MetricType::Counter,
        unit: None,
    };

    #[test]
    fn counter_family_names_differ_between_formats() {
        let mut out = String::new();
        let mut text = Exposition::new(&mut out, Format::PrometheusText);
        text.family(&REQUESTS);
        text.counter(&REQUESTS, &[("kind", "publish")], 7);
        text.finish();
        assert_eq!(
            out,
            "# HELP mqload_requests_total Requests.\n# TYPE mqload_requests_total counter\n\
             mqload_requests_total{kind=\"publish\"} 7\n"
        );
        out.clear();
        let mut open = Exposition::new(&mut out, Format::OpenMetrics);
        open.family(&REQUESTS);
        open.counter(&REQUESTS, &[("kind", "publish")], 7);
        open.finish();
        assert_eq!(
            out,
            "# HELP mqload_requests Requests.\n# TYPE mqload_requests counter\n\
             mqload_requests_total{kind=\"publish\"} 7\n# EOF\n"
        );
    }
}
