//! The server side of RFC 6455's opening handshake, sans-IO: read a client's upgrade request
//! for MQTT and answer `101 Switching Protocols` (for the built-in broker's WebSocket
//! listener), or say why it is refused so the server can answer 400.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::handshake::{MQTT_SUBPROTOCOL, accept_key};
use super::head::{HeadFault, UpgradeHeaders, complete_head, header};

/// The longest request head accepted (a presigned AWS URL is about 600 bytes).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Why an upgrade request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeRequestError {
    /// The head passed [`MAX_REQUEST_HEAD`] bytes without ending.
    TooLarge,
    /// The request line is not `GET <target> HTTP/1.1`.
    NotAGet,
    /// A header line has no `:` or is not UTF-8.
    MalformedHeader,
    /// No `Upgrade: websocket`.
    NotWebSocketUpgrade,
    /// No `upgrade` token in `Connection`.
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing or not the base64 of 16 bytes.
    BadKey,
    /// Subprotocols were offered, and `mqtt` was not among them.
    NoMqttSubprotocol,
}

impl fmt::Display for UpgradeRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeRequestError::TooLarge => "WebSocket upgrade request head too large",
            UpgradeRequestError::NotAGet => "not an HTTP/1.1 GET",
            UpgradeRequestError::MalformedHeader => "malformed header line in upgrade request",
            UpgradeRequestError::NotWebSocketUpgrade => "no Upgrade: websocket",
            UpgradeRequestError::NoConnectionUpgrade => "no Connection: upgrade",
            UpgradeRequestError::UnsupportedVersion => "Sec-WebSocket-Version is not 13",
            UpgradeRequestError::BadKey => "Sec-WebSocket-Key is not 16 bytes in base64",
            UpgradeRequestError::NoMqttSubprotocol => "subprotocol mqtt not offered",
        })
    }
}

impl std::error::Error for UpgradeRequestError {}

/// Reads a client's upgrade request from `received` (every byte so far). `Ok(None)`: read
/// more. `Ok(Some(n))`: accepted; the answer is appended to `out`, and bytes after the
/// first `n` are already frames.
pub fn accept_upgrade(
    received: &[u8],
    out: &mut Vec<u8>,
) -> Result<Option<usize>, UpgradeRequestError> {
    let fault = |fault| match fault {
        HeadFault::TooLarge => UpgradeRequestError::TooLarge,
        HeadFault::Malformed => UpgradeRequestError::MalformedHeader,
    };
    let Some((head_len, mut lines)) = complete_head(received, MAX_REQUEST_HEAD).map_err(fault)?
    else {
        return Ok(None);
    };
    let request_line = lines.next().unwrap_or_default();
    let is_get = request_line
        .strip_prefix("GET ")
        .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
        .is_some_and(|target| target.starts_with('/') && !target.contains(' '));
    if !is_get {
        return Err(UpgradeRequestError::NotAGet);
    }
    let mut upgrade = UpgradeHeaders::default();
    let mut version = false;
    let mut key = None;
    let mut protocols_offered = false;
    let mut mqtt_offered = false;
    for line in lines {
        let (name, value) = header(line).map_err(fault)?;
        if upgrade.note(&name, value) {
            continue;
        }
        match name.as_str() {
            "sec-websocket-version" => version |= value == "13",
            "sec-websocket-key" => key = Some(value),
            "sec-websocket-protocol" => {
                protocols_offered = true;
                mqtt_offered |= value.split(',').any(|p| p.trim() == MQTT_SUBPROTOCOL);
            }
            _ => {}
        }
    }
    if !upgrade.upgrade {
        return Err(UpgradeRequestError::NotWebSocketUpgrade);
    }
    if !upgrade.connection {
        return Err(UpgradeRequestError::NoConnectionUpgrade);
    }
    if !version {
        return Err(UpgradeRequestError::UnsupportedVersion);
    }
    let key = key.ok_or(UpgradeRequestError::BadKey)?;
    let key_is_16_bytes = BASE64.decode(key).is_ok_and(|bytes| bytes.len() == 16);
    if !key_is_16_bytes {
        return Err(UpgradeRequestError::BadKey);
    }
    if protocols_offered && !mqtt_offered {
        return Err(UpgradeRequestError::NoMqttSubprotocol);
    }
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(accept_key(key.as_bytes()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if mqtt_offered {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: mqtt\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(head_len))
}

/// The answer to a refused upgrade request: `400 Bad Request`, then close the connection.
pub fn encode_bad_request(out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::websocket::{ClientHandshake, UpgradeRequest};
    use proptest::prelude::*;

    fn client_request(key: [u8; 16]) -> (ClientHandshake, Vec<u8>) {
        let mut request = Vec::new();
        let handshake = ClientHandshake::start(
            &UpgradeRequest {
                host: "127.0.0.1:8083",
                path_and_query: "/mqtt?X-Amz-Date=20261205T120000Z",
                key,
                extra_headers: &[("x-amz-customauthorizer-name", "A")],
            },
            &mut request,
        )
        .unwrap();
        (handshake, request)
    }

    #[test]
    fn our_client_and_server_agree_in_any_read_split() {
        let (handshake, mut request) = client_request(*b"0123456789abcdef");
        let head_len = request.len();
        request.extend_from_slice(&[0x82, 0x80, 1, 2, 3, 4]);
        for cut in 0..head_len {
            assert_eq!(accept_upgrade(&request[..cut], &mut Vec::new()), Ok(None));
        }
        let mut answer = Vec::new();
        assert_eq!(accept_upgrade(&request, &mut answer), Ok(Some(head_len)));
        assert_eq!(handshake.read_response(&answer), Ok(Some(answer.len())));
    }

    #[test]
    fn rfc_6455_example_key_gets_its_accept() {
        let request = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
                       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Protocol: chat, mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut answer = Vec::new();
        accept_upgrade(request.as_bytes(), &mut answer).unwrap();
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(answer.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    }

    #[test]
    fn refused_requests_are_named() {
        let good = "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                    Sec-WebSocket-Protocol: mqtt\r\n\r\n";
        let cases = [
            (
                good.replace("GET /mqtt", "POST /mqtt"),
                UpgradeRequestError::NotAGet,
            ),
            (
                good.replace("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"),
                UpgradeRequestError::NotAGet,
            ),
            (
                good.replace("Host: h", "Host h"),
                UpgradeRequestError::MalformedHeader,
            ),
            (
                good.replace("Upgrade: websocket", "Upgrade: h2c"),
                UpgradeRequestError::NotWebSocketUpgrade,
            ),
            (
                good.replace("Connection: Upgrade", "Connection: close"),
                UpgradeRequestError::NoConnectionUpgrade,
            ),
            (
                good.replace("Version: 13", "Version: 8"),
                UpgradeRequestError::UnsupportedVersion,
            ),
            (
                good.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                UpgradeRequestError::BadKey,
            ),
            (
                good.replace("Protocol: mqtt", "Protocol: chat"),
                UpgradeRequestError::NoMqttSubprotocol,
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                accept_upgrade(request.as_bytes(), &mut Vec::new()),
                Err(expected),
                "{request:?}"
            );
        }
        let endless = vec![b'a'; MAX_REQUEST_HEAD + 1];
        assert_eq!(
            accept_upgrade(&endless, &mut Vec::new()),
            Err(UpgradeRequestError::TooLarge)
        );
        let mut answer = Vec::new();
        encode_bad_request(&mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 400 "));
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            if let Ok(Some(n)) = accept_upgrade(&bytes, &mut out) {
                prop_assert!(n <= bytes.len());
                prop_assert!(out.starts_with(b"HTTP/1.1 101 "));
            }
        }

        #[test]
        fn every_key_round_trips(key in any::<[u8; 16]>()) {
            let (handshake, request) = client_request(key);
            let mut answer = Vec::new();
            prop_assert_eq!(accept_upgrade(&request, &mut answer), Ok(Some(request.len())));
            prop_assert_eq!(handshake.read_response(&answer), Ok(Some(answer.len())));
        }
    }
}
