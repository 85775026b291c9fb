//! How a run's connections reach the broker and say who they are beyond TLS: MQTT over TCP
//! or over WebSocket, each WebSocket upgrade presigned with AWS SigV4 at its own connect
//! time, and AWS IoT custom authorizers (in the MQTT user name over TCP, as upgrade headers
//! over WebSocket). Every mistake here stops the run before it starts.

use std::borrow::Cow;
use std::fmt;

use crate::aws::credentials::{self, CredentialSource, Credentials, CredentialsError};
use crate::aws::custom_authorizer::{self, CustomAuthorizer, CustomAuthorizerError};
pub use crate::aws::sigv4::SigningError;
use crate::aws::sigv4::{self, AmzDate, PresignRequest, SessionTokenPlacement};
use crate::cli::{Cli, TransportArg};
use crate::net::websocket::{ClientHandshake, HandshakeError, UpgradeRequest};

/// A transport or AWS authentication option that cannot work; each names the fix.
#[derive(Debug)]
pub enum TransportPlanError {
    /// SigV4 is on but no AWS credentials were found (or they are incomplete).
    Credentials(CredentialsError),
    /// SigV4 is on but neither the host nor the AWS configuration names a region.
    NoRegion,
    /// `--aws-sigv4` over plain MQTT: AWS IoT takes SigV4 only on WebSocket upgrades.
    SigV4WithoutWebSocket,
    /// `--aws-sigv4` together with a custom authorizer: a connection uses one or the other.
    SigV4AndAuthorizer,
    /// `--token` without `--token-key-name`, or the other way round.
    TokenIncomplete,
    /// A custom-authorizer field that cannot be sent.
    Authorizer(CustomAuthorizerError),
    /// The WebSocket path, host or a header cannot go into an HTTP upgrade.
    Upgrade(HandshakeError),
    /// The upgrade cannot be signed (a region or host SigV4 refuses).
    Signing(SigningError),
}

impl fmt::Display for TransportPlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportPlanError::Credentials(e) => write!(
                f,
                "SigV4 for the WebSocket upgrade (--aws-sigv4; automatic for AWS IoT endpoints): {e}"
            ),
            TransportPlanError::NoRegion => f.write_str(
                "--aws-sigv4 needs a region: set AWS_REGION, add `region` to the AWS profile, or give the AWS IoT endpoint (*.iot.<region>.amazonaws.com) as --host or --server-name",
            ),
            TransportPlanError::SigV4WithoutWebSocket => f.write_str(
                "--aws-sigv4 signs WebSocket upgrades: add --transport websockets (or use -H wss://<endpoint>/mqtt)",
            ),
            TransportPlanError::SigV4AndAuthorizer => f.write_str(
                "--aws-sigv4 and --authorizer-name/--token are two ways to authenticate: keep one",
            ),
            TransportPlanError::TokenIncomplete => f.write_str(
                "a custom authorizer's token needs both --token-key-name and --token: give both",
            ),
            TransportPlanError::Authorizer(e) => write!(f, "{e}"),
            TransportPlanError::Upgrade(e) => write!(f, "--ws-path/--host: {e}"),
            TransportPlanError::Signing(e) => write!(f, "--aws-sigv4: {e}"),
        }
    }
}

impl std::error::Error for TransportPlanError {}

/// SigV4 signing of each connection's upgrade.
#[derive(Debug, Clone)]
pub struct SigV4Plan {
    /// The keys that sign.
    pub credentials: Credentials,
    /// The region signed for.
    pub region: String,
    /// Where the keys came from (for the startup line).
    pub source: CredentialSource,
}

/// The WebSocket upgrade every connection of a run sends.
#[derive(Debug, Clone)]
pub struct WebSocketPlan {
    /// The `Host` header: the TLS server name (or host), with `:port` when not the default.
    pub host: String,
    /// The request path (`/mqtt`).
    pub path: String,
    /// Custom-authorizer headers.
    pub headers: Vec<(String, String)>,
    /// SigV4 signing, when on.
    pub sigv4: Option<SigV4Plan>,
}

impl WebSocketPlan {
    /// The request target of a connection opened at `unix_secs`: the path, presigned for
    /// that second when SigV4 is on.
    pub fn request_target(&self, unix_secs: u64) -> Result<Cow<'_, str>, SigningError> {
        let Some(sig) = &self.sigv4 else {
            return Ok(Cow::Borrowed(&self.path));
        };
        let request = PresignRequest {
            host: &self.host,
            path: &self.path,
            query: &[],
            region: &sig.region,
            service: sigv4::IOT_SERVICE,
            expires_secs: sigv4::IOT_DEFAULT_EXPIRES_SECS,
            time: AmzDate::from_unix_seconds(unix_secs)?,
        };
        let signed = sigv4::presign(
            &request,
            &sig.credentials,
            SessionTokenPlacement::AppendedAfterSignature,
        )?;
        Ok(Cow::Owned(signed.path_and_query))
    }

    /// How the connections authenticate, for the startup line.
    pub fn describe(&self) -> String {
        match &self.sigv4 {
            Some(sig) => {
                let source = match &sig.source {
                    CredentialSource::Environment => "the environment".to_owned(),
                    CredentialSource::Profile { profile, .. } => format!("profile {profile}"),
                };
                format!(
                    "WebSocket {}, SigV4 for {} with keys from {source}",
                    self.path, sig.region
                )
            }
            None if self.headers.is_empty() => format!("WebSocket {}", self.path),
            None => format!("WebSocket {}, custom authorizer", self.path),
        }
    }
}

/// The custom authorizer the flags describe, if any.
fn custom_authorizer(cli: &Cli) -> Result<Option<CustomAuthorizer<'_>>, TransportPlanError> {
    let token = match (&cli.token_key_name, &cli.token) {
        (Some(key), Some(token)) => Some((key.as_str(), token.as_str())),
        (None, None) => None,
        _ => return Err(TransportPlanError::TokenIncomplete),
    };
    let authorizer = CustomAuthorizer {
        name: cli.authorizer_name.as_deref(),
        token,
        signature: cli.token_signature.as_deref(),
    };
    Ok((authorizer != CustomAuthorizer::default()).then_some(authorizer))
}

/// CONNECT's user name: over TCP with a custom authorizer, `--username` followed by the
/// authorizer's query (`u?x-amz-customauthorizer-name=...`); otherwise `--username`.
pub fn mqtt_username(cli: &Cli) -> Result<Option<String>, TransportPlanError> {
    match custom_authorizer(cli)? {
        Some(authorizer) if cli.transport == TransportArg::Tcp => {
            let user = cli.username.as_deref().unwrap_or_default();
            authorizer
                .mqtt_username(user)
                .map(Some)
                .map_err(TransportPlanError::Authorizer)
        }
        _ => Ok(cli.username.clone()),
    }
}

/// The TLS ALPN protocols: `--alpn`, else `mqtt` for a custom authorizer over MQTT on port
/// 443 (flags, or a `--username` naming one), as AWS IoT wants it there.
pub fn alpn(cli: &Cli, port: u16) -> Vec<String> {
    let authorizer = cli.authorizer_name.is_some()
        || cli.token.is_some()
        || cli
            .username
            .as_deref()
            .is_some_and(|u| u.contains(custom_authorizer::NAME_KEY));
    if cli.alpn.is_empty() && cli.transport == TransportArg::Tcp && port == 443 && authorizer {
        let mqtt = String::from_utf8_lossy(custom_authorizer::MQTT_ALPN).into_owned();
        return vec![mqtt];
    }
    cli.alpn.clone()
}

/// The `Host` header for `name` on `port`: `:port` only when it is not the scheme's.
fn host_header(name: &str, port: u16, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    let bracketed = match name.contains(':') {
        true => format!("[{name}]"),
        false => name.to_owned(),
    };
    match port == default_port {
        true => bracketed,
        false => format!("{bracketed}:{port}"),
    }
}

/// The keys and region that sign upgrades to `name`: the region of an AWS IoT endpoint's
/// name, else the AWS configuration's.
fn sigv4_plan(cli: &Cli, name: &str) -> Result<SigV4Plan, TransportPlanError> {
    let identity = credentials::load_profile(cli.aws_profile.as_deref())
        .map_err(TransportPlanError::Credentials)?;
    let region = sigv4::region_from_iot_endpoint(name)
        .map(str::to_owned)
        .or(identity.region)
        .ok_or(TransportPlanError::NoRegion)?;
    Ok(SigV4Plan {
        credentials: identity.credentials,
        region,
        source: identity.source,
    })
}

/// Whether WebSocket upgrades to `name` are signed: `--aws-sigv4`, or an AWS IoT endpoint
/// reached without a custom authorizer (AWS IoT takes one or the other on WebSocket).
fn signs(cli: &Cli, name: &str, authorizer: bool) -> bool {
    cli.aws_sigv4 || (sigv4::region_from_iot_endpoint(name).is_some() && !authorizer)
}

/// The WebSocket upgrade of a run to `name` (the TLS server name, or the host) on `port`;
/// `None` over TCP. Loads AWS credentials when SigV4 is on, and signs once to check.
pub fn websocket_plan(
    cli: &Cli,
    name: &str,
    port: u16,
    tls: bool,
    now_unix: u64,
) -> Result<Option<WebSocketPlan>, TransportPlanError> {
    let authorizer = custom_authorizer(cli)?;
    if cli.transport == TransportArg::Tcp {
        return match cli.aws_sigv4 {
            true => Err(TransportPlanError::SigV4WithoutWebSocket),
            false => Ok(None),
        };
    }
    if cli.aws_sigv4 && authorizer.is_some() {
        return Err(TransportPlanError::SigV4AndAuthorizer);
    }
    let sign = signs(cli, name, authorizer.is_some());
    let headers = match authorizer {
        Some(authorizer) => authorizer
            .websocket_headers()
            .map_err(TransportPlanError::Authorizer)?
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        None => Vec::new(),
    };
    let sigv4 = match sign {
        true => Some(sigv4_plan(cli, name)?),
        false => None,
    };
    let plan = WebSocketPlan {
        host: host_header(name, port, tls),
        path: cli.ws_path.clone(),
        headers,
        sigv4,
    };
    // Build one upgrade now, so a path or header that cannot be sent stops the run here.
    let target = plan
        .request_target(now_unix)
        .map_err(TransportPlanError::Signing)?;
    let headers: Vec<(&str, &str)> = plan
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let request = UpgradeRequest {
        host: &plan.host,
        path_and_query: &target,
        key: [0; 16],
        extra_headers: &headers,
    };
    ClientHandshake::start(&request, &mut Vec::new()).map_err(TransportPlanError::Upgrade)?;
    Ok(Some(plan))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["mqload"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("valid flags")
    }

    const WS: &[&str] = &["--transport", "websockets"];

    #[test]
    fn the_host_header_has_the_port_only_when_it_is_not_the_schemes() {
        let ws = cli(WS);
        let host = |name, port, tls| {
            websocket_plan(&ws, name, port, tls, 1_796_472_000)
                .expect("plan")
                .expect("websocket")
                .host
        };
        assert_eq!(host("broker.example", 443, true), "broker.example");
        assert_eq!(host("broker.example", 80, false), "broker.example");
        assert_eq!(host("broker.example", 443, false), "broker.example:443");
        assert_eq!(host("::1", 8443, true), "[::1]:8443");
        assert!(
            websocket_plan(&cli(&[]), "h", 1883, false, 0)
                .expect("tcp")
                .is_none()
        );
    }

    #[test]
    fn a_custom_authorizer_goes_in_the_user_name_over_tcp_and_in_headers_over_websocket() {
        let flags = [
            "--username",
            "device-1",
            "--authorizer-name",
            "fleet-auth",
            "--token-key-name",
            "token",
            "--token",
            "a b",
            "--token-signature",
            "c2ln+/==",
        ];
        let tcp = cli(&flags);
        assert_eq!(
            mqtt_username(&tcp).expect("sendable").as_deref(),
            Some(
                "device-1?x-amz-customauthorizer-name=fleet-auth\
                 &x-amz-customauthorizer-signature=c2ln%2B%2F%3D%3D&token=a%20b"
            )
        );
        assert_eq!(alpn(&tcp, 443), ["mqtt"], "AWS IoT wants ALPN mqtt on 443");
        assert!(alpn(&tcp, 8883).is_empty());
        let mut given = flags.to_vec();
        given.extend(["--alpn", "x-amzn-mqtt-ca"]);
        assert_eq!(alpn(&cli(&given), 443), ["x-amzn-mqtt-ca"], "--alpn wins");

        let mut over_ws = flags.to_vec();
        over_ws.extend(WS);
        let ws = cli(&over_ws);
        assert_eq!(mqtt_username(&ws).expect("ok").as_deref(), Some("device-1"));
        assert!(alpn(&ws, 443).is_empty());
        let plan = websocket_plan(&ws, "abc-ats.iot.eu-west-1.amazonaws.com", 443, true, 0)
            .expect("plan")
            .expect("websocket");
        assert!(plan.sigv4.is_none(), "an authorizer, so no SigV4");
        let headers: Vec<(&str, &str)> = plan
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("x-amz-customauthorizer-name", "fleet-auth"),
                ("x-amz-customauthorizer-signature", "c2ln+/=="),
                ("token", "a b"),
            ]
        );
        assert_eq!(plan.request_target(0).expect("no signing"), "/mqtt");
    }

    #[test]
    fn sigv4_is_on_for_aws_iot_endpoints_without_an_authorizer_or_when_asked() {
        let ws = cli(WS);
        let aws = "abc-ats.iot.eu-west-1.amazonaws.com";
        assert!(signs(&ws, aws, false));
        assert!(!signs(&ws, aws, true));
        assert!(!signs(&ws, "127.0.0.1", false));
        let mut asked = WS.to_vec();
        asked.push("--aws-sigv4");
        assert!(signs(&cli(&asked), "127.0.0.1", false));
    }

    #[test]
    fn each_second_signs_its_own_target() {
        let plan = WebSocketPlan {
            host: "abc-ats.iot.eu-west-1.amazonaws.com".into(),
            path: "/mqtt".into(),
            headers: Vec::new(),
            sigv4: Some(SigV4Plan {
                credentials: Credentials {
                    access_key_id: "AKIDEXAMPLE".into(),
                    secret_access_key: "secret".into(),
                    session_token: Some("tok/en".into()),
                },
                region: "eu-west-1".into(),
                source: CredentialSource::Environment,
            }),
        };
        let first = plan.request_target(1_796_472_000).expect("signed");
        let next = plan.request_target(1_796_472_001).expect("signed");
        assert!(first.starts_with("/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&"));
        assert!(first.contains("X-Amz-Date=20261205T120000Z"), "{first}");
        assert!(next.contains("X-Amz-Date=20261205T120001Z"), "{next}");
        assert!(first.ends_with("&X-Amz-Security-Token=tok%2Fen"), "{first}");
        assert_ne!(first, next);
    }

    #[test]
    fn mistakes_are_refused_before_the_run() {
        let refused = |args: &[&str]| {
            let cli = cli(args);
            mqtt_username(&cli)
                .and_then(|_| websocket_plan(&cli, "127.0.0.1", 8080, false, 0))
                .expect_err("refused")
        };
        assert!(matches!(
            refused(&["--token", "t"]),
            TransportPlanError::TokenIncomplete
        ));
        assert!(matches!(
            refused(&["--aws-sigv4"]),
            TransportPlanError::SigV4WithoutWebSocket
        ));
        assert!(matches!(
            refused(&[
                "--transport",
                "websockets",
                "--aws-sigv4",
                "--authorizer-name",
                "a"
            ]),
            TransportPlanError::SigV4AndAuthorizer
        ));
        assert!(matches!(
            refused(&["--transport", "websockets", "--ws-path", "/has space"]),
            TransportPlanError::Upgrade(_)
        ));
    }
}
