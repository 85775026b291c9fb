//! `mqload broker` (the broker alone, until Ctrl-C or `--run-time`) and the embedded broker a
//! run starts when no host is given.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Args;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{
    BrokerConfig, BrokerError, BrokerStats, DEFAULT_MAX_PACKET, MemoryPki, RunningBroker,
    server_config_from_files,
};
use crate::metrics::{
    BrokerSnapshot, MetricsResponder, ResponderError, ResponderOptions, SnapshotPublisher,
    snapshot_handoff,
};
use crate::net::{self, TlsConfigError};

/// Options of `mqload broker`.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Port to listen on (0: a free one, printed at start).
    #[arg(long, default_value_t = 8883)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// PEM certificate (chain) of the broker; without it one is generated in memory.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA whose client certificates are required (mutual TLS); without it (and with
    /// --tls-cert) clients need no certificate.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Plain TCP instead of TLS.
    #[arg(long)]
    pub no_tls: bool,
    /// With generated certificates: write ca.pem, client.pem and client.key here, so other
    /// tools can connect.
    #[arg(long)]
    pub pki_out: Option<PathBuf>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Serve the broker's counters for Prometheus at http://ADDR/metrics (e.g. 127.0.0.1:9274).
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_listen_addr)]
    pub prometheus: Option<SocketAddr>,
    /// Stop after this long (`30s`, `10m`); without it, run until Ctrl-C or SIGTERM.
    #[arg(long, short = 't')]
    pub run_time: Option<String>,
    /// Take in at most this many PUBLISH packets a second (whole broker, paced evenly); the
    /// rest wait their turn in order, none dropped. A stand-in for a broker at capacity.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_msg_rate: Option<u64>,
    /// Answer at most this many CONNECT packets a second (whole broker, paced evenly); the
    /// rest wait their turn in order, none refused. A stand-in for a broker at its connect
    /// capacity.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connect_rate: Option<u64>,
    /// Also take MQTT over WebSocket (subprotocol `mqtt`, path any) on this port, TLS unless
    /// --no-tls (0: a free one, printed at start).
    #[arg(long)]
    pub ws_port: Option<u16>,
}

/// Runs `mqload broker`; returns the exit code (2 for a configuration mistake).
pub fn run_command(args: &BrokerArgs) -> u8 {
    match serve(args) {
        Ok(stats) => {
            println!("mqload broker: stopped; {stats}");
            0
        }
        Err(e) => {
            eprintln!("mqload broker: error: {e}");
            crate::exit_code::EXIT_CONFIG
        }
    }
}

fn serve(args: &BrokerArgs) -> Result<BrokerStats, BrokerError> {
    let run_time = args
        .run_time
        .as_deref()
        .map(|t| {
            crate::duration::parse_duration(t).ok_or_else(|| BrokerError::BadRunTime(t.into()))
        })
        .transpose()?;
    let tls = if args.no_tls {
        if args.tls_cert.is_some()
            || args.tls_key.is_some()
            || args.cafile.is_some()
            || args.pki_out.is_some()
        {
            return Err(BrokerError::TlsOptionsWithNoTls);
        }
        None
    } else {
        match (&args.tls_cert, &args.tls_key) {
            (Some(_), Some(_)) if args.pki_out.is_some() => {
                return Err(BrokerError::PkiOutWithFiles);
            }
            (Some(cert), Some(key)) => {
                Some(server_config_from_files(cert, key, args.cafile.as_deref())?)
            }
            (None, None) => {
                let pki = MemoryPki::generate()?;
                if let Some(dir) = &args.pki_out {
                    write_pki(&pki, dir)?;
                }
                Some(pki.server_config()?)
            }
            _ => return Err(BrokerError::CertWithoutKey),
        }
    };
    let threads = match args.threads {
        Some(0) => return Err(BrokerError::ZeroThreads),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let tls_text = match (&tls, &args.cafile, &args.tls_cert) {
        (None, _, _) => "plain TCP",
        (Some(_), None, Some(_)) => "TLS",
        _ => "TLS, client certificates required",
    };
    let broker = RunningBroker::start(&BrokerConfig {
        addr: SocketAddr::new(args.bind, args.port),
        tls,
        threads,
        max_packet: DEFAULT_MAX_PACKET,
        max_msg_rate: args.max_msg_rate,
        max_connect_rate: args.max_connect_rate,
        ws_addr: args.ws_port.map(|port| SocketAddr::new(args.bind, port)),
    })?;
    // Before the first line: whoever reads it may send SIGTERM at once.
    crate::signals::install();
    let limit = args
        .max_msg_rate
        .map_or(String::new(), |n| format!(", at most {n} msg/s"));
    let connect_limit = args
        .max_connect_rate
        .map_or(String::new(), |n| format!(", at most {n} connects/s"));
    let ws = broker.ws_addr.map_or(String::new(), |addr| {
        let scheme = if args.no_tls { "ws" } else { "wss" };
        format!("; WebSocket ({scheme}) on {addr}")
    });
    println!(
        "mqload broker: listening on {} ({tls_text}, {threads} threads{limit}{connect_limit}){ws}",
        broker.addr
    );
    let deadline = run_time.map(|t| Instant::now() + t);
    let metrics = args.prometheus.map(serve_metrics).transpose()?;
    while !crate::signals::received() && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some((_, publisher)) = &metrics {
            publisher.publish(metrics_snapshot(&broker));
        }
    }
    Ok(broker.stop())
}

/// `--prometheus`: the `/metrics` responder (its own thread, stopped when dropped) and the
/// end that hands it the counters.
fn serve_metrics(
    addr: SocketAddr,
) -> Result<(MetricsResponder, SnapshotPublisher<BrokerSnapshot>), BrokerError> {
    let (publisher, reader) = snapshot_handoff::<BrokerSnapshot>();
    let responder = MetricsResponder::start(addr, reader, ResponderOptions::default()).map_err(
        |e| match e {
            ResponderError::Bind { addr, source } => BrokerError::Bind { addr, source },
            ResponderError::Setup(source) => BrokerError::Io(source),
        },
    )?;
    println!(
        "mqload broker: serving metrics at http://{}/metrics",
        responder.local_addr()
    );
    Ok((responder, publisher))
}

fn metrics_snapshot(broker: &RunningBroker) -> BrokerSnapshot {
    let stats = broker.stats();
    BrokerSnapshot {
        accepted: stats.accepted,
        bad_packets: stats.bad_packets,
        received: stats.received,
        sent: stats.sent,
        dropped: stats.dropped,
        slow_disconnects: stats.slow_disconnects,
        expired: stats.expired,
        taken_over: stats.taken_over,
        open_connections: broker.open_connections(),
    }
}

fn write_pki(pki: &MemoryPki, dir: &Path) -> Result<(), BrokerError> {
    let files = [
        ("ca.pem", pem("CERTIFICATE", &pki.ca)),
        ("client.pem", pem("CERTIFICATE", &pki.client_cert)),
        ("client.key", pem("PRIVATE KEY", &pki.client_key)),
    ];
    std::fs::create_dir_all(dir).map_err(|source| BrokerError::Unwritable {
        path: dir.to_path_buf(),
        source,
    })?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| BrokerError::Unwritable { path, source })?;
    }
    Ok(())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Threads of the embedded broker: as asked, else half the CPUs (the load engine runs in the
/// same process and wants the rest), at least one.
pub fn embedded_threads(option: Option<usize>) -> usize {
    option
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

/// The broker a run starts for itself when no host is given: 127.0.0.1 on a free port (and a
/// WebSocket listener on another when the run speaks WebSocket), with a CA, server and client
/// certificate made in memory (never written anywhere).
#[derive(Debug)]
pub struct Embedded {
    /// The running broker.
    pub broker: RunningBroker,
    pki: Option<MemoryPki>,
}

impl Embedded {
    /// Starts it with `threads` workers; TLS with mutual authentication unless `no_tls` (on
    /// both listeners); with a WebSocket listener too when `websocket`.
    pub fn start(threads: usize, no_tls: bool, websocket: bool) -> Result<Embedded, BrokerError> {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let pki = if no_tls {
            None
        } else {
            Some(MemoryPki::generate()?)
        };
        let tls = pki.as_ref().map(MemoryPki::server_config).transpose()?;
        let broker = RunningBroker::start(&BrokerConfig {
            addr: SocketAddr::new(loopback, 0),
            tls,
            threads,
            max_packet: DEFAULT_MAX_PACKET,
            max_msg_rate: None,
            max_connect_rate: None,
            ws_addr: websocket.then(|| SocketAddr::new(loopback, 0)),
        })?;
        Ok(Embedded { broker, pki })
    }

    /// Where the run connects: the WebSocket listener when there is one, else the TCP one.
    pub fn run_addr(&self) -> SocketAddr {
        self.broker.ws_addr.unwrap_or(self.broker.addr)
    }

    /// The client configuration that trusts this broker and presents the generated client
    /// certificate; `None` for plain TCP.
    pub fn client_config(
        &self,
        alpn: &[String],
    ) -> Option<Result<Arc<ClientConfig>, TlsConfigError>> {
        let pki = self.pki.as_ref()?;
        Some(net::client_config_from_memory(
            CertificateDer::clone(&pki.ca),
            vec![pki.client_cert.clone()],
            PrivateKeyDer::Pkcs8(pki.client_key.clone().into()),
            alpn,
        ))
    }
}
