//! A minimal MessagePack encoder and a bounded decoder for Locust's wire messages.
//!
//! Only what Locust's messages use: nil, booleans, integers, floats, str, bin, arrays and
//! maps (no extension types). Strings are always encoded as msgpack str, never bin, because
//! the master decodes with `raw=False` and compares them with Python strings. Decoding
//! treats its input as untrusted: nesting depth and element counts are bounded, and every
//! length is checked against the bytes actually present before anything is allocated.

use std::fmt;

/// Deepest nesting the decoder follows (Locust's messages nest three or four levels).
pub const MAX_DEPTH: usize = 32;

/// A decoded MessagePack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// nil (Python `None`).
    Nil,
    /// true or false.
    Bool(bool),
    /// Any integer that fits in an i64.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// float 32 or 64.
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// Raw bytes.
    Bin(Vec<u8>),
    /// A sequence.
    Array(Vec<Value>),
    /// Key/value pairs in wire order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The text, when this is a str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as f64, when this is an integer or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::UInt(u) => Some(u as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The number as a non-negative integer, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// The value stored under the str key `key`, when this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why bytes are not one well-formed MessagePack value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgpackError {
    /// The input ends inside a value.
    Truncated,
    /// A type byte MessagePack reserves or mqload does not accept (0xc1, extensions).
    Unsupported(u8),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A str that is not UTF-8.
    BadUtf8,
    /// Bytes left over after the value.
    TrailingBytes(usize),
}

impl fmt::Display for MsgpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsgpackError::Truncated => f.write_str("msgpack value is truncated"),
            MsgpackError::Unsupported(b) => write!(f, "unsupported msgpack type byte 0x{b:02x}"),
            MsgpackError::TooDeep => write!(f, "msgpack nesting deeper than {MAX_DEPTH}"),
            MsgpackError::BadUtf8 => f.write_str("msgpack str is not UTF-8"),
            MsgpackError::TrailingBytes(n) => write!(f, "{n} bytes after the msgpack value"),
        }
    }
}

impl std::error::Error for MsgpackError {}

/// Decodes exactly one value from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, MsgpackError> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    match bytes.len() - reader.pos {
        0 => Ok(value),
        n => Err(MsgpackError::TrailingBytes(n)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        let end = self.pos.checked_add(n).ok_or(MsgpackError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(MsgpackError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn be(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A count of elements: each needs at least one byte, so more than remain is a lie.
    fn count(&mut self, n: usize, per_element: usize) -> Result<usize, MsgpackError> {
        let count = usize::try_from(self.be(n)?).map_err(|_| MsgpackError::Truncated)?;
        let left = self.bytes.len() - self.pos;
        if count.saturating_mul(per_element) > left {
            return Err(MsgpackError::Truncated);
        }
        Ok(count)
    }

    fn value(&mut self, depth: usize) -> Result<Value, MsgpackError> {
        if depth > MAX_DEPTH {
            return Err(MsgpackError::TooDeep);
        }
        let tag = self.take(1)?[0];
        Ok(match tag {
            0x00..=0x7f => Value::Int(i64::from(tag)),
            0xe0..=0xff => Value::Int(i64::from(tag as i8)),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::Int(self.be(1)? as i64),
            0xcd => Value::Int(self.be(2)? as i64),
            0xce => Value::Int(self.be(4)? as i64),
            0xcf => {
                let u = self.be(8)?;
                i64::try_from(u).map_or(Value::UInt(u), Value::Int)
            }
            0xd0 => Value::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Value::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Value::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Value::Int(self.be(8)? as i64),
            0xca => Value::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.be(8)?)),
            0xa0..=0xbf => self.str(usize::from(tag & 0x1f))?,
            0xd9 => self.str_len(1)?,
            0xda => self.str_len(2)?,
            0xdb => self.str_len(4)?,
            0xc4..=0xc6 => {
                let n = self.count(1 << (tag - 0xc4), 1)?;
                Value::Bin(self.take(n)?.to_vec())
            }
            0x90..=0x9f => self.array(usize::from(tag & 0x0f), depth)?,
            0xdc => {
                let n = self.count(2, 1)?;
                self.array(n, depth)?
            }
            0xdd => {
                let n = self.count(4, 1)?;
                self.array(n, depth)?
            }
            0x80..=0x8f => self.map(usize::from(tag & 0x0f), depth)?,
            0xde => {
                let n = self.count(2, 2)?;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.count(4, 2)?;
                self.map(n, depth)?
            }
            other => return Err(MsgpackError::Unsupported(other)),
        })
    }

    fn str_len(&mut self, n: usize) -> Result<Value, MsgpackError> {
        let len = self.count(n, 1)?;
        self.str(len)
    }

    fn str(&mut self, len: usize) -> Result<Value, MsgpackError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(|s| Value::Str(s.to_owned()))
            .map_err(|_| MsgpackError::BadUtf8)
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, MsgpackError> {
        if n > self.bytes.len() - self.pos {
            return Err(MsgpackError::Truncated);
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, MsgpackError> {
        if n.saturating_mul(2) > self.bytes.len() - self.pos {
            return Err(MsgpackError::Truncated);
        }
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            pairs.push((key, value));
        }
        Ok(Value::Map(pairs))
    }
}

/// Appends MessagePack to a buffer; the caller writes a container's header, then its items.
#[derive(Debug, Default)]
pub struct Encoder {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// nil.
    pub fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    /// A boolean.
    pub fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xc3 } else { 0xc2 });
    }

    /// A signed integer in its shortest form.
    pub fn int(&mut self, i: i64) {
        if i >= 0 {
            self.uint(i as u64);
        } else if i >= -32 {
            self.buf.push(i as i8 as u8);
        } else if i >= i64::from(i8::MIN) {
            self.buf.extend_from_slice(&[0xd0, i as i8 as u8]);
        } else if i >= i64::from(i16::MIN) {
            self.buf.push(0xd1);
            self.buf.extend_from_slice(&(i as i16).to_be_bytes());
        } else if i >= i64::from(i32::MIN) {
            self.buf.push(0xd2);
            self.buf.extend_from_slice(&(i as i32).to_be_bytes());
        } else {
            self.buf.push(0xd3);
            self.buf.extend_from_slice(&i.to_be_bytes());
        }
    }

    /// An unsigned integer in its shortest form.
    pub fn uint(&mut self, u: u64) {
        if u < 0x80 {
            self.buf.push(u as u8);
        } else if u <= u64::from(u8::MAX) {
            self.buf.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= u64::from(u16::MAX) {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= u64::from(u32::MAX) {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&u.to_be_bytes());
        }
    }

    /// A float 64.
    pub fn float(&mut self, f: f64) {
        self.buf.push(0xcb);
        self.buf.extend_from_slice(&f.to_bits().to_be_bytes());
    }

    /// A str (never bin: the master compares these with Python strings).
    pub fn str(&mut self, s: &str) {
        let n = s.len();
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n <= usize::from(u8::MAX) {
            self.buf.extend_from_slice(&[0xd9, n as u8]);
        } else if n <= usize::from(u16::MAX) {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf
                .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
        }
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// The header of an array of `n` items.
    pub fn array(&mut self, n: usize) {
        self.header(n, 0x90, 0xdc);
    }

    /// The header of a map of `n` pairs.
    pub fn map(&mut self, n: usize) {
        self.header(n, 0x80, 0xde);
    }

    fn header(&mut self, n: usize, fix: u8, wide16: u8) {
        if n < 16 {
            self.buf.push(fix | n as u8);
        } else if n <= usize::from(u16::MAX) {
            self.buf.push(wide16);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(wide16 + 1);
            self.buf
                .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
        }
    }

    /// Any decoded value, as it was (used by tests and to echo the master's maps).
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Nil => self.nil(),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::UInt(u) => self.uint(*u),
            Value::Float(f) => self.float(*f),
            Value::Str(s) => self.str(s),
            Value::Bin(b) => {
                let n = b.len();
                if n <= usize::from(u8::MAX) {
                    self.buf.extend_from_slice(&[0xc4, n as u8]);
                } else if n <= usize::from(u16::MAX) {
                    self.buf.push(0xc5);
                    self.buf.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    self.buf.push(0xc6);
                    self.buf
                        .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
                }
                self.buf.extend_from_slice(b);
            }
            Value::Array(items) => {
                self.array(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Map(pairs) => {
                self.map(pairs.len());
                for (k, v) in pairs {
                    self.value(k);
                    self.value(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let mut e = Encoder::new();
        e.value(&v);
        assert_eq!(decode(&e.buf), Ok(v));
    }

    #[test]
    fn every_kind_round_trips_at_every_width() {
        for i in [
            0,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as i64,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32_768,
            -32_769,
            i32::MIN as i64,
            i64::MIN,
        ] {
            roundtrip(Value::Int(i));
        }
        roundtrip(Value::UInt(u64::MAX));
        roundtrip(Value::Float(1.5e300));
        roundtrip(Value::Nil);
        roundtrip(Value::Bool(true));
        for n in [0, 31, 32, 255, 256, 70_000] {
            roundtrip(Value::Str("x".repeat(n)));
            roundtrip(Value::Bin(vec![7; n]));
        }
        for n in [0, 15, 16, 70_000] {
            roundtrip(Value::Array(vec![Value::Nil; n]));
            roundtrip(Value::Map(vec![(Value::Int(1), Value::Nil); n]));
        }
    }

    #[test]
    fn known_bytes_from_the_spec() {
        let mut e = Encoder::new();
        e.array(3);
        e.str("ack");
        e.map(1);
        e.str("index");
        e.int(0);
        e.str("n");
        assert_eq!(
            e.buf,
            b"\x93\xa3ack\x81\xa5index\x00\xa1n".to_vec(),
            "fixarray, fixstr, fixmap"
        );
        assert_eq!(
            decode(b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
            Ok(Value::Float(1.5))
        );
        assert_eq!(decode(b"\xca\x3f\xc0\x00\x00"), Ok(Value::Float(1.5)));
        assert_eq!(decode(b"\xd0\x80"), Ok(Value::Int(-128)));
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic_or_a_huge_allocation() {
        assert_eq!(decode(b""), Err(MsgpackError::Truncated));
        assert_eq!(
            decode(b"\xdd\xff\xff\xff\xff"),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            decode(b"\xdf\xff\xff\xff\xff\x00"),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            decode(b"\xdb\xff\xff\xff\xff"),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            decode(b"\xc6\xff\xff\xff\xff"),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(decode(b"\xc1"), Err(MsgpackError::Unsupported(0xc1)));
        assert_eq!(
            decode(b"\xd4\x01\x02"),
            Err(MsgpackError::Unsupported(0xd4))
        );
        assert_eq!(decode(b"\xa2\xff\xfe"), Err(MsgpackError::BadUtf8));
        assert_eq!(decode(b"\xc0\xc0"), Err(MsgpackError::TrailingBytes(1)));
        let deep = vec![0x91u8; 100];
        assert_eq!(decode(&deep), Err(MsgpackError::TooDeep));
        // Every prefix of a valid message fails cleanly.
        let mut e = Encoder::new();
        e.value(&Value::Map(vec![(
            Value::Str("k".repeat(40)),
            Value::Array(vec![Value::Float(1.0), Value::Int(-70_000)]),
        )]));
        for cut in 0..e.buf.len() {
            assert!(decode(&e.buf[..cut]).is_err(), "prefix {cut}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let n = rng.random_range(0..64);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = decode(&bytes);
        }
    }
}
