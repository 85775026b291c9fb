//! Wire constants and rules shared by the encoder and the decoder: packet type numbers,
//! the remaining-length varint, and topic name/filter validity.

pub(crate) const CONNECT: u8 = 1;
pub(crate) const CONNACK: u8 = 2;
pub(crate) const PUBLISH: u8 = 3;
pub(crate) const PUBACK: u8 = 4;
pub(crate) const PUBREC: u8 = 5;
pub(crate) const PUBREL: u8 = 6;
pub(crate) const PUBCOMP: u8 = 7;
pub(crate) const SUBSCRIBE: u8 = 8;
pub(crate) const SUBACK: u8 = 9;
pub(crate) const UNSUBSCRIBE: u8 = 10;
pub(crate) const UNSUBACK: u8 = 11;
pub(crate) const PINGREQ: u8 = 12;
pub(crate) const PINGRESP: u8 = 13;
pub(crate) const DISCONNECT: u8 = 14;
/// MQTT 5 only: enhanced authentication exchange.
pub(crate) const AUTH: u8 = 15;

/// Largest remaining length four varint bytes can carry (MQTT 3.1.1 section 2.2.3).
pub(crate) const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Largest string or binary field (two-byte length prefix).
pub(crate) const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// The protocol name CONNECT carries.
pub(crate) const PROTOCOL_NAME: &[u8] = b"MQTT";

/// The protocol level of MQTT 3.1.1.
pub(crate) const PROTOCOL_LEVEL: u8 = 4;

/// The protocol level of MQTT 5.
pub(crate) const PROTOCOL_LEVEL_V5: u8 = 5;

/// SUBACK's failure return code.
pub(crate) const SUBACK_FAILURE: u8 = 0x80;

/// Flags the fixed header of PUBREL, SUBSCRIBE and UNSUBSCRIBE must carry.
pub(crate) const FLAGS_0010: u8 = 0b0010;

/// The fixed-header flags a packet type requires, `None` for PUBLISH (flags carry data).
pub(crate) fn required_flags(packet_type: u8) -> Option<u8> {
    match packet_type {
        PUBLISH => None,
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => Some(FLAGS_0010),
        _ => Some(0),
    }
}

/// The remaining length a fixed-size packet type must announce.
pub(crate) fn fixed_remaining_length(packet_type: u8) -> Option<usize> {
    match packet_type {
        CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | UNSUBACK => Some(2),
        PINGREQ | PINGRESP | DISCONNECT => Some(0),
        _ => None,
    }
}

/// Bytes the remaining-length varint takes for `len` (1 to 4; 5 means "too large").
pub(crate) const fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=MAX_REMAINING_LENGTH => 4,
        _ => 5,
    }
}

/// Appends `len` as the remaining-length varint; the caller has checked it is encodable.
pub(crate) fn put_remaining_length(mut len: usize, out: &mut Vec<u8>) {
    debug_assert!(len <= MAX_REMAINING_LENGTH);
    loop {
        let low = (len % 128) as u8;
        len /= 128;
        if len == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A topic name a PUBLISH may carry: non-empty, no wildcard characters.
pub(crate) fn is_valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.bytes().any(|b| b == b'+' || b == b'#')
}

/// A topic filter: non-empty; `+` fills a whole level; `#` fills the last level alone.
pub(crate) fn is_valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        let wildcard_misused = match level {
            "#" => !is_last,
            "+" => false,
            _ => level.contains(['+', '#']),
        };
        if wildcard_misused {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_remaining_length(len, &mut out);
        out
    }

    #[test]
    fn remaining_length_matches_the_spec_table() {
        // MQTT 3.1.1 table 2.4: the boundaries of each byte count.
        let table: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(len, bytes) in table {
            assert_eq!(varint(len), bytes, "length {len}");
            assert_eq!(remaining_length_len(len), bytes.len(), "length {len}");
        }
        assert_eq!(remaining_length_len(MAX_REMAINING_LENGTH + 1), 5);
    }

    #[test]
    fn topic_names_reject_wildcards_and_empty() {
        assert!(is_valid_topic_name("a/b"));
        assert!(is_valid_topic_name("/"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name("a/+"));
        assert!(!is_valid_topic_name("a/#"));
    }

    #[test]
    fn topic_filters_follow_wildcard_rules() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/b/+",
            "a//b",
            "/",
            "+/#",
            "sport/tennis/player1",
        ] {
            assert!(is_valid_topic_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "a/b+", "#/a", "##"] {
            assert!(!is_valid_topic_filter(bad), "{bad}");
        }
    }
}
