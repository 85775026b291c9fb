//! The one write loop for a non-blocking socket, plain or TLS: write until the socket would
//! block, so the client's transport and the built-in broker's connections flush alike.

use std::fmt;
use std::io::{self, Write};

use rustls::ConnectionCommon;

/// Why a flush stopped before the socket would block.
#[derive(Debug)]
pub enum FlushError {
    /// The socket accepted zero bytes: the peer is gone.
    Closed,
    /// The socket failed (reset, broken pipe, ...), or rustls refused more plaintext.
    Io(io::Error),
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Closed => f.write_str("the peer closed the connection"),
            FlushError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FlushError {}

impl From<FlushError> for super::TransportError {
    fn from(e: FlushError) -> Self {
        match e {
            FlushError::Closed => super::TransportError::Closed,
            FlushError::Io(e) => super::TransportError::Io(e),
        }
    }
}

/// Writes rustls' pending records until the socket would block. `refill` runs before the
/// first write and after each one, to hand rustls more plaintext when its buffer is bounded
/// (the broker's case; a client with an unbounded buffer passes `|_| Ok(())`).
///
/// `Ok(true)`: rustls has nothing left to write. `Ok(false)`: the socket would block.
pub fn flush_tls<Data>(
    tls: &mut ConnectionCommon<Data>,
    socket: &mut impl Write,
    mut refill: impl FnMut(&mut ConnectionCommon<Data>) -> io::Result<()>,
) -> Result<bool, FlushError> {
    refill(tls).map_err(FlushError::Io)?;
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(0) => return Err(FlushError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FlushError::Io(e)),
        }
        refill(tls).map_err(FlushError::Io)?;
    }
    Ok(true)
}

/// Writes `unsent` until the socket would block and removes what went out.
///
/// `Ok(true)`: nothing is left. `Ok(false)`: the socket would block.
pub fn flush_plain(socket: &mut impl Write, unsent: &mut Vec<u8>) -> Result<bool, FlushError> {
    let mut written = 0;
    while written < unsent.len() {
        match socket.write(&unsent[written..]) {
            Ok(0) => return Err(FlushError::Closed),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FlushError::Io(e)),
        }
    }
    unsent.drain(..written);
    Ok(unsent.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `room` bytes, then would block (or reports zero bytes).
    struct Socket {
        taken: Vec<u8>,
        room: usize,
        closed: bool,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.closed {
                return Ok(0);
            }
            let n = buf.len().min(self.room).min(3);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_flush_keeps_what_the_socket_refused_in_order() {
        let mut socket = Socket {
            taken: Vec::new(),
            room: 7,
            closed: false,
        };
        let mut unsent = b"0123456789".to_vec();
        assert!(!flush_plain(&mut socket, &mut unsent).expect("flush"));
        assert_eq!(
            (socket.taken.as_slice(), unsent.as_slice()),
            (&b"0123456"[..], &b"789"[..])
        );
        socket.room = 100;
        assert!(flush_plain(&mut socket, &mut unsent).expect("flush"));
        assert_eq!(socket.taken, b"0123456789");
        assert!(unsent.is_empty());
    }

    #[test]
    fn plain_flush_reports_a_socket_taking_nothing_as_closed() {
        let mut socket = Socket {
            taken: Vec::new(),
            room: 7,
            closed: true,
        };
        let mut unsent = b"abc".to_vec();
        assert!(matches!(
            flush_plain(&mut socket, &mut unsent),
            Err(FlushError::Closed)
        ));
        assert_eq!(unsent, b"abc", "nothing went out, nothing is dropped");
    }
}
