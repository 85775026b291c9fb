//! A real Prometheus for the tests that scrape mqload: the server (killed on drop), its
//! HTTP query API, `promtool check metrics`, and a plain HTTP GET. Each `tests/prometheus*.rs`
//! does `mod prometheus_support;` (after `mod common;`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common;

/// The external programs this test needs; true when all are there. Missing under `CI=true`:
/// a failure, never a skip.
pub fn require_prometheus_tools() -> bool {
    let missing: Vec<&str> = ["prometheus", "promtool"]
        .into_iter()
        .filter(|tool| common::tool_path(tool).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !common::in_ci(),
        "{} not installed, and under CI=true a missing tool is a failure, not a skip: \
         install it with `apt-get install -y prometheus`",
        missing.join(" and ")
    );
    eprintln!(
        "skipping: {} not installed (apt-get install -y prometheus)",
        missing.join(" and ")
    );
    false
}

/// A Prometheus server killed when dropped, even when the test fails.
pub struct PrometheusProcess {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl PrometheusProcess {
    pub fn start(dir: &Path, target: SocketAddr) -> PrometheusProcess {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: mqload\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write the Prometheus config");
        let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
            .parse()
            .expect("address");
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("create the Prometheus log");
        let child = Command::new(common::tool_path("prometheus").expect("checked above"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start prometheus");
        PrometheusProcess { child, addr, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `data.result` of an instant PromQL query.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let (status, body) = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
            None,
        );
        assert_eq!(status, 200, "query {promql}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("the API answers JSON");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of an instant query evaluated at `unix_time` (seconds), if it has
    /// exactly one series.
    pub fn single_value_at(&self, promql: &str, unix_time: f64) -> Option<f64> {
        let (status, body) = http_get(
            self.addr,
            &format!(
                "/api/v1/query?query={}&time={unix_time:.3}",
                percent_encode(promql)
            ),
            None,
        );
        assert_eq!(status, 200, "query {promql}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("the API answers JSON");
        match answer["data"]["result"].as_array().map(Vec::as_slice) {
            Some([series]) => series["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The single value of an instant query, if it has exactly one series.
    pub fn single_value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [series] => series["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 GET on loopback (1.0, so the answer is never chunked); status and body.
pub fn http_get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let accept = accept
        .map(|accept| format!("Accept: {accept}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        return (0, answer);
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

pub fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What `promtool check metrics` says about `exposition`: success, and its output.
pub fn promtool_check_metrics(exposition: &str) -> (bool, String) {
    let mut promtool = Command::new(common::tool_path("promtool").expect("checked above"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    promtool
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("feed promtool");
    let output = promtool.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}
