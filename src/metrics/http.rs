//! The sliver of HTTP/1.1 a metrics endpoint needs, sans-IO: read a request head from bytes,
//! decide the answer (`/metrics`, 404, 405, 400, 431), and write response heads.

use std::fmt::{self, Write as _};

use super::exposition::Format;

/// The path served.
pub const METRICS_PATH: &str = "/metrics";

/// Why a request head cannot be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The head passed the size limit without ending (answered 431).
    TooLarge,
    /// The request line is not `<method> <target> HTTP/1.x` (answered 400).
    MalformedRequestLine,
    /// A header line has no `:` (answered 400).
    MalformedHeader,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::TooLarge => "request head too large",
            RequestError::MalformedRequestLine => "malformed HTTP/1.1 request line",
            RequestError::MalformedHeader => "malformed HTTP header line",
        })
    }
}

/// What to answer a complete request head with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `200` with the metrics in `format`; `with_body` is false for `HEAD`.
    Metrics {
        /// The format the client asked for.
        format: Format,
        /// False for `HEAD`: the same head, no body.
        with_body: bool,
    },
    /// `404`: any path but [`METRICS_PATH`].
    NotFound,
    /// `405`: any method but `GET` and `HEAD`.
    MethodNotAllowed,
    /// `400` or `431`: the head could not be read.
    BadRequest(RequestError),
}

/// Reads the request head at the start of `buffer`: `None` while its blank line has not
/// arrived and it is within `max_head` bytes; otherwise the answer to give.
pub fn read_request(buffer: &[u8], max_head: usize) -> Option<Answer> {
    let Some(head_len) = find_head_end(buffer) else {
        if buffer.len() >= max_head {
            return Some(Answer::BadRequest(RequestError::TooLarge));
        }
        return None;
    };
    if head_len > max_head {
        return Some(Answer::BadRequest(RequestError::TooLarge));
    }
    Some(answer(&buffer[..head_len]).unwrap_or_else(Answer::BadRequest))
}

/// The length of the head up to and including its blank line (`\r\n\r\n`, or a bare
/// `\n\n` from a lax client).
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    let mut previous_line_start = 0;
    for (index, &byte) in buffer.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        let line = &buffer[previous_line_start..index];
        if (line.is_empty() || line == b"\r") && previous_line_start > 0 {
            return Some(index + 1);
        }
        previous_line_start = index + 1;
    }
    None
}

fn answer(head: &[u8]) -> Result<Answer, RequestError> {
    let mut lines = head
        .split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request_line = lines.next().ok_or(RequestError::MalformedRequestLine)?;
    let mut parts = request_line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::MalformedRequestLine);
    };
    if method.is_empty() || target.is_empty() || !version.starts_with(b"HTTP/1.") {
        return Err(RequestError::MalformedRequestLine);
    }
    let mut accept = None;
    for line in lines.take_while(|line| !line.is_empty()) {
        let colon = line.iter().position(|&byte| byte == b':');
        let colon = colon.ok_or(RequestError::MalformedHeader)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"accept") {
            accept = std::str::from_utf8(value).ok().map(str::trim);
        }
    }
    let with_body = match method {
        b"GET" => true,
        b"HEAD" => false,
        _ => return Ok(Answer::MethodNotAllowed),
    };
    let path = target.split(|&byte| byte == b'?').next().unwrap_or(target);
    if path != METRICS_PATH.as_bytes() {
        return Ok(Answer::NotFound);
    }
    Ok(Answer::Metrics {
        format: Format::from_accept(accept),
        with_body,
    })
}

/// Appends a complete non-200 answer (head and a one-line text body) for `answer`.
pub fn write_error_response(out: &mut Vec<u8>, answer: Answer) {
    let (status, body, allow) = match answer {
        Answer::NotFound => ("404 Not Found", "only /metrics is served here\n", false),
        Answer::MethodNotAllowed => ("405 Method Not Allowed", "use GET /metrics\n", true),
        Answer::BadRequest(RequestError::TooLarge) => (
            "431 Request Header Fields Too Large",
            "request head too large\n",
            false,
        ),
        Answer::BadRequest(_) => ("400 Bad Request", "malformed HTTP/1.1 request\n", false),
        Answer::Metrics { .. } => ("500 Internal Server Error", "\n", false),
    };
    write_head(out, status, "text/plain; charset=utf-8", body.len());
    if allow {
        // Put `Allow` inside the head: replace the final blank line's start.
        out.truncate(out.len() - 2);
        out.extend_from_slice(b"Allow: GET, HEAD\r\n\r\n");
    }
    out.extend_from_slice(body.as_bytes());
}

/// Appends a `200 OK` head for a metrics body of `content_length` bytes.
pub fn write_metrics_head(out: &mut Vec<u8>, format: Format, content_length: usize) {
    write_head(out, "200 OK", format.content_type(), content_length);
}

fn write_head(out: &mut Vec<u8>, status: &str, content_type: &str, content_length: usize) {
    let mut head = HeadWriter(out);
    let _ = write!(
        head,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n\r\n"
    );
}

/// `fmt::Write` into a byte vector, so heads are formatted without a temporary `String`.
struct HeadWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for HeadWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    #[test]
    fn get_metrics_is_served_in_the_format_asked_for() {
        let plain = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            read_request(plain, MAX),
            Some(Answer::Metrics {
                format: Format::PrometheusText,
                with_body: true
            })
        );
        let open = b"GET /metrics?x=1 HTTP/1.1\r\naccept: application/openmetrics-text\r\n\r\n";
        assert_eq!(
            read_request(open, MAX),
            Some(Answer::Metrics {
                format: Format::OpenMetrics,
                with_body: true
            })
        );
        assert_eq!(
            read_request(b"HEAD /metrics HTTP/1.0\n\n", MAX),
            Some(Answer::Metrics {
                format: Format::PrometheusText,
                with_body: false
            })
        );
    }

    #[test]
    fn other_paths_methods_and_garbage_are_refused() {
        assert_eq!(
            read_request(b"GET / HTTP/1.1\r\n\r\n", MAX),
            Some(Answer::NotFound)
        );
        assert_eq!(
            read_request(b"GET /metricsx HTTP/1.1\r\n\r\n", MAX),
            Some(Answer::NotFound)
        );
        assert_eq!(
            read_request(b"POST /metrics HTTP/1.1\r\n\r\n", MAX),
            Some(Answer::MethodNotAllowed)
        );
        assert_eq!(
            read_request(b"GET /metrics HTTP/2\r\n\r\n", MAX),
            Some(Answer::BadRequest(RequestError::MalformedRequestLine))
        );
        assert_eq!(
            read_request(b"GET  /metrics HTTP/1.1\r\n\r\n", MAX),
            Some(Answer::BadRequest(RequestError::MalformedRequestLine))
        );
        assert_eq!(
            read_request(b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", MAX),
            Some(Answer::BadRequest(RequestError::MalformedHeader))
        );
    }

    #[test]
    fn an_unfinished_head_waits_until_the_limit() {
        assert_eq!(
            read_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", MAX),
            None
        );
        assert_eq!(read_request(b"", MAX), None);
        assert_eq!(
            read_request(b"\r\n\r\n", MAX),
            Some(Answer::BadRequest(RequestError::MalformedRequestLine))
        );
        let endless = vec![b'a'; MAX];
        assert_eq!(
            read_request(&endless, MAX),
            Some(Answer::BadRequest(RequestError::TooLarge))
        );
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX + 10, b'y');
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            read_request(&long, MAX),
            Some(Answer::BadRequest(RequestError::TooLarge))
        );
    }

    #[test]
    fn error_answers_are_complete_responses() {
        let mut out = Vec::new();
        write_error_response(&mut out, Answer::MethodNotAllowed);
        let text = String::from_utf8(out).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(head.contains("\r\nAllow: GET, HEAD"));
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
        let mut out = Vec::new();
        write_error_response(&mut out, Answer::NotFound);
        assert!(out.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    }
}
