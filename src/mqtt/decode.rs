//! Bytes to packets: `decode` returns `Ok(None)` until a whole packet is buffered.

use super::{DecodeError, Packet};

/// The fixed header of a packet: type and flags byte, remaining length, and its own length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// First byte: packet type (high nibble) and flags (low nibble).
    pub first_byte: u8,
    /// Remaining length (variable header + payload).
    pub remaining_len: usize,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub header_len: usize,
}

/// Reads the fixed header, or `Ok(None)` when more bytes are needed.
pub fn decode_fixed_header(
    _buf: &[u8],
    _max_packet_size: usize,
) -> Result<Option<FixedHeader>, DecodeError> {
    todo!("codec")
}

/// Decodes one packet from the front of `buf`; returns it and the bytes it took.
pub fn decode(_buf: &[u8], _max_packet_size: usize) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    todo!("codec")
}
