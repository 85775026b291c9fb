//! Delivery checking for subscribers: reads a message's stamp (publisher, seq, due time) from
//! its payload and tracks, per subscriber and publisher, duplicates, reordering and what was
//! seen, in bounded memory. Loss is computed at the end from what publishers sent.
//!
//! Stamps: the JSON body's `info` object (`test_run_id`, `ts` = due time, `client_id`, `seq`),
//! and for `raw` bodies a 32-byte header before the random bytes ([`RAW_HEADER_LEN`]):
//! `MQL1`, a 32-bit tag of the run id, the publisher's user index, the seq and the due time in
//! unix nanoseconds (all big-endian). Neither needs an allocation to read.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

pub use crate::mqtt::topic::matches as topic_matches;
use crate::mqtt::topic::shared_parts;
use crate::stats::DeliveryCounts;

/// Bytes the raw header adds before `--payload-bytes` random bytes.
pub const RAW_HEADER_LEN: usize = 32;
/// First bytes of a raw header (format version 1).
const RAW_MAGIC: &[u8; 4] = b"MQL1";
/// Sequence numbers remembered per publisher and subscriber: anything older than the newest
/// minus this is "stale" (cannot tell a late message from a duplicate) and counts as lost.
pub const WINDOW: u64 = 1024;
const WINDOW_WORDS: usize = (WINDOW / 64) as usize;
/// Publishers a subscriber tracks at least (more when the run has more users): room for the
/// publishers of another process sharing the run id. About 150 bytes each.
pub const MIN_TRACKED_PUBLISHERS: usize = 10_000;
/// Payload bytes a subscriber needs to read a stamp (JSON: run id and client id included).
pub const STAMP_HEAD_LEN: usize = 512;

/// Copies of a message on `topic` that `subscribers` subscribers of `filter` should get:
/// one each, or for a shared subscription (`$share/GROUP/FILTER`, every subscriber in the
/// one group) a single copy, delivered when any member got it.
pub fn expected_copies(filter: &str, topic: &str, subscribers: u64) -> u64 {
    match shared_parts(filter) {
        Some((_group, inner)) if topic_matches(inner, topic) => subscribers.min(1),
        Some(_) => 0,
        None if topic_matches(filter, topic) => subscribers,
        None => 0,
    }
}

/// Who sent a message, which one, and when it was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Publisher identity: the user index (raw) or a 64-bit hash of the client id (JSON).
    pub publisher: u64,
    /// The publisher's message number, from 0.
    pub seq: u64,
    /// Due time by the publisher's plan, unix microseconds.
    pub due_unix_us: u64,
}

/// What a payload turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A message of this run.
    Ours(Stamp),
    /// Well-formed, but from another run (another mqload, another run id).
    Foreign,
    /// Not a stamp mqload writes (another publisher on the topic, or a mangled payload).
    Unparseable,
}

/// A 32-bit tag of a run id (FNV-1a), carried by raw headers.
pub fn run_tag(run_id: &str) -> u32 {
    let hash = fnv1a(run_id.as_bytes());
    (hash ^ (hash >> 32)) as u32
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Appends the raw header for message `seq` of user `user`, due at `due_unix_ns`.
pub fn push_raw_header(tag: u32, user: u64, seq: u64, due_unix_ns: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(RAW_MAGIC);
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&user.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&due_unix_ns.to_be_bytes());
}

/// Reads stamps of one run's payloads.
#[derive(Debug, Clone)]
pub struct StampReader {
    tag: u32,
    /// `{"info": {"test_run_id": "<escaped run id>", "ts": `, as the payload builder writes it.
    json_head: Vec<u8>,
}

impl StampReader {
    /// A reader for run `run_id`; `json_head` is the JSON body's fixed start up to `ts`'s value.
    pub fn new(run_id: &str, json_head: Vec<u8>) -> StampReader {
        StampReader {
            tag: run_tag(run_id),
            json_head,
        }
    }

    /// Reads the stamp at the start of `payload` (its first [`STAMP_HEAD_LEN`] bytes suffice).
    pub fn read(&self, payload: &[u8]) -> Reading {
        if let Some(header) = payload.strip_prefix(RAW_MAGIC) {
            return self.read_raw(header);
        }
        if payload.starts_with(&self.json_head) {
            return read_json_info(&payload[self.json_head.len()..])
                .map_or(Reading::Unparseable, Reading::Ours);
        }
        match payload.strip_prefix(br#"{"info": {"test_run_id": ""#.as_slice()) {
            Some(rest) if rest.contains(&b'"') => Reading::Foreign,
            _ => Reading::Unparseable,
        }
    }

    fn read_raw(&self, header: &[u8]) -> Reading {
        let Some(fields) = header.get(..RAW_HEADER_LEN - RAW_MAGIC.len()) else {
            return Reading::Unparseable;
        };
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&fields[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        let mut tag = [0u8; 4];
        tag.copy_from_slice(&fields[..4]);
        if u32::from_be_bytes(tag) != self.tag {
            return Reading::Foreign;
        }
        Reading::Ours(Stamp {
            publisher: word(4),
            seq: word(12),
            due_unix_us: word(20) / 1_000,
        })
    }
}

/// Parses `<secs>.<6 digits>, "client_id": "<id>", "seq": <n>}` (the rest of `info`).
fn read_json_info(text: &[u8]) -> Option<Stamp> {
    let (secs, rest) = read_digits(text)?;
    let rest = rest.strip_prefix(b".")?;
    let (micros, after) = read_digits(rest)?;
    if rest.len() - after.len() != 6 {
        return None;
    }
    let rest = after.strip_prefix(br#", "client_id": ""#.as_slice())?;
    let end = closing_quote(rest)?;
    let publisher = fnv1a(&rest[..end]);
    let rest = rest[end + 1..].strip_prefix(br#", "seq": "#.as_slice())?;
    let (seq, rest) = read_digits(rest)?;
    rest.strip_prefix(b"}")?;
    Some(Stamp {
        publisher,
        seq,
        due_unix_us: secs.checked_mul(1_000_000)?.checked_add(micros)?,
    })
}

/// A decimal u64 (1 to 20 digits, no overflow) and what follows it.
fn read_digits(text: &[u8]) -> Option<(u64, &[u8])> {
    let len = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 20 {
        return None;
    }
    let mut value = 0u64;
    for &b in &text[..len] {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((value, &text[len..]))
}

/// Index of the quote that ends a JSON string (escaped quotes skipped).
fn closing_quote(text: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Hashes u64 keys that are already well spread (user indexes, FNV hashes) with one multiply.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

/// The last [`WINDOW`] sequence numbers of one publisher, as one subscriber saw them.
#[derive(Debug, Clone)]
struct Window {
    /// Lowest seq still remembered.
    base: u64,
    /// Highest seq seen.
    highest: u64,
    /// Bit `seq % WINDOW` is set when `seq` (in `base..base + WINDOW`) arrived.
    seen: [u64; WINDOW_WORDS],
}

/// What one message was, for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First copy, in order.
    New,
    /// First copy, but a higher seq of that publisher arrived before it.
    Reordered,
    /// A copy already seen.
    Duplicate,
    /// Older than the window: cannot tell late from duplicate; not counted as delivered.
    Stale,
    /// A publisher beyond the tracking limit: counted as received, not checked.
    Untracked,
}

/// One subscriber's view of every publisher (kept across its reconnects).
#[derive(Debug)]
pub struct SubscriberTracker {
    windows: HashMap<u64, Window, BuildHasherDefault<KeyHasher>>,
    max_publishers: usize,
}

impl SubscriberTracker {
    /// Tracks at most `max_publishers` publishers (about 150 bytes each).
    pub fn new(max_publishers: usize) -> SubscriberTracker {
        SubscriberTracker {
            windows: HashMap::default(),
            max_publishers,
        }
    }

    /// Judges one message and counts it in `counts`.
    pub fn observe(&mut self, stamp: Stamp, counts: &mut DeliveryCounts) -> Verdict {
        let verdict = self.judge(stamp);
        counts.received += 1;
        match verdict {
            Verdict::New => {}
            Verdict::Reordered => counts.reordered += 1,
            Verdict::Duplicate => counts.duplicates += 1,
            Verdict::Stale => counts.stale += 1,
            Verdict::Untracked => counts.untracked += 1,
        }
        verdict
    }

    fn judge(&mut self, stamp: Stamp) -> Verdict {
        let seq = stamp.seq;
        let full = self.windows.len() >= self.max_publishers;
        let window = match self.windows.entry(stamp.publisher) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(_) if full => return Verdict::Untracked,
            Entry::Vacant(entry) => {
                let mut seen = [0; WINDOW_WORDS];
                set_bit(&mut seen, seq);
                let window = Window {
                    base: seq.saturating_sub(WINDOW - 1),
                    highest: seq,
                    seen,
                };
                entry.insert(window);
                return Verdict::New;
            }
        };
        if seq < window.base {
            return Verdict::Stale;
        }
        if seq >= window.base + WINDOW {
            // Slide: forget (clear) everything that falls below the new base.
            let new_base = seq - (WINDOW - 1);
            if new_base - window.base >= WINDOW {
                window.seen = [0; WINDOW_WORDS];
            } else {
                for old in window.base..new_base {
                    clear_bit(&mut window.seen, old);
                }
            }
            window.base = new_base;
        }
        if test_bit(&window.seen, seq) {
            return Verdict::Duplicate;
        }
        set_bit(&mut window.seen, seq);
        if seq < window.highest {
            Verdict::Reordered
        } else {
            window.highest = seq;
            Verdict::New
        }
    }

    /// Publishers seen so far.
    pub fn publishers(&self) -> usize {
        self.windows.len()
    }
}

fn bit(seq: u64) -> (usize, u64) {
    let index = (seq % WINDOW) as usize;
    (index / 64, 1 << (index % 64))
}

fn set_bit(seen: &mut [u64; WINDOW_WORDS], seq: u64) {
    let (word, mask) = bit(seq);
    seen[word] |= mask;
}

fn clear_bit(seen: &mut [u64; WINDOW_WORDS], seq: u64) {
    let (word, mask) = bit(seq);
    seen[word] &= !mask;
}

fn test_bit(seen: &[u64; WINDOW_WORDS], seq: u64) -> bool {
    let (word, mask) = bit(seq);
    seen[word] & mask != 0
}

#[cfg(test)]
mod tests;
