//! The worker loop: one TCP connection to the Locust master (mio), heartbeats, stats every
//! 3 s, spawn/stop/quit handling, reconnects, and the master-gone timeout.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};

use super::msgpack::Encoder;
use super::protocol::{self, MasterMsg, Spawn, WorkerState};
use super::stats::LocustStats;
use super::subscribers::{self, Subscribers};
use super::zmtp::{Event, Zmtp, ZmtpError};
use super::{budget, options, sys};
use crate::cli::Cli;
use crate::engine::Epoch;
use crate::engine::control::{Control, Engine};
use crate::plan::{PlanError, RunPlan};
use crate::stats::StatsMsg;

/// Heartbeats go to the master this often (Locust's `HEARTBEAT_INTERVAL`).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Statistics go to the master this often (Locust's `WORKER_REPORT_INTERVAL`).
const STATS_INTERVAL: Duration = Duration::from_secs(3);
/// `client_ready` is sent again this often until the master acknowledges it.
const READY_RESEND: Duration = Duration::from_secs(5);
/// Wait between attempts to reach the master.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Longest wait of the loop.
const TICK: Duration = Duration::from_millis(100);
/// A worker no master has ever acknowledged gives up after this, as Locust's own do
/// (`CONNECT_TIMEOUT` 5 s x (`CONNECT_RETRY_COUNT` 60 + 1)).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(5 * 61);
/// The ZMTP handshake must finish within this (libzmq's own limit).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A master that reads nothing while this much waits to be sent is treated as gone.
const MAX_UNSENT: usize = 16 << 20;
/// How long the last messages (final stats, quit) may take to leave.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// How the worker meets its master.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Master host name or address.
    pub master_host: String,
    /// Master port (Locust's 5557).
    pub master_port: u16,
    /// Stop after this long without a heartbeat from the master (once it had sent one).
    pub master_timeout: Duration,
    /// This worker's node id, `<hostname>_<32 hex>`.
    pub node_id: String,
}

/// How the worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The master said quit, or SIGINT/SIGTERM.
    Quit,
    /// The master stopped sending heartbeats, or none ever answered.
    MasterGone,
}

struct Link {
    stream: mio::net::TcpStream,
    zmtp: Zmtp,
    opened: Instant,
}

/// Why the link to the master broke (the worker reconnects).
#[derive(Debug)]
enum LinkError {
    /// The master closed the connection.
    Closed,
    /// The master's bytes broke the ZMTP framing.
    Zmtp(ZmtpError),
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Closed => f.write_str("closed by the master"),
            LinkError::Zmtp(e) => write!(f, "{e}"),
            LinkError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// What to do once the users have stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterStop {
    /// The master said stop: report, say client_stopped, be ready for the next test.
    Ready,
    /// The master said quit: report, say quit, exit.
    Quit,
}

/// One load test ordered by the master: an engine and its statistics.
struct Test {
    engine: Engine,
    plan: Arc<RunPlan>,
    stats_rx: Receiver<StatsMsg>,
    stats: LocustStats,
    classes: Vec<(String, u64)>,
    users: u64,
    /// The subscriber classes' users, in an engine of their own.
    subs: Subscribers,
}

/// The worker's whole state.
pub struct Worker {
    config: WorkerConfig,
    cli: Cli,
    given: HashSet<String>,
    poll: Poll,
    link: Option<Link>,
    reconnect_at: Instant,
    state: WorkerState,
    acked: bool,
    last_ready: Instant,
    last_heartbeat: Instant,
    last_stats: Instant,
    master_heartbeat: Option<Instant>,
    /// When the worker started, until a master first acknowledges it.
    joining_since: Option<Instant>,
    last_spawn: f64,
    test: Option<Test>,
    /// Set while the users drain after a stop or quit (heartbeats go on meanwhile).
    stopping: Option<AfterStop>,
    warned_classes: HashSet<String>,
    cpu: sys::CpuMeter,
}

impl Worker {
    /// A worker for `cli` (its own flags win over the master's options).
    pub fn new(config: WorkerConfig, cli: Cli, given: HashSet<String>) -> io::Result<Worker> {
        let now = Instant::now();
        Ok(Worker {
            config,
            cli,
            given,
            poll: Poll::new()?,
            link: None,
            reconnect_at: now,
            state: WorkerState::Ready,
            acked: false,
            last_ready: now,
            last_heartbeat: now,
            last_stats: now,
            master_heartbeat: None,
            joining_since: Some(now),
            last_spawn: f64::NEG_INFINITY,
            test: None,
            stopping: None,
            warned_classes: HashSet::new(),
            cpu: sys::CpuMeter::new(),
        })
    }

    /// Runs until the master says quit, a signal arrives, or the master is gone.
    pub fn run(&mut self) -> Exit {
        let mut events = Events::with_capacity(16);
        let mut zmtp_events = Vec::new();
        loop {
            let now = Instant::now();
            if crate::signals::received() {
                eprintln!("mqload: worker: signal received, stopping");
                self.finish(true);
                return Exit::Quit;
            }
            if self
                .master_heartbeat
                .is_some_and(|t| now.duration_since(t) > self.config.master_timeout)
            {
                eprintln!(
                    "mqload: worker: no heartbeat from the master for {:?}, stopping",
                    self.config.master_timeout
                );
                self.finish(false);
                return Exit::MasterGone;
            }
            if self
                .joining_since
                .is_some_and(|t| now.duration_since(t) > JOIN_TIMEOUT)
            {
                eprintln!(
                    "mqload: worker: no Locust master answered at {}:{} within {} s, giving up",
                    self.config.master_host,
                    self.config.master_port,
                    JOIN_TIMEOUT.as_secs()
                );
                return Exit::MasterGone;
            }
            if self.link.is_none() && now >= self.reconnect_at {
                self.connect();
                // The greeting goes out at once, as libzmq sends it.
                self.flush();
            }
            if let Err(e) = self.poll.poll(&mut events, Some(TICK))
                && e.kind() != io::ErrorKind::Interrupted
            {
                eprintln!("mqload: worker: event loop failed: {e}");
                self.finish(false);
                return Exit::MasterGone;
            }
            zmtp_events.clear();
            if !events.is_empty()
                && let Err(why) = self.read(&mut zmtp_events)
            {
                self.drop_link(&why.to_string());
            }
            for event in zmtp_events.drain(..) {
                if let Event::Message(bytes) = event {
                    match protocol::decode_master(&bytes) {
                        Ok(msg) => self.handle(msg),
                        Err(e) => eprintln!("mqload: worker: ignoring a message: {e}"),
                    }
                }
            }
            if self.stopping.is_some()
                && self
                    .test
                    .as_ref()
                    .is_none_or(|t| t.engine.is_finished() && t.subs.is_finished())
                && self.stopped()
            {
                return Exit::Quit;
            }
            self.timers(Instant::now());
            self.flush();
        }
    }

    fn connect(&mut self) {
        let addr = (self.config.master_host.as_str(), self.config.master_port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next());
        let Some(addr) = addr else {
            self.reconnect_at = Instant::now() + RECONNECT_DELAY;
            return;
        };
        match open(addr, &self.poll) {
            Ok(stream) => {
                let mut zmtp = Zmtp::new(&self.config.node_id);
                zmtp.send(&protocol::client_ready(&self.config.node_id));
                self.link = Some(Link {
                    stream,
                    zmtp,
                    opened: Instant::now(),
                });
                self.acked = false;
                self.last_ready = Instant::now();
            }
            Err(_) => self.reconnect_at = Instant::now() + RECONNECT_DELAY,
        }
    }

    fn drop_link(&mut self, why: &str) {
        if let Some(mut link) = self.link.take() {
            eprintln!("mqload: worker: connection to the master lost ({why}); reconnecting");
            let _ = self.poll.registry().deregister(&mut link.stream);
        }
        self.acked = false;
        self.reconnect_at = Instant::now() + RECONNECT_DELAY;
    }

    fn read(&mut self, out: &mut Vec<Event>) -> Result<(), LinkError> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match link.stream.read(&mut buf) {
                Ok(0) => return Err(LinkError::Closed),
                Ok(n) => link
                    .zmtp
                    .handle_input(&buf[..n], out)
                    .map_err(LinkError::Zmtp)?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LinkError::Io(e)),
            }
        }
    }

    fn flush(&mut self) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        while !link.zmtp.pending_output().is_empty() {
            match link.stream.write(link.zmtp.pending_output()) {
                Ok(n) => link.zmtp.consumed(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = e.to_string();
                    self.drop_link(&why);
                    return;
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if let Some(link) = self.link.as_mut() {
            link.zmtp.send(bytes);
        }
    }

    fn timers(&mut self, now: Instant) {
        let id = self.config.node_id.clone();
        if let Some(link) = &self.link {
            if !link.zmtp.is_ready() && now.duration_since(link.opened) > HANDSHAKE_TIMEOUT {
                self.drop_link("no ZMTP handshake within 30 s");
            } else if link.zmtp.pending_output().len() > MAX_UNSENT {
                self.drop_link("the master reads nothing of what the worker sends");
            }
        }
        if self.link.is_some() && !self.acked && now >= self.last_ready + READY_RESEND {
            self.send(&protocol::client_ready(&id));
            self.last_ready = now;
        }
        if let Some(test) = self.test.as_mut() {
            while let Ok(StatsMsg::Delta(delta)) = test.stats_rx.try_recv() {
                test.stats.add(&delta);
            }
        }
        if !self.acked {
            return;
        }
        if now >= self.last_heartbeat + HEARTBEAT_INTERVAL {
            let (cpu, rss) = self.cpu.sample();
            self.send(&protocol::heartbeat(&id, self.state, cpu, rss));
            self.last_heartbeat = now;
        }
        if now >= self.last_stats + STATS_INTERVAL {
            self.send_stats();
            self.last_stats = now;
        }
    }

    fn send_stats(&mut self) {
        let Some(test) = self.test.as_mut() else {
            return;
        };
        while let Ok(StatsMsg::Delta(delta)) = test.stats_rx.try_recv() {
            test.stats.add(&delta);
        }
        let id = &self.config.node_id;
        let msg = protocol::encode("stats", id, |e: &mut Encoder| {
            test.stats.write_report(e, &test.classes);
        });
        self.send(&msg);
    }

    /// Handles one message.
    fn handle(&mut self, msg: MasterMsg) {
        let id = self.config.node_id.clone();
        match msg {
            MasterMsg::Ack { index } => {
                if !self.acked {
                    eprintln!(
                        "mqload: worker {id} joined the master at {}:{} (index {})",
                        self.config.master_host,
                        self.config.master_port,
                        index.map_or("?".into(), |i| i.to_string())
                    );
                }
                self.acked = true;
                self.joining_since = None;
            }
            MasterMsg::Spawn(_) if self.stopping.is_some() => {
                eprintln!("mqload: worker: ignoring a spawn while the users stop");
            }
            MasterMsg::Spawn(spawn) => {
                self.send(&protocol::bare("spawning", &id));
                if spawn.timestamp <= self.last_spawn {
                    return;
                }
                self.last_spawn = spawn.timestamp;
                self.spawn(&spawn);
            }
            MasterMsg::Heartbeat => self.master_heartbeat = Some(Instant::now()),
            MasterMsg::Stop => self.begin_stop(AfterStop::Ready),
            MasterMsg::Quit => {
                eprintln!("mqload: worker: the master said quit");
                self.begin_stop(AfterStop::Quit);
            }
            MasterMsg::Reconnect => {
                self.drop_link("the master asked for a reconnect");
                self.reconnect_at = Instant::now();
            }
            MasterMsg::SpawningComplete | MasterMsg::Other(_) => {}
        }
    }

    fn spawn(&mut self, spawn: &Spawn) {
        self.state = WorkerState::Spawning;
        if self.test.is_none() && !self.start_or_refuse(spawn) {
            return;
        }
        let (users, subs) = self.count_classes(spawn);
        if self.refuse_share(spawn, users, subs) {
            return;
        }
        if let Some(test) = self.test.as_mut() {
            // The master paces the ramp: what one message adds starts within a second.
            let added = users.saturating_sub(test.users);
            test.engine.send(Control::SetUsers {
                count: users,
                spawn_rate: (added as f64).max(1.0),
            });
            test.users = users;
            test.subs.set(&test.plan, subs);
            test.classes = spawn.user_classes_count.clone();
            eprintln!(
                "mqload: worker: {users} users, {} subscribers",
                test.subs.count
            );
        }
        if self.cli.reset_stats
            && let Some(test) = self.test.as_mut()
        {
            while test.stats_rx.try_recv().is_ok() {} // as a Python worker's reset_all
            test.stats.reset();
        }
        let id = self.config.node_id.clone();
        self.send(&protocol::spawning_complete(&id, &spawn.user_classes_count));
        self.state = WorkerState::Running;
    }

    /// Starts the test for the first spawn; false (the master told why, the worker ready
    /// again) when the options do not make a plan.
    fn start_or_refuse(&mut self, spawn: &Spawn) -> bool {
        match self.start_test(spawn) {
            Ok(test) => {
                self.test = Some(test);
                true
            }
            Err(why) => {
                let id = self.config.node_id.clone();
                let why = why.to_string();
                eprintln!("mqload: worker: cannot start the test: {why}");
                self.send(&protocol::exception(
                    &id,
                    &why,
                    "(mqload worker configuration)",
                ));
                self.send(&protocol::spawning_complete(&id, &[]));
                self.state = WorkerState::Ready;
                false
            }
        }
    }

    /// Publishing users and subscribers the spawn asks for; a subscriber class without a
    /// topic filter is told to the master once and not started.
    fn count_classes(&mut self, spawn: &Spawn) -> (u64, u64) {
        let id = self.config.node_id.clone();
        let mut users: u64 = 0;
        let mut subs: u64 = 0;
        let filter = self
            .test
            .as_ref()
            .is_some_and(|t| t.plan.subscribe.is_some());
        for (class, n) in &spawn.user_classes_count {
            if subscribers::is_subscriber_class(class) {
                subs = subs.saturating_add(*n);
                if *n > 0 && !filter && self.warned_classes.insert(class.clone()) {
                    let why = format!(
                        "user class {class}: subscribers need a topic filter: give the master --mqtt-subscribe-topic (or this worker --subscribe-topic); its users are not started"
                    );
                    eprintln!("mqload: worker: {why}");
                    self.send(&protocol::exception(&id, &why, "(mqload worker)"));
                }
            } else {
                users = users.saturating_add(*n);
            }
        }
        (users, subs)
    }

    /// Checks this worker's share against the open-file limit and the budget; true when it
    /// is refused (the master told why, the worker keeps its current users).
    fn refuse_share(&mut self, spawn: &Spawn, users: u64, subs: u64) -> bool {
        // A count from the network is bounded here: past the open-file limit every extra
        // connection would fail anyway, and each planned user takes memory.
        let limit = crate::plan::raise_open_file_limit();
        let over_limit = users.saturating_add(subs).saturating_add(64) > limit;
        let Some(test) = self.test.as_ref() else {
            return false;
        };
        let run_time = budget::master_run_time(&spawn.parsed_options);
        let (lines, mut verdict) = budget::check(&self.cli, &test.plan, users, run_time);
        if over_limit {
            verdict = Err(budget::ShareRefused::OpenFileLimit {
                users,
                subscribers: subs,
                limit,
            });
        }
        if test.users == 0 || verdict.is_err() {
            for line in lines {
                eprintln!("mqload: worker: {line}");
            }
        }
        let Err(why) = verdict else {
            return false;
        };
        let why = why.to_string();
        let kept = test.classes.clone();
        let id = self.config.node_id.clone();
        eprintln!("mqload: worker: refusing {users} users: {why}");
        self.send(&protocol::exception(&id, &why, "(mqload worker limits)"));
        self.send(&protocol::spawning_complete(&id, &kept));
        self.state = WorkerState::Running;
        true
    }

    fn start_test(&mut self, spawn: &Spawn) -> Result<Test, PlanError> {
        let mut cli = self.cli.clone();
        for problem in options::apply(&mut cli, spawn, &self.given) {
            eprintln!("mqload: worker: {problem}");
            let id = self.config.node_id.clone();
            self.send(&protocol::exception(
                &id,
                &problem,
                "(mqload worker options)",
            ));
        }
        cli.users = 2;
        let plan = Arc::new(subscribers::plan(&cli)?);
        eprintln!(
            "mqload: worker: test starting -> {}:{}, QoS {}, {} msg/s per user, run id {}",
            plan.host,
            plan.addrs[0].port(),
            plan.qos as u8,
            plan.throughput,
            plan.run_id
        );
        let epoch = Epoch::now();
        let (stats_tx, stats_rx) = crossbeam_channel::unbounded();
        let stats = LocustStats::new(plan.request_names.clone(), epoch.unix);
        let subs = Subscribers::new(stats_tx.clone(), epoch);
        let engine = Engine::start(Arc::clone(&plan), stats_tx, epoch);
        Ok(Test {
            subs,
            engine,
            plan,
            stats_rx,
            stats,
            classes: Vec::new(),
            users: 0,
        })
    }

    /// Starts stopping the users; [`Worker::stopped`] finishes once they have.
    fn begin_stop(&mut self, after: AfterStop) {
        if after == AfterStop::Quit || self.stopping.is_none() {
            self.stopping = Some(after);
        }
        if let Some(test) = &self.test {
            test.engine.begin_stop();
            test.subs.begin_stop();
            self.state = WorkerState::Stopping;
        }
    }

    /// The users have stopped: last report, then client_stopped and ready again, or quit.
    /// True when the worker must exit.
    fn stopped(&mut self) -> bool {
        let Some(after) = self.stopping.take() else {
            return false;
        };
        self.stop_test();
        let id = self.config.node_id.clone();
        match after {
            AfterStop::Ready => {
                self.send(&protocol::bare("client_stopped", &id));
                self.send(&protocol::client_ready(&id));
                self.acked = false;
                self.last_ready = Instant::now();
                self.state = WorkerState::Ready;
                false
            }
            AfterStop::Quit => {
                self.finish(true);
                true
            }
        }
    }

    /// Stops the users (waiting for them) and sends the last statistics.
    fn stop_test(&mut self) {
        let Some(test) = self.test.take() else {
            return;
        };
        self.state = WorkerState::Stopping;
        let Test {
            engine,
            stats_rx,
            mut stats,
            subs,
            ..
        } = test;
        // Publishers first: subscribers stay a grace period after them.
        let errors = engine.stop();
        for e in errors.into_iter().chain(subs.stop()) {
            eprintln!("mqload: worker: {e}");
        }
        while let Ok(StatsMsg::Delta(delta)) = stats_rx.try_recv() {
            stats.add(&delta);
        }
        let id = self.config.node_id.clone();
        let msg = protocol::encode("stats", &id, |e: &mut Encoder| {
            stats.write_report(e, &[]);
        });
        self.send(&msg);
        self.last_stats = Instant::now();
    }

    /// Stops, reports, says quit (when `quit`), and gives the bytes time to leave.
    fn finish(&mut self, quit: bool) {
        self.stop_test();
        if quit {
            let id = self.config.node_id.clone();
            self.send(&protocol::bare("quit", &id));
        }
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while self
            .link
            .as_ref()
            .is_some_and(|l| !l.zmtp.pending_output().is_empty() && l.zmtp.is_ready())
            && Instant::now() < deadline
        {
            self.flush();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn open(addr: SocketAddr, poll: &Poll) -> io::Result<mio::net::TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    let mut stream = mio::net::TcpStream::from_std(stream);
    poll.registry()
        .register(&mut stream, Token(0), Interest::READABLE)?;
    Ok(stream)
}
