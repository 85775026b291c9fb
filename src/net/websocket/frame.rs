//! RFC 6455 framing for MQTT over WebSocket, sans-IO: frames out (masked by a client), and a
//! streaming decoder that turns binary frames into one MQTT byte stream and reports control
//! frames. It never buffers a whole data frame, never panics on garbage, and bounds sizes.

use std::fmt;

/// The longest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// The longest frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// A frame's kind (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// The next piece of a fragmented message.
    Continuation = 0x0,
    /// UTF-8 text; MQTT never uses it.
    Text = 0x1,
    /// Binary data: MQTT's bytes.
    Binary = 0x2,
    /// The peer is closing.
    Close = 0x8,
    /// Asks for a pong with the same payload.
    Ping = 0x9,
    /// Answers a ping.
    Pong = 0xA,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Appends one frame to `out`. A client passes a fresh `mask` for every frame (RFC 6455
/// §5.3); a server passes `None`. A control frame's payload is cut to
/// [`MAX_CONTROL_PAYLOAD`] bytes, which is all a peer may send in a ping.
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let payload = if opcode.is_control() {
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)]
    } else {
        payload
    };
    out.reserve(MAX_HEADER + payload.len());
    out.push(u8::from(fin) << 7 | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], mask, 0);
        }
        None => out.extend_from_slice(payload),
    }
}

/// One binary frame holding `payload` (MQTT bytes), as a client sends it.
pub fn encode_binary(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    encode_frame(out, true, Opcode::Binary, payload, Some(mask));
}

/// The pong answering a ping whose payload was `ping_payload`, as a client sends it.
pub fn encode_pong(out: &mut Vec<u8>, ping_payload: &[u8], mask: [u8; 4]) {
    encode_frame(out, true, Opcode::Pong, ping_payload, Some(mask));
}

/// A close frame with `code` (1000 is a normal close), as a client sends it.
pub fn encode_close(out: &mut Vec<u8>, code: u16, mask: [u8; 4]) {
    encode_frame(out, true, Opcode::Close, &code.to_be_bytes(), Some(mask));
}

/// XORs `bytes` with `mask`, `offset` bytes into the frame's payload: four bytes at a time
/// (a 32-bit word the compiler can widen), as this runs over every payload byte.
fn apply_mask(bytes: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut aligned = mask;
    aligned.rotate_left(offset % 4);
    let word = u32::from_ne_bytes(aligned);
    let mut chunks = bytes.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let mut four = [0u8; 4];
        four.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u32::from_ne_bytes(four) ^ word).to_ne_bytes());
    }
    for (byte, m) in chunks.into_remainder().iter_mut().zip(aligned) {
        *byte ^= m;
    }
}

/// A frame the peer should not have sent. The connection is then broken: close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// RSV bits set: an extension that was never negotiated.
    ReservedBitsSet,
    /// An opcode RFC 6455 does not define.
    UnknownOpcode(u8),
    /// A text frame: MQTT over WebSocket carries binary frames only.
    TextFrame,
    /// A server's frame was masked, or a client's was not.
    WrongMasking,
    /// A control frame fragmented or longer than 125 bytes.
    BadControlFrame,
    /// A length not in its shortest form, or a 64-bit length with its top bit set.
    BadLength,
    /// A frame longer than the decoder's limit.
    FrameTooLarge {
        /// The frame's payload length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A continuation frame with no fragmented message open.
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is still open.
    InterleavedMessage,
    /// A close frame whose payload is one byte, a reserved code, or a reason not in UTF-8.
    BadClosePayload,
    /// Bytes after the peer's close frame.
    DataAfterClose,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedBitsSet => f.write_str("WebSocket frame with reserved bits set"),
            FrameError::UnknownOpcode(op) => {
                write!(f, "WebSocket frame with unknown opcode {op:#x}")
            }
            FrameError::TextFrame => f.write_str("WebSocket text frame where MQTT needs binary"),
            FrameError::WrongMasking => f.write_str("WebSocket frame masked the wrong way"),
            FrameError::BadControlFrame => {
                f.write_str("WebSocket control frame fragmented or over 125 bytes")
            }
            FrameError::BadLength => f.write_str("WebSocket frame length not in shortest form"),
            FrameError::FrameTooLarge { len, max } => {
                write!(f, "WebSocket frame of {len} bytes, over the limit of {max}")
            }
            FrameError::UnexpectedContinuation => {
                f.write_str("WebSocket continuation frame with no message open")
            }
            FrameError::InterleavedMessage => {
                f.write_str("WebSocket data frame inside an unfinished message")
            }
            FrameError::BadClosePayload => f.write_str("WebSocket close frame malformed"),
            FrameError::DataAfterClose => f.write_str("WebSocket data after a close frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A control frame the decoder met; the caller acts on it, then decodes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Answer with [`encode_pong`] over [`FrameDecoder::control_payload`].
    Ping,
    /// An answer to a ping (or an unasked heartbeat): nothing to do.
    Pong,
    /// The peer is closing; `code` is its status code, when it gave one.
    Close {
        /// The status code (1000: normal).
        code: Option<u16>,
    },
}

/// What one [`FrameDecoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used; call again with the rest.
    pub consumed: usize,
    /// A control frame that ended at `consumed`, if any.
    pub control: Option<Control>,
}

/// Which side's frames the decoder reads: the two sides mask differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramesFrom {
    /// A server's frames, never masked (a client decodes these).
    Server,
    /// A client's frames, always masked (a server decodes these).
    Client,
}

/// Where the decoder is inside the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting header bytes in `header`.
    Header,
    /// Reading `remaining` payload bytes of the current frame.
    Payload,
    /// The peer closed; nothing more may arrive.
    Closed,
}

/// The streaming decoder: data frames' payloads go straight into the caller's buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    from: FramesFrom,
    max_frame: u64,
    state: State,
    header: [u8; MAX_HEADER],
    header_len: usize,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    payload_read: usize,
    remaining: u64,
    message_open: bool,
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: usize,
}

impl FrameDecoder {
    /// A decoder of `from`'s frames that refuses any frame longer than `max_frame` bytes.
    pub fn new(from: FramesFrom, max_frame: u64) -> FrameDecoder {
        FrameDecoder {
            from,
            max_frame,
            state: State::Header,
            header: [0; MAX_HEADER],
            header_len: 0,
            opcode: Opcode::Binary,
            mask: None,
            payload_read: 0,
            remaining: 0,
            message_open: false,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
        }
    }

    /// The payload of the last control frame reported (a ping's, to echo in the pong).
    pub fn control_payload(&self) -> &[u8] {
        &self.control[..self.control_len]
    }

    /// Whether the peer's close frame has arrived.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Decodes `input`, appending data frames' payloads to `data`. Returns after all of
    /// `input` or right after a control frame, whichever comes first.
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>) -> Result<Decoded, FrameError> {
        let mut used = 0;
        while used < input.len() {
            match self.state {
                State::Closed => return Err(FrameError::DataAfterClose),
                State::Header => {
                    let needed = self.header_needed()?;
                    let take = (needed - self.header_len).min(input.len() - used);
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&input[used..used + take]);
                    self.header_len += take;
                    used += take;
                    // The length byte can raise what is needed: ask again before parsing.
                    if self.header_len == needed && self.header_needed()? == needed {
                        self.start_frame()?;
                        if self.remaining == 0
                            && let Some(control) = self.finish_frame()?
                        {
                            return Ok(Decoded {
                                consumed: used,
                                control: Some(control),
                            });
                        }
                    }
                }
                State::Payload => {
                    let take = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - used);
                    let chunk = &input[used..used + take];
                    if self.opcode.is_control() {
                        let start = self.control_len;
                        self.control[start..start + take].copy_from_slice(chunk);
                        self.control_len += take;
                        if let Some(mask) = self.mask {
                            apply_mask(&mut self.control[start..start + take], mask, start);
                        }
                    } else {
                        let start = data.len();
                        data.extend_from_slice(chunk);
                        if let Some(mask) = self.mask {
                            apply_mask(&mut data[start..], mask, self.payload_read);
                        }
                    }
                    self.payload_read += take;
                    self.remaining -= take as u64;
                    used += take;
                    if self.remaining == 0
                        && let Some(control) = self.finish_frame()?
                    {
                        return Ok(Decoded {
                            consumed: used,
                            control: Some(control),
                        });
                    }
                }
            }
        }
        Ok(Decoded {
            consumed: used,
            control: None,
        })
    }

    /// How many header bytes the current frame has, as far as the bytes so far tell.
    fn header_needed(&self) -> Result<usize, FrameError> {
        if self.header_len < 2 {
            return Ok(2);
        }
        let length_bytes = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask_bytes = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        Ok(2 + length_bytes + mask_bytes)
    }

    /// Checks a complete header and sets up the payload.
    fn start_frame(&mut self) -> Result<(), FrameError> {
        let first = self.header[0];
        let second = self.header[1];
        self.header_len = 0;
        if first & 0x70 != 0 {
            return Err(FrameError::ReservedBitsSet);
        }
        let fin = first & 0x80 != 0;
        let opcode =
            Opcode::from_bits(first & 0x0f).ok_or(FrameError::UnknownOpcode(first & 0x0f))?;
        let masked = second & 0x80 != 0;
        if masked != (self.from == FramesFrom::Client) {
            return Err(FrameError::WrongMasking);
        }
        let (len, after_len) = match second & 0x7f {
            126 => {
                let len = u64::from(u16::from_be_bytes([self.header[2], self.header[3]]));
                if len < 126 {
                    return Err(FrameError::BadLength);
                }
                (len, 4)
            }
            127 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&self.header[2..10]);
                let len = u64::from_be_bytes(bytes);
                if len <= u64::from(u16::MAX) || len >> 63 != 0 {
                    return Err(FrameError::BadLength);
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        self.mask = masked.then(|| {
            let mut mask = [0u8; 4];
            mask.copy_from_slice(&self.header[after_len..after_len + 4]);
            mask
        });
        match opcode {
            Opcode::Text => return Err(FrameError::TextFrame),
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                if !fin || len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(FrameError::BadControlFrame);
                }
                self.control_len = 0;
            }
            Opcode::Continuation if !self.message_open => {
                return Err(FrameError::UnexpectedContinuation);
            }
            Opcode::Continuation => self.message_open = !fin,
            Opcode::Binary if self.message_open => return Err(FrameError::InterleavedMessage),
            Opcode::Binary => self.message_open = !fin,
        }
        if len > self.max_frame {
            return Err(FrameError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        self.opcode = opcode;
        self.remaining = len;
        self.payload_read = 0;
        self.state = State::Payload;
        Ok(())
    }

    /// Ends the current frame; a control frame becomes the event to report.
    fn finish_frame(&mut self) -> Result<Option<Control>, FrameError> {
        self.state = State::Header;
        Ok(match self.opcode {
            Opcode::Ping => Some(Control::Ping),
            Opcode::Pong => Some(Control::Pong),
            Opcode::Close => {
                let code = close_code(self.control_payload())?;
                self.state = State::Closed;
                Some(Control::Close { code })
            }
            Opcode::Binary | Opcode::Continuation | Opcode::Text => None,
        })
    }
}

/// The status code of a close frame's payload (RFC 6455 §5.5.1, §7.4).
fn close_code(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::BadClosePayload),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed || std::str::from_utf8(reason).is_err() {
                return Err(FrameError::BadClosePayload);
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: u64 = 1 << 20;

    /// Control frames seen, with their payloads.
    type Controls = Vec<(Control, Vec<u8>)>;

    /// Feeds `input` in pieces of `piece` bytes; returns the data and the controls seen.
    fn decode_all(
        decoder: &mut FrameDecoder,
        input: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, Controls), FrameError> {
        let mut data = Vec::new();
        let mut controls = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let decoded = decoder.decode(rest, &mut data)?;
                if let Some(control) = decoded.control {
                    controls.push((control, decoder.control_payload().to_vec()));
                }
                rest = &rest[decoded.consumed..];
            }
        }
        Ok((data, controls))
    }

    #[test]
    fn rfc_6455_examples_decode() {
        // §5.7: an unmasked "Hello" (as binary here), and the same fragmented.
        let mut decoder = FrameDecoder::new(FramesFrom::Server, LIMIT);
        let single = [0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(decode_all(&mut decoder, &single, 100).unwrap().0, b"Hello");
        let fragmented = [0x02, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(
            decode_all(&mut decoder, &fragmented, 1).unwrap().0,
            b"Hello"
        );
        // §5.7: an unmasked ping carrying "Hello".
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (_, controls) = decode_all(&mut decoder, &ping, 3).unwrap();
        assert_eq!(controls, vec![(Control::Ping, b"Hello".to_vec())]);
        // §5.7: a masked "Hello" from a client.
        let masked = [
            0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut server_side = FrameDecoder::new(FramesFrom::Client, LIMIT);
        assert_eq!(
            decode_all(&mut server_side, &masked, 2).unwrap().0,
            b"Hello"
        );
    }

    #[test]
    fn encoder_writes_rfc_6455_examples() {
        let mut out = Vec::new();
        encode_binary(&mut out, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            out,
            [
                0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        // §5.7: 256 bytes use the 16-bit length, 64 KiB the 64-bit one.
        out.clear();
        encode_frame(&mut out, true, Opcode::Binary, &[0; 256], None);
        assert_eq!(out[..4], [0x82, 0x7e, 0x01, 0x00]);
        out.clear();
        encode_frame(&mut out, true, Opcode::Binary, &[0; 65536], None);
        assert_eq!(out[..10], [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn close_reports_its_code_and_ends_the_stream() {
        let mut decoder = FrameDecoder::new(FramesFrom::Server, LIMIT);
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            true,
            Opcode::Close,
            &[0x03, 0xe8, b'b', b'y', b'e'],
            None,
        );
        let (_, controls) = decode_all(&mut decoder, &out, 2).unwrap();
        assert_eq!(controls[0].0, Control::Close { code: Some(1000) });
        assert!(decoder.is_closed());
        assert_eq!(
            decoder.decode(&[0x82, 0x00], &mut Vec::new()),
            Err(FrameError::DataAfterClose)
        );
    }

    #[test]
    fn protocol_violations_are_named() {
        let cases: [(&[u8], FrameError); 12] = [
            (&[0xc2, 0x00], FrameError::ReservedBitsSet),
            (&[0x83, 0x00], FrameError::UnknownOpcode(3)),
            (&[0x81, 0x00], FrameError::TextFrame),
            (&[0x82, 0x80, 0, 0, 0, 0], FrameError::WrongMasking),
            (&[0x09, 0x00], FrameError::BadControlFrame),
            (&[0x89, 0x7e, 0x00, 0x7e], FrameError::BadControlFrame),
            (&[0x82, 0x7e, 0x00, 0x05], FrameError::BadLength),
            (
                &[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0],
                FrameError::BadLength,
            ),
            (
                &[0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::FrameTooLarge {
                    len: 1 << 32,
                    max: LIMIT,
                },
            ),
            (&[0x80, 0x00], FrameError::UnexpectedContinuation),
            (&[0x02, 0x00, 0x82, 0x00], FrameError::InterleavedMessage),
            (&[0x88, 0x01, 0x03], FrameError::BadClosePayload),
        ];
        for (input, expected) in cases {
            let mut decoder = FrameDecoder::new(FramesFrom::Server, LIMIT);
            assert_eq!(
                decode_all(&mut decoder, input, 1),
                Err(expected),
                "{input:x?}"
            );
        }
        let mut server_side = FrameDecoder::new(FramesFrom::Client, LIMIT);
        assert_eq!(
            decode_all(&mut server_side, &[0x82, 0x00], 1),
            Err(FrameError::WrongMasking)
        );
    }

    #[test]
    fn masking_from_any_offset_matches_the_rfc_rule() {
        // RFC 6455 §5.3: byte i is XORed with mask[i % 4], wherever a read starts.
        let mask = [0x11, 0x22, 0x44, 0x88];
        let original: Vec<u8> = (0..=40).collect();
        for offset in 0..8 {
            for len in 0..original.len() - offset {
                let mut bytes = original[offset..offset + len].to_vec();
                apply_mask(&mut bytes, mask, offset);
                let expected: Vec<u8> = (0..len)
                    .map(|i| original[offset + i] ^ mask[(offset + i) % 4])
                    .collect();
                assert_eq!(bytes, expected, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn a_decoder_is_small_enough_for_every_connection() {
        // One per connection, beside the ~11 KiB per-connection budget of issue 11.
        assert!(std::mem::size_of::<FrameDecoder>() <= 256);
    }

    #[test]
    fn control_frames_between_fragments_are_allowed() {
        let mut input = Vec::new();
        encode_frame(&mut input, false, Opcode::Binary, b"MQ", None);
        encode_frame(&mut input, true, Opcode::Ping, b"p", None);
        encode_frame(&mut input, true, Opcode::Continuation, b"TT", None);
        let mut decoder = FrameDecoder::new(FramesFrom::Server, LIMIT);
        let (data, controls) = decode_all(&mut decoder, &input, 64).unwrap();
        assert_eq!(data, b"MQTT");
        assert_eq!(controls, vec![(Control::Ping, b"p".to_vec())]);
    }

    /// One frame a test sends: fragments of a message, or a ping between them.
    #[derive(Debug, Clone)]
    enum Piece {
        Data(Vec<u8>),
        Ping(Vec<u8>),
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Piece::Data),
            1 => proptest::collection::vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Piece::Ping),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            piece_len in 1usize..64,
            client_frames in any::<bool>(),
        ) {
            let from = if client_frames { FramesFrom::Client } else { FramesFrom::Server };
            let mut decoder = FrameDecoder::new(from, 4096);
            let mut data = Vec::new();
            for chunk in bytes.chunks(piece_len) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    match decoder.decode(rest, &mut data) {
                        Ok(decoded) => {
                            prop_assert!(decoded.consumed <= rest.len());
                            prop_assert!(decoded.consumed > 0);
                            rest = &rest[decoded.consumed..];
                        }
                        Err(_) => return Ok(()),
                    }
                }
            }
            prop_assert!(data.len() <= bytes.len());
        }

        #[test]
        fn damaged_frames_never_panic(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..6),
            damage in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            piece_len in 1usize..64,
            client_frames in any::<bool>(),
        ) {
            // Well-formed frames with a few bytes overwritten reach deeper states than noise.
            let from = if client_frames { FramesFrom::Client } else { FramesFrom::Server };
            let mut wire = Vec::new();
            for (i, payload) in payloads.iter().enumerate() {
                let opcode = [Opcode::Binary, Opcode::Ping, Opcode::Close][i % 3];
                let mask = client_frames.then_some([9, 8, 7, 6]);
                encode_frame(&mut wire, true, opcode, payload, mask);
            }
            for (at, byte) in damage {
                let len = wire.len();
                wire[at % len] = byte;
            }
            let mut decoder = FrameDecoder::new(from, 4096);
            let mut data = Vec::new();
            'feed: for chunk in wire.chunks(piece_len) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    match decoder.decode(rest, &mut data) {
                        Ok(decoded) => {
                            prop_assert!(decoded.consumed > 0 && decoded.consumed <= rest.len());
                            prop_assert!(decoder.control_payload().len() <= MAX_CONTROL_PAYLOAD);
                            rest = &rest[decoded.consumed..];
                        }
                        Err(_) => break 'feed,
                    }
                }
            }
            prop_assert!(data.len() <= wire.len());
        }

        #[test]
        fn arbitrary_frames_round_trip(
            messages in proptest::collection::vec(proptest::collection::vec(piece(), 1..5), 1..6),
            masks in proptest::collection::vec(any::<[u8; 4]>(), 32),
            piece_len in 1usize..700,
            client_frames in any::<bool>(),
        ) {
            let from = if client_frames { FramesFrom::Client } else { FramesFrom::Server };
            let mut wire = Vec::new();
            let mut expected_data = Vec::new();
            let mut expected_pings = Vec::new();
            let mut masks = masks.iter().cycle();
            for message in &messages {
                let data_frames = message.iter().filter(|p| matches!(p, Piece::Data(_))).count();
                let mut sent = 0;
                for piece in message {
                    let mask = client_frames.then(|| *masks.next().unwrap_or(&[0; 4]));
                    match piece {
                        Piece::Data(bytes) => {
                            sent += 1;
                            let opcode = if sent == 1 { Opcode::Binary } else { Opcode::Continuation };
                            encode_frame(&mut wire, sent == data_frames, opcode, bytes, mask);
                            expected_data.extend_from_slice(bytes);
                        }
                        // A ping before the message's first data frame stands alone; later
                        // ones sit between its fragments.
                        Piece::Ping(bytes) => {
                            encode_frame(&mut wire, true, Opcode::Ping, bytes, mask);
                            expected_pings.push((Control::Ping, bytes.clone()));
                        }
                    }
                }
                if data_frames == 0 {
                    encode_frame(&mut wire, true, Opcode::Binary, &[], client_frames.then_some([1, 2, 3, 4]));
                }
            }
            let mut decoder = FrameDecoder::new(from, LIMIT);
            let (data, pings) = decode_all(&mut decoder, &wire, piece_len).unwrap();
            prop_assert_eq!(data, expected_data);
            prop_assert_eq!(pings, expected_pings);
        }
    }
}
