//! Where connections go: the TLS configuration and server name, the broker's addresses and
//! the WebSocket upgrade.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::Target;
use super::error::PlanError;
use super::transport::{self, WebSocketPlan};
use crate::cli::Cli;
use crate::net::{self, TlsFiles};
use crate::scale::ScalePlan;

/// [`RunPlan::tls`]: the client configuration and server name; `None` for plain TCP.
type TlsPlan = Option<(Arc<ClientConfig>, ServerName<'static>)>;

/// The TLS client configuration: the target's, none for `--no-tls`, or built from the TLS
/// files (whose per-device templates must exist for the first and the last connection).
pub(super) fn tls_client_config(
    cli: &Cli,
    target: Option<&Target>,
    subscribers: u64,
) -> Result<Option<Arc<ClientConfig>>, PlanError> {
    if let Some(target) = target {
        return Ok(target.tls.clone());
    }
    if cli.no_tls {
        return Ok(None);
    }
    let files = TlsFiles {
        ca: cli.cafile.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    };
    let alpn = transport::alpn(cli, cli.port);
    let config = net::client_config(&files, &alpn).map_err(PlanError::Tls)?;
    let last = cli.users.saturating_add(subscribers).saturating_sub(1);
    let shared = cli.tls_tickets == crate::cli::TlsTicketsArg::Shared;
    net::tls::check_device_files(&files, 0, last, shared).map_err(PlanError::Tls)?;
    Ok(Some(config))
}

/// The TLS configuration (with the scale's ticket policy) and server name, and the
/// WebSocket upgrade, for connections to `host:port`.
pub(super) fn connection_layers(
    cli: &Cli,
    target: Option<&Target>,
    (host, port): (&str, u16),
    tls: Option<Arc<ClientConfig>>,
    scale: &mut ScalePlan,
) -> Result<(TlsPlan, Option<WebSocketPlan>), PlanError> {
    let name_text = match target {
        Some(_) => host.to_owned(),
        None => cli.server_name.clone().unwrap_or_else(|| host.to_owned()),
    };
    let now = crate::unix_time::unix_now() as u64;
    let websocket = transport::websocket_plan(cli, &name_text, port, tls.is_some(), now)
        .map_err(PlanError::Transport)?;
    let tls = match tls {
        Some(config) => {
            let config = scale.attach_tickets(config, cli.users);
            let name = ServerName::try_from(name_text.clone())
                .map_err(|_| PlanError::BadServerName(name_text))?;
            Some((config, name))
        }
        None => None,
    };
    Ok((tls, websocket))
}

/// The broker's addresses; at least one.
pub(super) fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, PlanError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| PlanError::Unresolvable {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(PlanError::Unresolvable {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    Ok(addrs)
}
