//! Message bodies: the seed's JSON (run id, timestamp, base64 random data) or raw random bytes.
//!
//! Randomness is made once per builder (per thread), not per message: a pool of random bytes
//! and its base64 text are filled at `new`, and each message copies a window of them. Windows
//! start on 3-byte boundaries (so the pool's base64 text can be sliced: 3 bytes = 4 chars),
//! advance by at least the window size (so consecutive messages share no random bytes), and
//! visit every start once before the pool is refilled from the seeded generator (so a
//! builder never repeats a body). A message costs a copy, not a random number generator.
//!
//! Both formats carry a stamp a subscriber reads ([`crate::delivery`]): the JSON `info` object
//! (run id, due time, client id, seq), or in `raw` bodies a 32-byte header before the random
//! bytes (so a raw message is `--payload-bytes` + 32 bytes).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::fmt;

/// How message bodies look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The seed's JSON document, with `client_id` and `seq` added to `info`.
    Json,
    /// A 32-byte stamp (publisher, seq, due time) then random bytes.
    Raw,
}

/// What every body of a run is made of.
#[derive(Debug, Clone)]
pub struct PayloadRecipe {
    /// JSON or raw.
    pub format: PayloadFormat,
    /// Written into `info.test_run_id`.
    pub run_id: String,
    /// Random bytes per message before base64 (N KiB x 1024, or `--payload-bytes`).
    pub random_bytes: usize,
}

/// Window starts in a pool for small bodies: 64 KiB of random bytes, in 3-byte steps.
const MIN_WINDOW_STARTS: usize = 64 * 1024 / 3;

const JSON_BEFORE_RUN_ID: &[u8] = br#"{"info": {"test_run_id": ""#;
const JSON_BEFORE_TS: &[u8] = br#"", "ts": "#;
const JSON_BEFORE_CLIENT_ID: &[u8] = br#", "client_id": ""#;
const JSON_BEFORE_SEQ: &[u8] = br#"", "seq": "#;
const JSON_BEFORE_DATA: &[u8] = br#"}, "random_5KiB_data": ""#;
const JSON_END: &[u8] = br#""}"#;

/// Longest timestamp text: 20 digits of seconds, a dot, 6 decimals.
const MAX_TS_LEN: usize = 27;
/// Longest decimal u64.
const MAX_SEQ_LEN: usize = 20;
/// Client id bytes (after escaping) that [`PayloadBuilder::body_len_hint`] makes room for.
const CLIENT_ID_ROOM: usize = 64;

/// Builds bodies from a per-thread pool of random bytes made once at start.
pub struct PayloadBuilder {
    format: PayloadFormat,
    /// Run id tag written into raw headers.
    run_tag: u32,
    /// Random bytes per body.
    random_bytes: usize,
    /// `{"info": {"test_run_id": "<escaped run id>", "ts": ` (empty for raw bodies).
    json_head: Vec<u8>,
    rng: SmallRng,
    /// Random bytes; `3 * (window_starts - 1 + stride)` of them.
    pool: Vec<u8>,
    /// Standard base64 of `pool` (no padding: the pool is a multiple of 3 bytes).
    pool_base64: Vec<u8>,
    /// Distance between consecutive window starts, in 3-byte units: `ceil(random_bytes / 3)`.
    stride: usize,
    /// Number of window starts; coprime with `stride`, so stepping visits each once.
    window_starts: usize,
    /// Start of the next window, in 3-byte units.
    next_start: usize,
    /// Windows left before every start has been used and the pool is refilled.
    windows_left: usize,
}

impl PayloadBuilder {
    /// A builder whose pool is seeded from `seed` (one per thread).
    pub fn new(recipe: &PayloadRecipe, seed: u64) -> Self {
        let stride = recipe.random_bytes.div_ceil(3);
        let window_starts = window_starts_for(stride);
        let pool_len = 3 * (window_starts - 1 + stride);
        let json_head = match recipe.format {
            PayloadFormat::Json => json_head(&recipe.run_id),
            PayloadFormat::Raw => Vec::new(),
        };
        let pool_base64_len = match recipe.format {
            PayloadFormat::Json => pool_len / 3 * 4,
            PayloadFormat::Raw => 0,
        };
        let mut builder = PayloadBuilder {
            format: recipe.format,
            run_tag: crate::delivery::run_tag(&recipe.run_id),
            random_bytes: recipe.random_bytes,
            json_head,
            rng: SmallRng::seed_from_u64(seed),
            pool: vec![0; pool_len],
            pool_base64: vec![0; pool_base64_len],
            stride,
            window_starts,
            next_start: 0,
            windows_left: 0,
        };
        builder.refill();
        builder
    }

    /// Replaces `out` with the body of message `seq` of user `user` (`client_id`), due at
    /// `ts_unix`.
    pub fn build(&mut self, user: u64, client_id: &str, seq: u64, ts_unix: f64, out: &mut Vec<u8>) {
        out.clear();
        let start = self.next_window();
        match self.format {
            PayloadFormat::Raw => {
                // Microseconds, as the JSON's `ts` (an f64 of unix seconds holds no finer);
                // `as` saturates: a broken clock gives 0, never a panic.
                let due_ns = ((ts_unix * 1e6).round() as u64).saturating_mul(1_000);
                crate::delivery::push_raw_header(self.run_tag, user, seq, due_ns, out);
                out.extend_from_slice(&self.pool[start..start + self.random_bytes])
            }
            PayloadFormat::Json => {
                out.reserve(self.json_len_except_client_id() + client_id.len());
                out.extend_from_slice(&self.json_head);
                push_timestamp(ts_unix, out);
                out.extend_from_slice(JSON_BEFORE_CLIENT_ID);
                push_json_escaped(client_id, out);
                out.extend_from_slice(JSON_BEFORE_SEQ);
                push_u64(seq, out);
                out.extend_from_slice(JSON_BEFORE_DATA);
                self.push_base64_window(start, out);
                out.extend_from_slice(JSON_END);
            }
        }
    }

    /// Capacity that holds any body whose client id takes at most 64 bytes once escaped
    /// (mqload's ids take 23): reserve it once and `build` never reallocates.
    pub fn body_len_hint(&self) -> usize {
        match self.format {
            PayloadFormat::Raw => crate::delivery::RAW_HEADER_LEN + self.random_bytes,
            PayloadFormat::Json => self.json_len_except_client_id() + CLIENT_ID_ROOM,
        }
    }

    /// Longest JSON body without its client id (longest timestamp and seq).
    fn json_len_except_client_id(&self) -> usize {
        self.json_head.len()
            + MAX_TS_LEN
            + JSON_BEFORE_CLIENT_ID.len()
            + JSON_BEFORE_SEQ.len()
            + MAX_SEQ_LEN
            + JSON_BEFORE_DATA.len()
            + base64_len(self.random_bytes)
            + JSON_END.len()
    }

    /// Byte offset of the next window into `pool`; refills the pool once all are used.
    fn next_window(&mut self) -> usize {
        if self.windows_left == 0 {
            self.refill();
        }
        self.windows_left -= 1;
        let start = self.next_start;
        self.next_start = (start + self.stride) % self.window_starts;
        start * 3
    }

    /// Fresh random bytes (and their base64) for another full cycle of windows.
    fn refill(&mut self) {
        self.rng.fill_bytes(&mut self.pool);
        if !self.pool_base64.is_empty() {
            let written = STANDARD.encode_slice(&self.pool, &mut self.pool_base64);
            debug_assert_eq!(written.ok(), Some(self.pool_base64.len()));
        }
        self.windows_left = self.window_starts;
    }

    /// Appends the base64 text of `pool[start..start + random_bytes]`, padding included.
    fn push_base64_window(&self, start: usize, out: &mut Vec<u8>) {
        let whole_groups = self.random_bytes / 3;
        let text_start = start / 3 * 4;
        out.extend_from_slice(&self.pool_base64[text_start..text_start + whole_groups * 4]);
        let tail = &self.pool[start + whole_groups * 3..start + self.random_bytes];
        if !tail.is_empty() {
            let mut padded = [0u8; 4];
            let written = STANDARD.encode_slice(tail, &mut padded).unwrap_or(0);
            out.extend_from_slice(&padded[..written]);
        }
    }
}

impl fmt::Debug for PayloadBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadBuilder")
            .field("format", &self.format)
            .field("random_bytes", &self.random_bytes)
            .field("pool_len", &self.pool.len())
            .field("window_starts", &self.window_starts)
            .finish_non_exhaustive()
    }
}

/// The JSON body's fixed start for `run_id`: `{"info": {"test_run_id": "<run id>", "ts": `.
pub fn json_head(run_id: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(JSON_BEFORE_RUN_ID.len() + run_id.len() + 16);
    head.extend_from_slice(JSON_BEFORE_RUN_ID);
    push_json_escaped(run_id, &mut head);
    head.extend_from_slice(JSON_BEFORE_TS);
    head
}

/// Window starts for windows `stride` units long: at least 64 KiB worth and `2 * stride + 1`
/// (so a step that wraps around still lands clear of the previous window), coprime with
/// `stride` (so stepping by it visits every start before coming back).
fn window_starts_for(stride: usize) -> usize {
    if stride == 0 {
        return 1;
    }
    let mut starts = MIN_WINDOW_STARTS.max(2 * stride + 1);
    while gcd(starts, stride) != 1 {
        starts += 1;
    }
    starts
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Length of standard padded base64 for `n` bytes.
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends `text` as the inside of a JSON string: quotes, backslashes and control
/// characters escaped, everything else (UTF-8 included) copied.
fn push_json_escaped(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut copied = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x00..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[copied..index]);
        copied = index + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let hex = [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xF)]];
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&hex);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[copied..]);
}

/// Appends a Unix time as seconds with 6 decimals (microseconds), e.g. `1764270000.123456`.
/// Negative or non-finite times (a broken clock) are written as `0.000000`, still valid JSON.
fn push_timestamp(ts_unix: f64, out: &mut Vec<u8>) {
    // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
    let micros = (ts_unix * 1e6).round() as u64;
    push_u64(micros / 1_000_000, out);
    out.push(b'.');
    let mut fraction = micros % 1_000_000;
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Appends `value` in decimal.
fn push_u64(mut value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; MAX_SEQ_LEN];
    let mut first = digits.len();
    loop {
        first -= 1;
        digits[first] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[first..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Just enough JSON to check the body's structure: objects, strings, numbers.
    #[derive(Debug, PartialEq)]
    enum Json {
        Object(Vec<(String, Json)>),
        String(String),
        Number(f64),
    }

    struct Parser<'a> {
        rest: &'a [u8],
    }

    /// Why the test's JSON checker refused a body.
    #[derive(Debug, PartialEq)]
    enum JsonError {
        /// Characters after the top-level value.
        Trailing,
        /// This character was expected here.
        Expected(char),
        /// Not the start of an object, a string or a number.
        UnexpectedValue,
        /// An object without its closing brace.
        UnterminatedObject,
        /// A string without its closing quote.
        UnterminatedString,
        /// A raw control character inside a string.
        RawControl,
        /// An escape JSON does not have, or a bad `\u` sequence.
        BadEscape,
        /// A string or number that is not UTF-8.
        NotUtf8,
        /// A number Rust cannot parse (the text as found).
        BadNumber(String),
    }

    impl Parser<'_> {
        fn parse(text: &[u8]) -> Result<Json, JsonError> {
            let mut parser = Parser { rest: text };
            let value = parser.value()?;
            parser.skip_whitespace();
            match parser.rest.is_empty() {
                true => Ok(value),
                false => Err(JsonError::Trailing),
            }
        }

        fn skip_whitespace(&mut self) {
            while let [b' ' | b'\n' | b'\t' | b'\r', rest @ ..] = self.rest {
                self.rest = rest;
            }
        }

        fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
            self.skip_whitespace();
            match self.rest.split_first() {
                Some((&b, rest)) if b == byte => {
                    self.rest = rest;
                    Ok(())
                }
                _ => Err(JsonError::Expected(byte as char)),
            }
        }

        fn value(&mut self) -> Result<Json, JsonError> {
            self.skip_whitespace();
            match self.rest.first() {
                Some(b'{') => self.object(),
                Some(b'"') => self.string().map(Json::String),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => Err(JsonError::UnexpectedValue),
            }
        }

        fn object(&mut self) -> Result<Json, JsonError> {
            self.expect(b'{')?;
            let mut members = Vec::new();
            loop {
                self.skip_whitespace();
                let key = self.string()?;
                self.expect(b':')?;
                members.push((key, self.value()?));
                self.skip_whitespace();
                match self.rest.split_first() {
                    Some((b',', rest)) => self.rest = rest,
                    Some((b'}', rest)) => {
                        self.rest = rest;
                        return Ok(Json::Object(members));
                    }
                    _ => return Err(JsonError::UnterminatedObject),
                }
            }
        }

        fn string(&mut self) -> Result<String, JsonError> {
            self.expect(b'"')?;
            let mut text = Vec::new();
            loop {
                let (&byte, rest) = self
                    .rest
                    .split_first()
                    .ok_or(JsonError::UnterminatedString)?;
                self.rest = rest;
                match byte {
                    b'"' => return String::from_utf8(text).map_err(|_| JsonError::NotUtf8),
                    0x00..=0x1F => return Err(JsonError::RawControl),
                    b'\\' => {
                        let (&escape, rest) =
                            self.rest.split_first().ok_or(JsonError::BadEscape)?;
                        self.rest = rest;
                        let decoded = match escape {
                            b'"' | b'\\' | b'/' => escape,
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'f' => 0x0C,
                            b'u' => {
                                let (hex, rest) =
                                    self.rest.split_at_checked(4).ok_or(JsonError::BadEscape)?;
                                self.rest = rest;
                                let hex =
                                    std::str::from_utf8(hex).map_err(|_| JsonError::BadEscape)?;
                                let code = u32::from_str_radix(hex, 16)
                                    .map_err(|_| JsonError::BadEscape)?;
                                let c = char::from_u32(code).ok_or(JsonError::BadEscape)?;
                                text.extend_from_slice(c.to_string().as_bytes());
                                continue;
                            }
                            _ => return Err(JsonError::BadEscape),
                        };
                        text.push(decoded);
                    }
                    _ => text.push(byte),
                }
            }
        }

        fn number(&mut self) -> Result<Json, JsonError> {
            let len = self
                .rest
                .iter()
                .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                .unwrap_or(self.rest.len());
            let (digits, rest) = self.rest.split_at(len);
            self.rest = rest;
            let text = std::str::from_utf8(digits).map_err(|_| JsonError::NotUtf8)?;
            text.parse()
                .map(Json::Number)
                .map_err(|_| JsonError::BadNumber(text.to_string()))
        }
    }

    const RUN_ID: &str = "EXAMPLE-AC28-45D0-9EC8-7A4B57A9C04B";
    const CLIENT_ID: &str = "locust-0123456789abcdef";

    fn recipe(format: PayloadFormat, run_id: &str, random_bytes: usize) -> PayloadRecipe {
        PayloadRecipe {
            format,
            run_id: run_id.to_string(),
            random_bytes,
        }
    }

    fn build_json(run_id: &str, client_id: &str, random_bytes: usize) -> Vec<u8> {
        let mut builder =
            PayloadBuilder::new(&recipe(PayloadFormat::Json, run_id, random_bytes), 7);
        let mut out = Vec::new();
        builder.build(0, client_id, 42, 1_764_270_000.123_456, &mut out);
        out
    }

    /// The body parsed into (run id, ts, client id, seq, base64 data), checking key order.
    fn fields(body: &[u8]) -> (String, f64, String, f64, String) {
        let Ok(Json::Object(top)) = Parser::parse(body) else {
            panic!("not a JSON object: {}", String::from_utf8_lossy(body));
        };
        let [
            (info_key, Json::Object(info)),
            (data_key, Json::String(data)),
        ] = &top[..]
        else {
            panic!("unexpected top level: {top:?}");
        };
        assert_eq!(
            (info_key.as_str(), data_key.as_str()),
            ("info", "random_5KiB_data")
        );
        let [
            (k1, Json::String(run_id)),
            (k2, Json::Number(ts)),
            (k3, Json::String(client_id)),
            (k4, Json::Number(seq)),
        ] = &info[..]
        else {
            panic!("unexpected info: {info:?}");
        };
        assert_eq!([k1, k2, k3, k4], ["test_run_id", "ts", "client_id", "seq"]);
        (run_id.clone(), *ts, client_id.clone(), *seq, data.clone())
    }

    #[test]
    fn json_body_has_the_seed_shape() {
        let body = build_json(RUN_ID, CLIENT_ID, 5 * 1024);
        let (run_id, ts, client_id, seq, data) = fields(&body);
        assert_eq!(
            (run_id.as_str(), client_id.as_str(), seq),
            (RUN_ID, CLIENT_ID, 42.0)
        );
        assert!((ts - 1_764_270_000.123_456).abs() < 1e-6);
        assert_eq!(STANDARD.decode(&data).map(|d| d.len()), Ok(5 * 1024));
        let expected_prefix = format!(
            r#"{{"info": {{"test_run_id": "{RUN_ID}", "ts": 1764270000.123456, "client_id": "{CLIENT_ID}", "seq": 42}}, "random_5KiB_data": ""#
        );
        assert!(body.starts_with(expected_prefix.as_bytes()));
        assert!(body.ends_with(b"\"}"));
    }

    #[test]
    fn json_length_is_the_seed_size() {
        // 6828 base64 chars for 5 KiB, 87 bytes of fixed JSON text, and the variable parts:
        // a 35-byte run id, a 23-byte client id, a 17-character timestamp, a 2-digit seq.
        let body = build_json(RUN_ID, CLIENT_ID, 5 * 1024);
        let fixed = [
            JSON_BEFORE_RUN_ID,
            JSON_BEFORE_TS,
            JSON_BEFORE_CLIENT_ID,
            JSON_BEFORE_SEQ,
            JSON_BEFORE_DATA,
            JSON_END,
        ];
        assert_eq!(fixed.iter().map(|part| part.len()).sum::<usize>(), 87);
        assert_eq!(RUN_ID.len() + CLIENT_ID.len() + 17 + 2, 77);
        assert_eq!(base64_len(5 * 1024), 6828);
        assert_eq!(body.len(), 6828 + 87 + 77);
        assert_eq!(body.len(), 6992);
        let builder = PayloadBuilder::new(&recipe(PayloadFormat::Json, RUN_ID, 5 * 1024), 7);
        assert!(builder.body_len_hint() >= body.len());
    }

    #[test]
    fn base64_is_exactly_the_random_bytes_for_every_tail() {
        for random_bytes in [0, 1, 2, 3, 4, 5, 99, 100, 101, 1024, 5 * 1024] {
            let mut builder =
                PayloadBuilder::new(&recipe(PayloadFormat::Json, "r", random_bytes), 1);
            let mut out = Vec::new();
            for seq in 0..50 {
                builder.build(0, "c", seq, 1.5, &mut out);
                let (.., data) = fields(&out);
                let decoded = STANDARD.decode(&data).expect("valid base64");
                assert_eq!(decoded.len(), random_bytes, "{random_bytes} bytes");
            }
        }
    }

    #[test]
    fn raw_body_is_the_header_then_exactly_the_random_bytes() {
        use crate::delivery::{RAW_HEADER_LEN, Reading, Stamp, StampReader};
        let reader = StampReader::new("r", json_head("r"));
        for random_bytes in [0, 1, 100, 5 * 1024, 100_000] {
            let mut builder =
                PayloadBuilder::new(&recipe(PayloadFormat::Raw, "r", random_bytes), 3);
            let mut out = vec![1, 2, 3];
            builder.build(41, "c", 9, 1_764_270_000.5, &mut out);
            assert_eq!(out.len(), RAW_HEADER_LEN + random_bytes);
            assert_eq!(builder.body_len_hint(), RAW_HEADER_LEN + random_bytes);
            assert_eq!(
                reader.read(&out),
                Reading::Ours(Stamp {
                    publisher: 41,
                    seq: 9,
                    due_unix_us: 1_764_270_000_500_000,
                })
            );
        }
    }

    #[test]
    fn base64_window_matches_the_raw_window() {
        // Same seed, same pool: the JSON's data must be the base64 of the raw body.
        let random_bytes = 1000;
        let mut json = PayloadBuilder::new(&recipe(PayloadFormat::Json, "r", random_bytes), 9);
        let mut raw = PayloadBuilder::new(&recipe(PayloadFormat::Raw, "r", random_bytes), 9);
        let (mut json_out, mut raw_out) = (Vec::new(), Vec::new());
        for seq in 0..100 {
            json.build(0, "c", seq, 0.0, &mut json_out);
            raw.build(0, "c", seq, 0.0, &mut raw_out);
            let (.., data) = fields(&json_out);
            assert_eq!(
                data,
                STANDARD.encode(&raw_out[crate::delivery::RAW_HEADER_LEN..])
            );
        }
    }

    #[test]
    fn consecutive_bodies_never_share_random_bytes() {
        for random_bytes in [3, 100, 5 * 1024, 40_000] {
            let mut builder =
                PayloadBuilder::new(&recipe(PayloadFormat::Raw, "r", random_bytes), 5);
            // Two full cycles, so the refill boundary is crossed.
            let cycles = 2 * builder.window_starts + 3;
            let mut starts = std::collections::HashSet::new();
            let mut previous_start = None;
            let (mut previous, mut out) = (Vec::new(), Vec::new());
            for seq in 0..cycles {
                let windows_left = builder.windows_left;
                let start = builder.next_start * 3;
                builder.build(0, "c", seq as u64, 0.0, &mut out);
                assert_ne!(out, previous, "{random_bytes} bytes, message {seq}");
                if windows_left > 0 {
                    if let Some(prev) = previous_start {
                        assert!(start.abs_diff(prev) >= random_bytes, "windows overlap");
                    }
                    if seq < builder.window_starts {
                        assert!(starts.insert(start), "a start repeats within a cycle");
                    }
                }
                previous_start = Some(start);
                std::mem::swap(&mut previous, &mut out);
            }
        }
    }

    #[test]
    fn build_does_not_reallocate_once_grown() {
        let mut builder = PayloadBuilder::new(&recipe(PayloadFormat::Json, RUN_ID, 5 * 1024), 1);
        let mut out = Vec::with_capacity(builder.body_len_hint());
        let (pointer, capacity) = (out.as_ptr(), out.capacity());
        for seq in 0..1000 {
            builder.build(0, CLIENT_ID, u64::MAX - seq, 4e9, &mut out);
        }
        assert_eq!((out.as_ptr(), out.capacity()), (pointer, capacity));
    }

    #[test]
    fn user_strings_are_escaped() {
        let run_id = "run \"1\" \\ tab\t nl\n bell\u{7} é \u{1F600}";
        let client_id = "c\"\\\u{0}\u{1f}";
        let body = build_json(run_id, client_id, 10);
        let (parsed_run_id, _, parsed_client_id, ..) = fields(&body);
        assert_eq!(parsed_run_id, run_id);
        assert_eq!(parsed_client_id, client_id);
        let text = String::from_utf8(body).expect("UTF-8");
        assert!(
            text.contains(r#"run \"1\" \\ tab\t nl\n bell\u0007 é 😀"#),
            "{text}"
        );
        assert!(text.contains(r#"c\"\\\u0000\u001f"#), "{text}");
    }

    #[test]
    fn timestamps_have_six_decimals() {
        let cases: &[(f64, &str)] = &[
            (1_764_270_000.123_456, "1764270000.123456"),
            (1_764_270_000.0, "1764270000.000000"),
            (0.000_000_4, "0.000000"),
            (0.999_999_7, "1.000000"),
            (12.05, "12.050000"),
            (-3.0, "0.000000"),
            (f64::NAN, "0.000000"),
        ];
        for &(ts, expected) in cases {
            let mut out = Vec::new();
            push_timestamp(ts, &mut out);
            assert_eq!(String::from_utf8(out).as_deref(), Ok(expected), "{ts}");
        }
        let mut out = Vec::new();
        push_u64(u64::MAX, &mut out);
        push_u64(0, &mut out);
        assert_eq!(out, b"184467440737095516150");
    }

    #[test]
    fn same_seed_same_bodies_different_seed_different_bodies() {
        let recipe = recipe(PayloadFormat::Raw, "r", 64);
        let (mut a, mut b, mut c) = (
            PayloadBuilder::new(&recipe, 1),
            PayloadBuilder::new(&recipe, 1),
            PayloadBuilder::new(&recipe, 2),
        );
        let (mut out_a, mut out_b, mut out_c) = (Vec::new(), Vec::new(), Vec::new());
        a.build(0, "c", 0, 0.0, &mut out_a);
        b.build(0, "c", 0, 0.0, &mut out_b);
        c.build(0, "c", 0, 0.0, &mut out_c);
        assert_eq!(out_a, out_b);
        assert_ne!(out_a, out_c);
    }
}
