//! Connection-scale options, validated: `--bind` sources, `--connect-only`,
//! `--connection-lifetime` churn, and the per-device TLS ticket store.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::cli::{Cli, TlsTicketsArg};
use crate::net::bind::{self, BindError};
use crate::net::resume::{self, TicketStore};

/// Shortest `--connection-lifetime`: below it a client would spend its life handshaking.
pub const MIN_LIFETIME: Duration = Duration::from_millis(100);

/// A connection-scale mistake; each names the fix.
#[derive(Debug)]
pub enum ScaleError {
    /// `--bind` is malformed, or names an address this host does not have.
    Bind(BindError),
    /// `--connection-lifetime` is not a duration, or too short.
    BadLifetime(String),
    /// More connections per (source, broker) address pair than the kernel has ephemeral ports.
    TooFewPorts {
        /// Users asked for.
        users: u64,
        /// (source, broker address) pairs the connections spread over.
        pairs: u64,
        /// Ephemeral ports per pair (`net.ipv4.ip_local_port_range`).
        ports: u64,
    },
}

impl fmt::Display for ScaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleError::Bind(e) => write!(f, "{e}"),
            ScaleError::BadLifetime(value) => write!(
                f,
                "--connection-lifetime {value:?}: give a duration of at least 100ms, e.g. 30s or 5m"
            ),
            ScaleError::TooFewPorts {
                users,
                pairs,
                ports,
            } => write!(
                f,
                "{users} users over {pairs} (source, broker) address pair(s) need {} ports each, but the kernel has {ports} ephemeral ports per pair (net.ipv4.ip_local_port_range): add source addresses with --bind (e.g. --bind 127.0.0.2-127.0.0.6 on loopback), or run fewer users per host",
                users.div_ceil(*pairs)
            ),
        }
    }
}

impl std::error::Error for ScaleError {}

/// The validated connection-scale settings of a run.
#[derive(Debug, Clone, Default)]
pub struct ScalePlan {
    /// Source addresses connections spread over (empty: the kernel chooses).
    pub bind: Vec<IpAddr>,
    /// Hold connections with keep-alive pings only, publish nothing.
    pub connect_only: bool,
    /// Disconnect each client after this long connected and reconnect at once.
    pub lifetime: Option<Duration>,
    /// The per-device TLS ticket store (when TLS is on).
    pub tickets: Option<Arc<TicketStore>>,
    /// Most connection attempts in progress at once, over all threads (0: no bound).
    pub max_connecting: usize,
    /// How TLS sessions are kept for resumption (`None`: as `auto`).
    pub tls_tickets: Option<TlsTicketsArg>,
}

impl ScalePlan {
    /// Validates the options against the resolved broker addresses; returns the plan and the
    /// broker addresses some source can reach.
    pub fn from_cli(
        cli: &Cli,
        brokers: Vec<SocketAddr>,
    ) -> Result<(ScalePlan, Vec<SocketAddr>), ScaleError> {
        let bind = bind::parse_bind(&cli.bind).map_err(ScaleError::Bind)?;
        bind::check_local(&bind).map_err(ScaleError::Bind)?;
        let brokers = bind::reachable(&brokers, &bind).map_err(ScaleError::Bind)?;
        let lifetime = match &cli.connection_lifetime {
            None => None,
            Some(text) => match crate::duration::parse_duration(text) {
                Some(d) if d >= MIN_LIFETIME => Some(d),
                _ => return Err(ScaleError::BadLifetime(text.clone())),
            },
        };
        if let Some(ports) = bind::ephemeral_ports() {
            let pairs = pairs(&brokers, &bind);
            if cli.users.div_ceil(pairs) > ports {
                return Err(ScaleError::TooFewPorts {
                    users: cli.users,
                    pairs,
                    ports,
                });
            }
        }
        let plan = ScalePlan {
            bind,
            connect_only: cli.connect_only,
            lifetime,
            tickets: None,
            max_connecting: cli.max_connecting,
            tls_tickets: Some(cli.tls_tickets),
        };
        Ok((plan, brokers))
    }

    /// Applies `--tls-tickets` to `config`: a per-device store with room for every user
    /// (kept for the report), rustls' shared one, or none.
    pub fn attach_tickets(&mut self, config: Arc<ClientConfig>, users: u64) -> Arc<ClientConfig> {
        let mode = match self.tls_tickets.unwrap_or(TlsTicketsArg::Auto) {
            TlsTicketsArg::Auto if self.lifetime.is_some() => TlsTicketsArg::PerDevice,
            TlsTicketsArg::Auto => TlsTicketsArg::Off,
            mode => mode,
        };
        let per_device = match mode {
            TlsTicketsArg::PerDevice => true,
            TlsTicketsArg::Auto | TlsTicketsArg::Shared => false,
            TlsTicketsArg::Off => {
                let mut config = Arc::unwrap_or_clone(config);
                config.resumption = rustls::client::Resumption::disabled();
                return Arc::new(config);
            }
        };
        if !per_device {
            return config;
        }
        let store = Arc::new(TicketStore::new(
            usize::try_from(users).unwrap_or(usize::MAX),
        ));
        self.tickets = Some(Arc::clone(&store));
        resume::with_store(config, store)
    }
}

/// (source, broker) address pairs connections spread over.
fn pairs(brokers: &[SocketAddr], sources: &[IpAddr]) -> u64 {
    if sources.is_empty() {
        return brokers.len().max(1) as u64;
    }
    let n = brokers
        .iter()
        .map(|b| {
            sources
                .iter()
                .filter(|s| s.is_ipv4() == b.is_ipv4())
                .count()
        })
        .sum::<usize>();
    n.max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_count_sources_per_family() {
        let brokers: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().expect("v4"),
            "[::1]:1".parse().expect("v6"),
        ];
        let sources: Vec<IpAddr> = vec![
            "127.0.0.2".parse().expect("a"),
            "127.0.0.3".parse().expect("b"),
            "::1".parse().expect("c"),
        ];
        assert_eq!(pairs(&brokers, &sources), 3);
        assert_eq!(pairs(&brokers, &[]), 2);
    }

    #[test]
    fn the_port_error_names_the_fix() {
        let e = ScaleError::TooFewPorts {
            users: 60_000,
            pairs: 1,
            ports: 28_232,
        };
        let text = e.to_string();
        assert!(text.contains("--bind"), "{text}");
        assert!(text.contains("60000 ports each"), "{text}");
    }
}
