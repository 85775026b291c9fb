//! The client side of RFC 6455's opening handshake, sans-IO: the HTTP/1.1 upgrade request
//! for MQTT over WebSocket (subprotocol `mqtt`), and the check of the server's 101 answer.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::digest;

use super::head::{HeadFault, UpgradeHeaders, complete_head, header};

/// The GUID RFC 6455 §1.3 appends to the key before hashing it into `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The longest response head (status line and headers) accepted; a real one is ~200 bytes.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;
/// The subprotocol MQTT over WebSocket asks for (MQTT 3.1.1 §6, MQTT 5.0 §6).
pub const MQTT_SUBPROTOCOL: &str = "mqtt";

/// Why the upgrade failed: a request field that cannot be sent, or an answer that is not
/// a WebSocket upgrade to MQTT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The host, path or an extra header holds a byte that would break the HTTP request.
    BadRequestField(String),
    /// The server's response head passed [`MAX_RESPONSE_HEAD`] bytes without ending.
    ResponseTooLarge,
    /// The status line is not `HTTP/1.1 <3 digits> ...`.
    MalformedStatusLine,
    /// A header line has no `:` or is not ASCII.
    MalformedHeader,
    /// The server answered with another status than 101 (AWS IoT: 403 for a bad signature).
    Refused {
        /// The HTTP status code.
        status: u16,
    },
    /// No `Upgrade: websocket` header in the answer.
    NotWebSocketUpgrade,
    /// No `upgrade` token in the answer's `Connection` header.
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is missing or does not match our key.
    BadAccept,
    /// The server picked a subprotocol other than `mqtt`.
    WrongSubprotocol(String),
    /// The server turned on an extension that was not offered.
    UnrequestedExtension(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadRequestField(field) => write!(
                f,
                "cannot send {field:?} in a WebSocket upgrade: remove control characters and spaces"
            ),
            HandshakeError::ResponseTooLarge => write!(
                f,
                "the WebSocket upgrade answer is longer than {MAX_RESPONSE_HEAD} bytes: is this a WebSocket endpoint?"
            ),
            HandshakeError::MalformedStatusLine => {
                f.write_str("the WebSocket upgrade answer is not HTTP/1.1: check the port")
            }
            HandshakeError::MalformedHeader => {
                f.write_str("the WebSocket upgrade answer has a malformed header line")
            }
            HandshakeError::Refused { status } => write!(
                f,
                "the server refused the WebSocket upgrade with HTTP {status}: check the path, \
                 the credentials and the clock"
            ),
            HandshakeError::NotWebSocketUpgrade => {
                f.write_str("the server's answer does not upgrade to websocket")
            }
            HandshakeError::NoConnectionUpgrade => {
                f.write_str("the server's answer lacks `Connection: upgrade`")
            }
            HandshakeError::BadAccept => {
                f.write_str("the server's Sec-WebSocket-Accept does not match the key sent")
            }
            HandshakeError::WrongSubprotocol(chosen) => write!(
                f,
                "the server chose WebSocket subprotocol {chosen:?}, not {MQTT_SUBPROTOCOL:?}"
            ),
            HandshakeError::UnrequestedExtension(ext) => {
                write!(
                    f,
                    "the server turned on WebSocket extension {ext:?}, not offered"
                )
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// What the upgrade request says.
#[derive(Debug, Clone, Copy)]
pub struct UpgradeRequest<'a> {
    /// The `Host` header: host, and `:port` when it is not the scheme's default.
    pub host: &'a str,
    /// The request target: path and query, already percent-encoded (a SigV4 URL's tail).
    pub path_and_query: &'a str,
    /// 16 random bytes from the caller; their base64 is `Sec-WebSocket-Key`.
    pub key: [u8; 16],
    /// More headers, such as an AWS IoT custom authorizer's token and signature.
    pub extra_headers: &'a [(&'a str, &'a str)],
}

/// A handshake in flight: it knows which `Sec-WebSocket-Accept` the server must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    expected_accept: String,
}

impl ClientHandshake {
    /// Appends the upgrade request to `out` and returns the handshake awaiting its answer.
    pub fn start(
        request: &UpgradeRequest<'_>,
        out: &mut Vec<u8>,
    ) -> Result<ClientHandshake, HandshakeError> {
        check_field(request.host, false)?;
        check_field(request.path_and_query, false)?;
        if !request.path_and_query.starts_with('/') {
            return Err(HandshakeError::BadRequestField(
                request.path_and_query.to_owned(),
            ));
        }
        for (name, value) in request.extra_headers {
            check_header_name(name)?;
            check_field(value, true)?;
        }
        let key = BASE64.encode(request.key);
        let mut put = |parts: &[&str]| {
            for part in parts {
                out.extend_from_slice(part.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        };
        put(&["GET ", request.path_and_query, " HTTP/1.1"]);
        put(&["Host: ", request.host]);
        put(&["Upgrade: websocket"]);
        put(&["Connection: Upgrade"]);
        put(&["Sec-WebSocket-Key: ", &key]);
        put(&["Sec-WebSocket-Version: 13"]);
        put(&["Sec-WebSocket-Protocol: ", MQTT_SUBPROTOCOL]);
        for (name, value) in request.extra_headers {
            put(&[name, ": ", value]);
        }
        put(&[]);
        Ok(ClientHandshake {
            expected_accept: accept_key(key.as_bytes()),
        })
    }

    /// Checks the server's answer in `received` (every byte read so far). `Ok(None)`: the
    /// head has not ended yet, read more. `Ok(Some(n))`: upgraded; the first `n` bytes were
    /// the head, and any after them are already WebSocket frames.
    pub fn read_response(&self, received: &[u8]) -> Result<Option<usize>, HandshakeError> {
        let fault = |fault| match fault {
            HeadFault::TooLarge => HandshakeError::ResponseTooLarge,
            HeadFault::Malformed => HandshakeError::MalformedHeader,
        };
        let Some((head_len, mut lines)) =
            complete_head(received, MAX_RESPONSE_HEAD).map_err(fault)?
        else {
            return Ok(None);
        };
        let status = parse_status_line(lines.next().unwrap_or_default())?;
        if status != 101 {
            return Err(HandshakeError::Refused { status });
        }
        let mut upgrade = UpgradeHeaders::default();
        let mut accept_ok = false;
        for line in lines {
            let (name, value) = header(line).map_err(fault)?;
            if upgrade.note(&name, value) {
                continue;
            }
            match name.as_str() {
                "sec-websocket-accept" => accept_ok |= value == self.expected_accept,
                "sec-websocket-protocol" if value != MQTT_SUBPROTOCOL => {
                    return Err(HandshakeError::WrongSubprotocol(value.to_owned()));
                }
                "sec-websocket-extensions" if !value.is_empty() => {
                    return Err(HandshakeError::UnrequestedExtension(value.to_owned()));
                }
                _ => {}
            }
        }
        if !upgrade.upgrade {
            return Err(HandshakeError::NotWebSocketUpgrade);
        }
        if !upgrade.connection {
            return Err(HandshakeError::NoConnectionUpgrade);
        }
        if !accept_ok {
            return Err(HandshakeError::BadAccept);
        }
        Ok(Some(head_len))
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (as sent, base64): base64 of the SHA-1
/// of the key followed by RFC 6455's GUID. A server answering an upgrade uses it as well.
pub fn accept_key(key_base64: &[u8]) -> String {
    let mut context = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key_base64);
    context.update(ACCEPT_GUID);
    BASE64.encode(context.finish())
}

/// Length of the head including its closing blank line, once `\r\n\r\n` has arrived.
fn parse_status_line(line: &str) -> Result<u16, HandshakeError> {
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .ok_or(HandshakeError::MalformedStatusLine)?;
    let code = rest.get(..3).ok_or(HandshakeError::MalformedStatusLine)?;
    let after = &rest[3..];
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(after.is_empty() || after.starts_with(' ')) {
        return Err(HandshakeError::MalformedStatusLine);
    }
    code.parse()
        .map_err(|_| HandshakeError::MalformedStatusLine)
}

/// A host, target or header value: visible ASCII (and spaces in a header value only).
fn check_field(text: &str, spaces_allowed: bool) -> Result<(), HandshakeError> {
    let ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() || (spaces_allowed && b == b' '));
    if ok {
        Ok(())
    } else {
        Err(HandshakeError::BadRequestField(text.to_owned()))
    }
}

/// An HTTP token (RFC 9110 §5.6.2).
fn check_header_name(name: &str) -> Result<(), HandshakeError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(HandshakeError::BadRequestField(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3's own example: key "the sample nonce".
    const RFC_KEY: [u8; 16] = *b"the sample nonce";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn start(extra: &[(&str, &str)]) -> (ClientHandshake, String) {
        let mut out = Vec::new();
        let handshake = ClientHandshake::start(
            &UpgradeRequest {
                host: "127.0.0.1:8080",
                path_and_query: "/mqtt?X-Amz-Date=20261205T120000Z",
                key: RFC_KEY,
                extra_headers: extra,
            },
            &mut out,
        )
        .unwrap();
        (handshake, String::from_utf8(out).unwrap())
    }

    fn answer(headers: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\n{headers}\r\n")
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                        Sec-WebSocket-Protocol: mqtt\r\n";

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), RFC_ACCEPT);
    }

    #[test]
    fn request_carries_key_subprotocol_and_extra_headers() {
        let (_, request) = start(&[("x-amz-customauthorizer-name", "MyAuth"), ("token", "a b")]);
        assert_eq!(
            request,
            "GET /mqtt?X-Amz-Date=20261205T120000Z HTTP/1.1\r\n\
             Host: 127.0.0.1:8080\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\
             x-amz-customauthorizer-name: MyAuth\r\n\
             token: a b\r\n\r\n"
        );
    }

    #[test]
    fn fields_that_would_split_the_request_are_refused() {
        for (host, path, header) in [
            ("h\r\nx: y", "/mqtt", ("a", "b")),
            ("h", "/mq tt", ("a", "b")),
            ("h", "mqtt", ("a", "b")),
            ("h", "/mqtt", ("a:b", "c")),
            ("h", "/mqtt", ("a", "b\r\nEvil: 1")),
        ] {
            let result = ClientHandshake::start(
                &UpgradeRequest {
                    host,
                    path_and_query: path,
                    key: RFC_KEY,
                    extra_headers: &[header],
                },
                &mut Vec::new(),
            );
            assert!(
                matches!(result, Err(HandshakeError::BadRequestField(_))),
                "{host:?} {path:?} {header:?}"
            );
        }
    }

    #[test]
    fn a_good_answer_is_accepted_in_pieces_and_frames_after_it_are_left() {
        let (handshake, _) = start(&[]);
        let mut received = answer(GOOD).into_bytes();
        let head_len = received.len();
        received.extend_from_slice(&[0x82, 0x02, 0x20, 0x00]);
        for cut in 0..head_len {
            assert_eq!(
                handshake.read_response(&received[..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
        assert_eq!(handshake.read_response(&received), Ok(Some(head_len)));
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let (handshake, _) = start(&[]);
        let head = answer(
            "upgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n\
             sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
        );
        assert_eq!(
            handshake.read_response(head.as_bytes()),
            Ok(Some(head.len()))
        );
    }

    #[test]
    fn bad_answers_are_named() {
        let (handshake, _) = start(&[]);
        let cases = [
            (
                "HTTP/1.1 403 Forbidden\r\n\r\n".to_owned(),
                HandshakeError::Refused { status: 403 },
            ),
            (
                "SSH-2.0-x\r\n\r\n".to_owned(),
                HandshakeError::MalformedStatusLine,
            ),
            (
                "HTTP/1.1 1x1 X\r\n\r\n".to_owned(),
                HandshakeError::MalformedStatusLine,
            ),
            (answer("no colon here\r\n"), HandshakeError::MalformedHeader),
            (
                answer(&GOOD.replace("Upgrade: websocket", "Upgrade: h2c")),
                HandshakeError::NotWebSocketUpgrade,
            ),
            (
                answer(&GOOD.replace("Connection: Upgrade", "Connection: close")),
                HandshakeError::NoConnectionUpgrade,
            ),
            (
                answer(&GOOD.replace("xOo=", "xOp=")),
                HandshakeError::BadAccept,
            ),
            (
                answer(&GOOD.replace("Protocol: mqtt", "Protocol: mqttv3.1")),
                HandshakeError::WrongSubprotocol("mqttv3.1".into()),
            ),
            (
                answer(&format!(
                    "{GOOD}Sec-WebSocket-Extensions: permessage-deflate\r\n"
                )),
                HandshakeError::UnrequestedExtension("permessage-deflate".into()),
            ),
        ];
        for (head, expected) in cases {
            assert_eq!(
                handshake.read_response(head.as_bytes()),
                Err(expected),
                "{head:?}"
            );
        }
    }

    #[test]
    fn an_endless_head_is_refused() {
        let (handshake, _) = start(&[]);
        let mut endless = answer(GOOD).into_bytes();
        endless.truncate(endless.len() - 2);
        endless.resize(MAX_RESPONSE_HEAD + 1, b'a');
        assert_eq!(
            handshake.read_response(&endless),
            Err(HandshakeError::ResponseTooLarge)
        );
    }
}
