//! AWS Signature Version 4 in the query string (a presigned GET), as AWS IoT's
//! MQTT-over-WebSocket endpoint `wss://<endpoint>/mqtt` wants it: pure functions of the
//! request, the credentials and a time the caller passes in (no clock is read here).
//!
//! The canonical request signs only the `host` header and the SHA-256 of an empty body,
//! which is what AWS IoT checks. With temporary credentials, AWS IoT wants
//! `X-Amz-Security-Token` appended *after* the signature, outside the signed query
//! ([`SessionTokenPlacement::AppendedAfterSignature`]); other services sign it
//! ([`SessionTokenPlacement::Signed`]), which is what AWS's published test suite does.

use std::fmt::{self, Write as _};

use ring::{digest, hmac};

use super::Credentials;

/// The service name AWS IoT's data plane signs with.
pub const IOT_SERVICE: &str = "iotdevicegateway";
/// The path of AWS IoT's MQTT-over-WebSocket endpoint.
pub const IOT_WEBSOCKET_PATH: &str = "/mqtt";
/// Presigned URLs live this long unless told otherwise (a day, as AWS's IoT device SDKs
/// sign); AWS IoT checks it once, at the WebSocket upgrade.
pub const IOT_DEFAULT_EXPIRES_SECS: u32 = 86_400;
/// The longest validity SigV4 allows for a presigned URL (seven days).
pub const MAX_EXPIRES_SECS: u32 = 604_800;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of the empty body: a WebSocket upgrade has none.
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Largest Unix time that still has a four-digit year (9999-12-31T23:59:59Z).
const LAST_FOUR_DIGIT_YEAR_SECOND: u64 = 253_402_300_799;

/// Why a URL could not be signed; each is a mistake in what the caller passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningError {
    /// The host is empty or holds a character that has no place in an HTTP `Host` header.
    BadHost(String),
    /// The path does not start with `/`.
    PathNotAbsolute(String),
    /// The region is empty or not made of lowercase letters, digits and `-`.
    BadRegion(String),
    /// The service is empty or not made of lowercase letters, digits and `-`.
    BadService(String),
    /// The validity is zero or longer than seven days.
    ExpiresOutOfRange(u32),
    /// The time is past the year 9999, which an `X-Amz-Date` cannot write.
    TimeOutOfRange(u64),
    /// An `X-Amz-Date` that is not `YYYYMMDDTHHMMSSZ`.
    BadAmzDate(String),
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::BadHost(host) => write!(
                f,
                "cannot sign for host {host:?}: give a bare host name such as \
                 abc123-ats.iot.us-east-1.amazonaws.com"
            ),
            SigningError::PathNotAbsolute(path) => {
                write!(f, "cannot sign path {path:?}: it must start with '/'")
            }
            SigningError::BadRegion(region) => write!(
                f,
                "AWS region {region:?} is not a region name: set AWS_REGION to one such as us-east-1"
            ),
            SigningError::BadService(service) => write!(
                f,
                "AWS service {service:?} is not a service name such as {IOT_SERVICE}"
            ),
            SigningError::ExpiresOutOfRange(secs) => write!(
                f,
                "presigned URL validity of {secs} s is out of range: give 1 to {MAX_EXPIRES_SECS} s"
            ),
            SigningError::TimeOutOfRange(secs) => write!(
                f,
                "Unix time {secs} is past the year 9999: check the system clock"
            ),
            SigningError::BadAmzDate(text) => {
                write!(f, "{text:?} is not an X-Amz-Date (YYYYMMDDTHHMMSSZ)")
            }
        }
    }
}

impl std::error::Error for SigningError {}

/// A signing time as SigV4 writes it, `YYYYMMDDTHHMMSSZ` (UTC, whole seconds).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AmzDate {
    text: [u8; 16],
}

impl AmzDate {
    /// The time `secs` seconds after the Unix epoch.
    pub fn from_unix_seconds(secs: u64) -> Result<AmzDate, SigningError> {
        if secs > LAST_FOUR_DIGIT_YEAR_SECOND {
            return Err(SigningError::TimeOutOfRange(secs));
        }
        let days = secs / 86_400;
        let second_of_day = secs % 86_400;
        let (year, month, day) = crate::unix_time::civil_from_days(days);
        let mut text = [0u8; 16];
        put_digits(&mut text[0..4], year);
        put_digits(&mut text[4..6], month);
        put_digits(&mut text[6..8], day);
        text[8] = b'T';
        put_digits(&mut text[9..11], second_of_day / 3600);
        put_digits(&mut text[11..13], second_of_day % 3600 / 60);
        put_digits(&mut text[13..15], second_of_day % 60);
        text[15] = b'Z';
        Ok(AmzDate { text })
    }

    /// The time `time` names (the caller reads the clock, once per connect).
    pub fn from_system_time(time: std::time::SystemTime) -> Result<AmzDate, SigningError> {
        let secs = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        AmzDate::from_unix_seconds(secs)
    }

    /// Reads `YYYYMMDDTHHMMSSZ` as written (digits and shape checked, not the calendar).
    pub fn parse(text: &str) -> Result<AmzDate, SigningError> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() == 16
            && bytes[8] == b'T'
            && bytes[15] == b'Z'
            && bytes[..8]
                .iter()
                .chain(&bytes[9..15])
                .all(u8::is_ascii_digit);
        if !well_formed {
            return Err(SigningError::BadAmzDate(text.to_owned()));
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(bytes);
        Ok(AmzDate { text: out })
    }

    /// `YYYYMMDDTHHMMSSZ`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, 'T' and 'Z' are ever stored.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// `YYYYMMDD`, the date in the credential scope.
    pub fn date(&self) -> &str {
        &self.as_str()[..8]
    }
}

impl fmt::Debug for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmzDate({})", self.as_str())
    }
}

/// Writes `value` as `out.len()` decimal digits, zero-padded (the caller bounds `value`).
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Where a session token goes in a presigned URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTokenPlacement {
    /// Inside the signed query, as AWS's SigV4 test suite and most services expect.
    Signed,
    /// After `X-Amz-Signature`, unsigned, as AWS IoT's WebSocket endpoint expects.
    AppendedAfterSignature,
}

/// A GET to presign. Path and query are given decoded; the signer percent-encodes them.
#[derive(Debug, Clone, Copy)]
pub struct PresignRequest<'a> {
    /// The `Host` header: a host name, with `:port` only when it is not the scheme's default.
    pub host: &'a str,
    /// The path, starting with `/`, not yet percent-encoded, already normalized.
    pub path: &'a str,
    /// Query parameters besides the signature's own, not yet percent-encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// The AWS region, such as `us-east-1`.
    pub region: &'a str,
    /// The AWS service, such as [`IOT_SERVICE`].
    pub service: &'a str,
    /// How long the URL stays valid, seconds (`X-Amz-Expires`).
    pub expires_secs: u32,
    /// The signing time.
    pub time: AmzDate,
}

impl<'a> PresignRequest<'a> {
    /// AWS IoT's WebSocket endpoint on `endpoint` (its ATS data endpoint host).
    pub fn iot_websocket(endpoint: &'a str, region: &'a str, time: AmzDate) -> Self {
        PresignRequest {
            host: endpoint,
            path: IOT_WEBSOCKET_PATH,
            query: &[],
            region,
            service: IOT_SERVICE,
            expires_secs: IOT_DEFAULT_EXPIRES_SECS,
            time,
        }
    }
}

/// A signed request, with the intermediate texts SigV4 defines (for tests and debugging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// SigV4's canonical request.
    pub canonical_request: String,
    /// SigV4's string to sign.
    pub string_to_sign: String,
    /// The signature, 64 lowercase hex digits.
    pub signature: String,
    /// The request target to send: encoded path, `?`, the query with the signature.
    pub path_and_query: String,
}

/// Presigns `request` with `credentials`, placing a session token as `placement` says.
pub fn presign(
    request: &PresignRequest<'_>,
    credentials: &Credentials,
    placement: SessionTokenPlacement,
) -> Result<Presigned, SigningError> {
    validate(request)?;
    let date = request.time.date();
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let credential = format!("{}/{scope}", credentials.access_key_id);
    let expires = request.expires_secs.to_string();

    let mut params: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(key, value)| (uri_encode(key), uri_encode(value)))
        .collect();
    let auth_params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", request.time.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ];
    params.extend(
        auth_params
            .iter()
            .map(|(key, value)| ((*key).to_owned(), uri_encode(value))),
    );
    let token = credentials.session_token.as_deref();
    if let (Some(token), SessionTokenPlacement::Signed) = (token, placement) {
        params.push(("X-Amz-Security-Token".to_owned(), uri_encode(token)));
    }
    params.sort_unstable();
    let mut canonical_query = String::new();
    for (i, (key, value)) in params.iter().enumerate() {
        if i > 0 {
            canonical_query.push('&');
        }
        let _ = write!(canonical_query, "{key}={value}");
    }

    let canonical_uri = uri_encode_path(request.path);
    let canonical_request = format!(
        "GET\n{canonical_uri}\n{canonical_query}\nhost:{}\n\nhost\n{EMPTY_BODY_SHA256}",
        request.host
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        request.time.as_str(),
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let signing_key = signing_key(
        &credentials.secret_access_key,
        date,
        request.region,
        request.service,
    );
    let signature = hex(hmac::sign(&signing_key, string_to_sign.as_bytes()).as_ref());

    let mut path_and_query =
        format!("{canonical_uri}?{canonical_query}&X-Amz-Signature={signature}");
    if let (Some(token), SessionTokenPlacement::AppendedAfterSignature) = (token, placement) {
        let _ = write!(
            path_and_query,
            "&X-Amz-Security-Token={}",
            uri_encode(token)
        );
    }
    Ok(Presigned {
        canonical_request,
        string_to_sign,
        signature,
        path_and_query,
    })
}

/// The `wss://` URL a device opens to reach AWS IoT's MQTT over WebSocket on `endpoint`,
/// signed at `time` for `region`; a session token goes where AWS IoT wants it.
pub fn iot_websocket_url(
    endpoint: &str,
    region: &str,
    credentials: &Credentials,
    time: AmzDate,
) -> Result<String, SigningError> {
    let request = PresignRequest::iot_websocket(endpoint, region, time);
    let signed = presign(
        &request,
        credentials,
        SessionTokenPlacement::AppendedAfterSignature,
    )?;
    Ok(format!("wss://{endpoint}{}", signed.path_and_query))
}

/// The region in an AWS IoT data endpoint such as `abc-ats.iot.eu-west-1.amazonaws.com`.
pub fn region_from_iot_endpoint(endpoint: &str) -> Option<&str> {
    let mut labels = endpoint.split('.');
    labels.by_ref().find(|label| *label == "iot")?;
    let region = labels.next()?;
    let rest: Vec<&str> = labels.collect();
    let amazon = matches!(
        rest.as_slice(),
        ["amazonaws", "com"] | ["amazonaws", "com", "cn"]
    );
    (amazon && is_name(region)).then_some(region)
}

fn validate(request: &PresignRequest<'_>) -> Result<(), SigningError> {
    let host_ok = !request.host.is_empty()
        && request
            .host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(SigningError::BadHost(request.host.to_owned()));
    }
    if !request.path.starts_with('/') {
        return Err(SigningError::PathNotAbsolute(request.path.to_owned()));
    }
    if !is_name(request.region) {
        return Err(SigningError::BadRegion(request.region.to_owned()));
    }
    if !is_name(request.service) {
        return Err(SigningError::BadService(request.service.to_owned()));
    }
    if request.expires_secs == 0 || request.expires_secs > MAX_EXPIRES_SECS {
        return Err(SigningError::ExpiresOutOfRange(request.expires_secs));
    }
    Ok(())
}

/// A region or service name: lowercase ASCII letters, digits and `-`, not empty.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// SigV4's derived key: the secret HMAC-chained through date, region, service and
/// `aws4_request`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = Vec::with_capacity(4 + secret.len());
    key.extend_from_slice(b"AWS4");
    key.extend_from_slice(secret.as_bytes());
    let mut tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref()),
            part.as_bytes(),
        );
    }
    hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
}

/// Percent-encodes every byte but SigV4's unreserved set (`A-Z a-z 0-9 - _ . ~`).
pub(crate) fn uri_encode(text: &str) -> String {
    encode_keeping(text, |_| false)
}

/// [`uri_encode`], keeping `/` (a path's segment separators).
fn uri_encode_path(path: &str) -> String {
    encode_keeping(path, |b| b == b'/')
}

fn encode_keeping(text: &str, also_keep: impl Fn(u8) -> bool) -> String {
    const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || also_keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(b >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(LOWER_HEX[usize::from(b >> 4)]));
        out.push(char::from(LOWER_HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests;
