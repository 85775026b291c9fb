//! A cursor over one packet's body: reads MQTT fields and never reads past the packet.

use super::DecodeError;
use super::QoS;

/// Reads fields from the front of a packet body; every read names its field for errors.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over exactly one packet's variable header and payload.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Reader { rest: body }
    }

    /// True when every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.rest.split_at_checked(n) {
            Some((taken, rest)) => {
                self.rest = rest;
                Ok(taken)
            }
            None => Err(DecodeError::UnexpectedEnd(what)),
        }
    }

    /// Takes everything left (a PUBLISH payload, a will's tail).
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match self.rest.split_first() {
            Some((&byte, rest)) => {
                self.rest = rest;
                Ok(byte)
            }
            None => Err(DecodeError::UnexpectedEnd(what)),
        }
    }

    /// Reads a big-endian u16.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        match self.rest.split_first_chunk::<2>() {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(u16::from_be_bytes(*bytes))
            }
            None => Err(DecodeError::UnexpectedEnd(what)),
        }
    }

    /// Reads a big-endian u32 (MQTT 5 four-byte integer).
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        match self.rest.split_first_chunk::<4>() {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(u32::from_be_bytes(*bytes))
            }
            None => Err(DecodeError::UnexpectedEnd(what)),
        }
    }

    /// Reads a variable byte integer (one to four bytes, seven bits each; MQTT 5 1.5.5).
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for index in 0..4 {
            let byte = self.u8(what)?;
            value |= u32::from(byte & 0x7F) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVariableInteger(what))
    }

    /// Reads a packet identifier, which MQTT requires to be non-zero.
    pub(crate) fn packet_id(&mut self) -> Result<u16, DecodeError> {
        match self.u16("packet identifier")? {
            0 => Err(DecodeError::ZeroPacketId),
            id => Ok(id),
        }
    }

    /// Reads a length-prefixed binary field.
    pub(crate) fn binary(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// Reads a length-prefixed UTF-8 string (MQTT forbids U+0000 in it).
    pub(crate) fn string(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.binary(what)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        if bytes.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        Ok(text)
    }

    /// Reads a QoS byte whose other bits are reserved (SUBSCRIBE's requested QoS).
    pub(crate) fn qos(&mut self, what: &'static str) -> Result<QoS, DecodeError> {
        let byte = self.u8(what)?;
        QoS::from_u8(byte).ok_or(DecodeError::InvalidQoS(byte))
    }

    /// Succeeds when the packet had no bytes beyond its last field.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order() {
        let mut r = Reader::new(&[0x00, 0x02, b'h', b'i', 0x12, 0x34, 0x01, 9]);
        assert_eq!(r.string("s"), Ok("hi"));
        assert_eq!(r.u16("n"), Ok(0x1234));
        assert_eq!(r.qos("q"), Ok(QoS::AtLeastOnce));
        assert_eq!(r.take_rest(), &[9]);
        assert!(r.is_empty());
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn short_fields_are_errors_not_panics() {
        assert_eq!(
            Reader::new(&[0x00, 0x05, b'a']).string("topic"),
            Err(DecodeError::UnexpectedEnd("topic"))
        );
        assert_eq!(
            Reader::new(&[0x01]).u16("id"),
            Err(DecodeError::UnexpectedEnd("id"))
        );
        assert_eq!(
            Reader::new(&[]).u8("b"),
            Err(DecodeError::UnexpectedEnd("b"))
        );
        assert_eq!(
            Reader::new(&[1, 2]).finish(),
            Err(DecodeError::TrailingBytes(2))
        );
    }

    #[test]
    fn strings_must_be_utf8_without_nul() {
        assert_eq!(
            Reader::new(&[0x00, 0x01, 0xFF]).string("s"),
            Err(DecodeError::InvalidUtf8)
        );
        // An encoded UTF-16 surrogate (U+D800) is not valid UTF-8.
        assert_eq!(
            Reader::new(&[0x00, 0x03, 0xED, 0xA0, 0x80]).string("s"),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            Reader::new(&[0x00, 0x02, b'a', 0]).string("s"),
            Err(DecodeError::NullCharacter)
        );
        assert_eq!(
            Reader::new(&[0x00, 0x00]).packet_id(),
            Err(DecodeError::ZeroPacketId)
        );
        assert_eq!(Reader::new(&[3]).qos("q"), Err(DecodeError::InvalidQoS(3)));
    }

    #[test]
    fn varints_and_four_byte_integers() {
        assert_eq!(Reader::new(&[0x7F]).varint("v"), Ok(127));
        assert_eq!(Reader::new(&[0x80, 0x01]).varint("v"), Ok(128));
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0x7F]).varint("v"),
            Ok(268_435_455)
        );
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]).varint("v"),
            Err(DecodeError::MalformedVariableInteger("v"))
        );
        assert_eq!(
            Reader::new(&[0x80]).varint("v"),
            Err(DecodeError::UnexpectedEnd("v"))
        );
        assert_eq!(Reader::new(&[0, 0, 1, 2]).u32("n"), Ok(258));
        assert_eq!(
            Reader::new(&[0, 0, 1]).u32("n"),
            Err(DecodeError::UnexpectedEnd("n"))
        );
    }
}
