//! The HTTP/1.1 head both sides of a WebSocket upgrade read: where it ends, its header lines,
//! and the `Upgrade: websocket` / `Connection: upgrade` pair each side requires.

/// Why a head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadFault {
    /// The head passed its size limit before it ended.
    TooLarge,
    /// The head is not UTF-8, or a header line has no colon.
    Malformed,
}

/// The head at the start of `received`, once its blank line has arrived: its length in bytes
/// (blank line included) and its lines, the first being the request or status line.
/// `Ok(None)`: not ended yet, read more.
pub(crate) fn complete_head(
    received: &[u8],
    max_len: usize,
) -> Result<Option<(usize, std::str::Split<'_, &'static str>)>, HeadFault> {
    let Some(len) = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|start| start + 4)
    else {
        return if received.len() > max_len {
            Err(HeadFault::TooLarge)
        } else {
            Ok(None)
        };
    };
    if len > max_len {
        return Err(HeadFault::TooLarge);
    }
    let text = std::str::from_utf8(&received[..len - 4]).map_err(|_| HeadFault::Malformed)?;
    Ok(Some((len, text.split("\r\n"))))
}

/// One header line as (name in lower case, value trimmed).
pub(crate) fn header(line: &str) -> Result<(String, &str), HeadFault> {
    let (name, value) = line.split_once(':').ok_or(HeadFault::Malformed)?;
    Ok((name.trim().to_ascii_lowercase(), value.trim()))
}

/// Whether a head asked for (or agreed to) the WebSocket upgrade, header by header.
#[derive(Debug, Default)]
pub(crate) struct UpgradeHeaders {
    /// `Upgrade: websocket` was present.
    pub upgrade: bool,
    /// A `Connection` header listed `upgrade`.
    pub connection: bool,
}

impl UpgradeHeaders {
    /// Notes the header if it is `Upgrade` or `Connection`; `false` for any other.
    pub(crate) fn note(&mut self, name: &str, value: &str) -> bool {
        match name {
            "upgrade" => self.upgrade |= value.eq_ignore_ascii_case("websocket"),
            "connection" => {
                self.connection |= value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
            }
            _ => return false,
        }
        true
    }
}
