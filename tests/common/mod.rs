//! Shared harness for the integration tests: a throwaway PKI, a real mosquitto
//! with TLS mutual auth (as AWS IoT Core wants), observers on the broker's side,
//! and a runner for the `mqload` binary. Each `tests/*.rs` does `mod common;`.
//!
//! A missing broker is a failure under `CI=true` and a skip elsewhere (see
//! [`require_broker_tools`]), so `cargo test` works on a bare laptop while CI
//! can never go green by skipping.
//!
//! The broker listens on loopback only: a TLS port that requires a client
//! certificate (what mqload connects to) and a plain-TCP port for test-side
//! observers ([`Subscriber`], [`sys_messages_received`]), so observing never
//! needs certificates and never shares the TLS listener's settings.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The external programs the broker-backed tests need.
pub const BROKER_TOOLS: &[&str] = &["mosquitto", "mosquitto_sub", "mosquitto_pub", "openssl"];

/// How long [`Broker::start`] waits for the listeners.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Subscriber::start`] waits for the broker to log the subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The repository root (where Cargo.toml, pki/ and scripts/ are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when running under CI (`CI=true`, as `.ci/run` sets it).
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true" | "1" | "yes")
    )
}

/// Full path of an external program: `PATH` first, then the sbin folders
/// (Debian installs mosquitto in /usr/sbin, often not in a user's `PATH`).
pub fn tool_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The gate for a test that needs `name`. Present: true. Missing under
/// `CI=true`: panics (a missing broker is a failure, never a skip). Missing
/// elsewhere: prints why and returns false; the test should `return` early.
pub fn require_tool(name: &str) -> bool {
    if tool_path(name).is_some() {
        return true;
    }
    if in_ci() {
        panic!(
            "{name} is not installed, and under CI=true a missing broker is a failure, not a skip: \
             install it with `apt-get install -y mosquitto mosquitto-clients openssl` \
             (scripts/test.sh does this when run as root)"
        );
    }
    eprintln!("skipping: {name} not installed (run scripts/test.sh)");
    false
}

/// [`require_tool`] for every one of [`BROKER_TOOLS`]. Start broker tests with
/// `if !common::require_broker_tools() { return; }`.
pub fn require_broker_tools() -> bool {
    BROKER_TOOLS.iter().all(|tool| require_tool(tool))
}

/// Polls `done` every 10 ms until it is true or `timeout` has passed; returns
/// its last answer.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read the
/// port, close). Another process can take it before it is used; [`Broker::start`]
/// retries with fresh ports when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// A fresh local PKI made by `pki/local-ca.sh` in a temporary folder that
/// lives as long as this value. File names are the seed's.
pub struct Pki {
    pub dir: TempDir,
    /// CA certificate (`root_ca.pem`): `--cafile` for mqload, `cafile` for the broker.
    pub ca: PathBuf,
    /// Client certificate (`certificate.pem.crt`): `--cert`.
    pub cert: PathBuf,
    /// Client private key, PKCS#8 PEM (`private.pem.key`): `--key`.
    pub key: PathBuf,
    /// Broker certificate (`broker.crt`), SAN DNS:localhost and IP:127.0.0.1.
    pub broker_cert: PathBuf,
    /// Broker private key (`broker.key`).
    pub broker_key: PathBuf,
}

impl Pki {
    /// RSA-2048 keys, or ECDSA P-256 with `ecdsa`. Panics with the script's
    /// output when it fails (openssl missing, say).
    pub fn new(ecdsa: bool) -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("mqload-pki.")
            .tempdir()
            .expect("create a temp dir for the PKI");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("pki/local-ca.sh")).arg(dir.path());
        if ecdsa {
            cmd.arg("--ecdsa");
        }
        let out = cmd.output().expect("run bash pki/local-ca.sh");
        assert!(
            out.status.success(),
            "pki/local-ca.sh failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = |name: &str| dir.path().join(name);
        Pki {
            ca: path("root_ca.pem"),
            cert: path("certificate.pem.crt"),
            key: path("private.pem.key"),
            broker_cert: path("broker.crt"),
            broker_key: path("broker.key"),
            dir,
        }
    }
}

/// `p` as text, for a command line; temp paths are always UTF-8.
pub fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

impl Pki {
    /// `--cafile CA --cert CERT --key KEY`: mqload's client-certificate options for this PKI.
    pub fn client_args(&self) -> [&str; 6] {
        [
            "--cafile",
            utf8(&self.ca),
            "--cert",
            utf8(&self.cert),
            "--key",
            utf8(&self.key),
        ]
    }
}

/// A mosquitto of our own, configured by `scripts/mosquitto-conf.sh` (the same
/// config as `scripts/local-broker.sh` and `scripts/bench-local.sh`):
/// `sys_interval 1`, `allow_anonymous true`, `persistence false`,
/// `max_inflight_messages 0` (unlimited towards subscribers),
/// `max_queued_messages 100000`, `set_tcp_nodelay true`, logging to a file.
/// Stopped (SIGTERM, then SIGKILL after 5 s) on drop.
pub struct Broker {
    /// TLS listener on 127.0.0.1, client certificate required: where mqload connects.
    pub port: u16,
    /// Plain-TCP listener on 127.0.0.1 for observers without certificates.
    pub plain_port: u16,
    child: Option<Child>,
    dir: TempDir,
    conf: PathBuf,
    log_path: PathBuf,
    out_path: PathBuf,
}

impl Broker {
    /// Starts mosquitto with `pki`'s broker certificate on two free ports and
    /// waits until it accepts connections. Panics with the broker's log when it
    /// does not come up within 5 s.
    pub fn start(pki: &Pki) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("mqload-broker.")
            .tempdir()
            .expect("create a temp dir for the broker");
        let mut broker = Broker {
            port: 0,
            plain_port: 0,
            child: None,
            conf: dir.path().join("mosquitto.conf"),
            log_path: dir.path().join("mosquitto.log"),
            out_path: dir.path().join("mosquitto.out"),
            dir,
        };
        // free_port() can race with other tests or outgoing connections that
        // take the same ephemeral port: retry on "Address already in use".
        for attempt in 1..=5 {
            broker.port = free_port();
            broker.plain_port = free_port();
            if broker.port == broker.plain_port {
                continue;
            }
            broker.write_config(pki);
            match broker.spawn_and_wait() {
                Ok(()) => return broker,
                Err(why) if why.contains("Address already in use") && attempt < 5 => continue,
                Err(why) => panic!("{why}"),
            }
        }
        panic!("mosquitto: could not find two free ports in 5 attempts");
    }

    fn write_config(&self, pki: &Pki) {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/mosquitto-conf.sh"))
            .arg(pki.dir.path())
            .arg(self.port.to_string())
            .arg(self.plain_port.to_string())
            .arg(&self.log_path)
            .output()
            .expect("run bash scripts/mosquitto-conf.sh");
        assert!(
            out.status.success(),
            "scripts/mosquitto-conf.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(&self.conf, &out.stdout).expect("write mosquitto.conf");
    }

    /// Spawns mosquitto on the current config and waits for the plain port to
    /// accept. mosquitto opens its listeners in file order (TLS, then plain)
    /// before it serves, so a connect to the plain port means both listen; the
    /// TLS port is not probed because a bare TCP probe logs a TLS error there.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let mosquitto = tool_path("mosquitto").ok_or("mosquitto is not installed")?;
        // Truncate the log, so that log() and readiness checks see this run only.
        let _ = fs::remove_file(&self.log_path);
        let out = fs::File::create(&self.out_path)
            .map_err(|e| format!("create {:?}: {e}", self.out_path))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(mosquitto);
        cmd.arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Many simulated devices means many sockets: lift the broker's soft
        // fd limit to the hard one (the test process itself is untouched).
        // SAFETY: getrlimit/setrlimit are async-signal-safe and touch no memory
        // of the parent; this runs in the forked child before exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("spawn mosquitto: {e}"))?;
        self.child = Some(child);

        let plain: SocketAddr = ([127, 0, 0, 1], self.plain_port).into();
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "mosquitto exited during startup ({status}) on ports {}/{}:\n{}",
                    self.port,
                    self.plain_port,
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&plain, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "mosquitto did not accept on 127.0.0.1:{} within {:?}:\n{}",
                    self.plain_port,
                    BROKER_START_TIMEOUT,
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The broker's process id while it runs (for CPU or memory sampling).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the broker process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the broker abruptly (SIGKILL), as a crash would: no DISCONNECTs,
    /// the kernel closes every connection. For fault tests; see [`Broker::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker gracefully (SIGTERM), waiting up to 5 s before SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we have not yet reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let exited = wait_until(Duration::from_secs(5), || {
                !matches!(child.try_wait(), Ok(None))
            });
            if !exited {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same ports and config (stopping it first
    /// if it still runs). Clients reconnecting to `port` find it there. The log
    /// starts afresh. Panics if it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.spawn_and_wait() {
            panic!("restart: {why}");
        }
    }

    /// The broker's log so far (its log file, then anything it printed on
    /// stdout/stderr): put it in assertion messages.
    pub fn log(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        let out = fs::read_to_string(&self.out_path).unwrap_or_default();
        if out.trim().is_empty() {
            log
        } else {
            format!("{log}--- mosquitto stdout/stderr ---\n{out}")
        }
    }

    /// Where the broker logs.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The generated mosquitto.conf.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The mqload options that point it at `broker` over TLS with `pki`'s client
/// certificate: `--host 127.0.0.1 --port P --cafile .. --cert .. --key ..`.
/// 127.0.0.1 rather than localhost: the broker listens on IPv4 loopback only,
/// and localhost may resolve to ::1 first.
pub fn broker_args(pki: &Pki, broker: &Broker) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        broker.port.to_string(),
        "--cafile".into(),
        path(&pki.ca),
        "--cert".into(),
        path(&pki.cert),
        "--key".into(),
        path(&pki.key),
    ]
}

/// One message a [`Subscriber`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

static SUBSCRIBER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// `mosquitto_sub` on the broker's plain port with QoS 1, recording every
/// message to a file. Payloads are written hex-encoded (`-F '%t<TAB>%x'`), one
/// message a line, so binary payloads with newlines survive exactly.
///
/// QoS 1 with `max_queued_messages 100000` on the broker: a slow subscriber
/// falls behind rather than losing messages, up to 100k queued.
pub struct Subscriber {
    child: Option<Child>,
    out_path: PathBuf,
    err_path: PathBuf,
    _dir: TempDir,
    pub client_id: String,
    pub filter: String,
}

impl Subscriber {
    /// Subscribes to `filter` (wildcards allowed) and returns once the broker
    /// has logged the subscription (mosquitto is single-threaded and logs it
    /// while handling SUBSCRIBE, so anything published after this returns is
    /// delivered). Panics if that does not happen within 5 s.
    pub fn start(broker: &Broker, filter: &str) -> Subscriber {
        let dir = tempfile::Builder::new()
            .prefix("mqload-sub.")
            .tempdir()
            .expect("temp dir for subscriber");
        let client_id = format!(
            "hsub-{}-{}",
            std::process::id(),
            SUBSCRIBER_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let out_path = dir.path().join("messages");
        let err_path = dir.path().join("stderr");
        let out = fs::File::create(&out_path).expect("create subscriber output");
        let err = fs::File::create(&err_path).expect("create subscriber stderr");
        let sub = tool_path("mosquitto_sub").expect("mosquitto_sub is not installed");
        let child = Command::new(sub)
            .args(["-h", "127.0.0.1", "-p", &broker.plain_port.to_string()])
            .args(["-i", &client_id, "-q", "1", "-t", filter, "-F", "%t\t%x"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn mosquitto_sub");
        let mut subscriber = Subscriber {
            child: Some(child),
            out_path,
            err_path,
            _dir: dir,
            client_id,
            filter: filter.to_string(),
        };
        let expected = format!(" {} 1 {}\n", subscriber.client_id, filter);
        let subscribed = wait_until(SUBSCRIBE_TIMEOUT, || {
            fs::read_to_string(broker.log_path()).is_ok_and(|log| log.contains(&expected))
        });
        if !subscribed {
            let err = fs::read_to_string(&subscriber.err_path).unwrap_or_default();
            subscriber.kill_child();
            panic!(
                "mosquitto_sub did not subscribe to {filter:?} within {SUBSCRIBE_TIMEOUT:?}\n\
                 mosquitto_sub stderr: {err}\nbroker log:\n{}",
                broker.log()
            );
        }
        subscriber
    }

    /// Every complete message received so far.
    pub fn messages(&self) -> Vec<Message> {
        let text = fs::read_to_string(&self.out_path).unwrap_or_default();
        // A line is complete only once its newline is written.
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.is_empty())
            .map(parse_line)
            .collect()
    }

    /// How many messages were received so far.
    pub fn count(&self) -> usize {
        self.messages().len()
    }

    /// Waits until at least `n` messages arrived or `timeout` passed; returns
    /// what arrived either way (the caller asserts on the count).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Message> {
        wait_until(timeout, || self.count() >= n);
        self.messages()
    }

    /// Stops mosquitto_sub and returns every message it received.
    pub fn stop(mut self) -> Vec<Message> {
        self.kill_child();
        self.messages()
    }

    /// What mosquitto_sub printed on stderr (for assertion messages).
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err_path).unwrap_or_default()
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we have not yet reaped.
            // SIGTERM lets mosquitto_sub disconnect cleanly; it writes each
            // message as it arrives, so nothing is left in a buffer.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            if !wait_until(Duration::from_secs(2), || {
                !matches!(child.try_wait(), Ok(None))
            }) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.kill_child();
    }
}

fn parse_line(line: &str) -> Message {
    let (topic, hex) = line.rsplit_once('\t').unwrap_or(("", line));
    Message {
        topic: topic.to_string(),
        payload: decode_hex(hex),
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("mosquitto_sub printed a non-hex payload byte {c:?}"),
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| digit(pair[0]) << 4 | digit(*pair.get(1).unwrap_or(&b'0')))
        .collect()
}

/// Reads one retained `$SYS` value from the broker's plain port (waiting up
/// to 3 s for it); None when the broker has not published it.
pub fn sys_value(broker: &Broker, topic: &str) -> Option<String> {
    let sub = tool_path("mosquitto_sub")?;
    let out = Command::new(sub)
        .args(["-h", "127.0.0.1", "-p", &broker.plain_port.to_string()])
        .args(["-C", "1", "-W", "3", "-t", topic])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The broker's `$SYS/broker/publish/messages/received`: PUBLISH packets it
/// received from *every* client since it started (mqload's, but also any
/// mosquitto_pub a test ran), refreshed once a second (`sys_interval 1`), so it
/// lags by up to a second; see [`wait_sys_messages_received`]. Panics when it
/// cannot be read.
pub fn sys_messages_received(broker: &Broker) -> u64 {
    let topic = "$SYS/broker/publish/messages/received";
    let value = sys_value(broker, topic)
        .unwrap_or_else(|| panic!("could not read {topic} from the broker\n{}", broker.log()));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{topic} is not a number: {value:?}"))
}

/// Reads [`sys_messages_received`] until it is at least `min` or `timeout`
/// passed; returns the last value read.
pub fn wait_sys_messages_received(broker: &Broker, min: u64, timeout: Duration) -> u64 {
    let mut last = 0;
    wait_until(timeout, || {
        last = sys_messages_received(broker);
        last >= min
    });
    last
}

/// The mqload binary cargo built for these tests.
pub fn mqload_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mqload"))
}

/// What a finished (or timed-out) child did.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    /// The exit code; None when killed by a signal (always so on a timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// True when it was still running at the timeout and was killed.
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl RunOutput {
    /// A one-paragraph account for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit: {:?}{} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.timed_out {
                " (killed at timeout)"
            } else {
                ""
            },
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

/// Prefixes of the environment variables mqload reads: `LOCUST_*` (the seed's
/// settings) and `MQLOAD_*` (its own, e.g. `MQLOAD_PAYLOAD_BYTES`,
/// `MQLOAD_CLIENT_ID`, `MQLOAD_WAKE_INTERVAL`).
pub const MQLOAD_ENV_PREFIXES: &[&str] = &["LOCUST_", "MQLOAD_"];

/// A `Command` for mqload with `args` and `envs`, and every inherited variable
/// named by [`MQLOAD_ENV_PREFIXES`] removed (the binary reads them, so a
/// developer's exported settings must not leak into tests). `envs` are set
/// after the removal, so a test can still pass any of them explicitly.
pub fn mqload_command<S: AsRef<OsStr>>(args: &[S], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(mqload_bin());
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if MQLOAD_ENV_PREFIXES
            .iter()
            .any(|prefix| name_text.starts_with(prefix))
        {
            cmd.env_remove(&name);
        }
    }
    cmd.args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    cmd
}

/// Load tests share two cores: one at a time (within a test binary) keeps their rates and
/// counts honest.
static ONE_LOAD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the one-load-at-a-time lock until the guard drops; a panicked holder does not
/// poison the rest.
pub fn serial() -> MutexGuard<'static, ()> {
    ONE_LOAD_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Runs mqload to completion, or kills it (SIGKILL) after `timeout`.
pub fn run_mqload<S: AsRef<OsStr>>(
    args: &[S],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> RunOutput {
    run_with_timeout(mqload_command(args, envs), timeout)
}

/// Runs mqload against `broker` over TLS with `pki`'s client certificate ([`broker_args`])
/// plus `extra`, killing it after `timeout`.
pub fn run_against(pki: &Pki, broker: &Broker, extra: &[&str], timeout: Duration) -> RunOutput {
    let mut args = broker_args(pki, broker);
    args.extend(extra.iter().map(|s| s.to_string()));
    run_mqload(&args, &[], timeout)
}

/// Runs `cmd` with stdout and stderr captured, killing it after `timeout`.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> RunOutput {
    run_with_signal(cmd, timeout, None)
}

/// As [`run_with_timeout`], and sends `signal.1` (e.g. `libc::SIGTERM`) once `signal.0` has
/// passed, the way a user's Ctrl-C or an orchestrator's stop would.
pub fn run_with_signal(
    mut cmd: Command,
    timeout: Duration,
    signal: Option<(Duration, i32)>,
) -> RunOutput {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    // Drain both pipes while waiting, or a chatty child blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut signal = signal;
    let finished = wait_until(timeout, || {
        if let Some((after, number)) = signal
            && started.elapsed() >= after
        {
            // SAFETY: kill(2) on the pid of a child we have not reaped yet.
            unsafe { libc::kill(child.id() as i32, number) };
            signal = None;
        }
        !matches!(child.try_wait(), Ok(None))
    });
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for child");
    RunOutput {
        status,
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        timed_out: !finished,
        elapsed: started.elapsed(),
    }
}

/// Publishes `payloads` with `mosquitto_pub` over the broker's TLS port with
/// `pki`'s client certificate, one connection, QoS `qos`. Each payload is one
/// line (`-l`), so payloads must not contain newlines. Panics on failure.
pub fn mosquitto_pub_tls(pki: &Pki, broker: &Broker, topic: &str, qos: u8, payloads: &[&str]) {
    use std::io::Write;
    let publisher = tool_path("mosquitto_pub").expect("mosquitto_pub is not installed");
    let mut child = Command::new(publisher)
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .arg("--cafile")
        .arg(&pki.ca)
        .arg("--cert")
        .arg(&pki.cert)
        .arg("--key")
        .arg(&pki.key)
        .args(["-q", &qos.to_string(), "-t", topic, "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_pub");
    {
        let mut stdin = child.stdin.take().expect("mosquitto_pub stdin");
        for payload in payloads {
            assert!(
                !payload.contains('\n'),
                "mosquitto_pub -l sends one line per message"
            );
            writeln!(stdin, "{payload}").expect("write to mosquitto_pub");
        }
    }
    let out = child.wait_with_output().expect("wait for mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub failed ({}): {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
}

/// `name`'s row (second column) of a Locust `_stats.csv`, by column title; `None` if the file
/// has no such row. Panics, naming the file, if it cannot be read.
pub fn stats_row(path: &Path, name: &str) -> Option<BTreeMap<String, String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let row = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|cells| cells.get(1) == Some(&name))?;
    Some(
        header
            .iter()
            .zip(row)
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect(),
    )
}

/// As [`stats_row`], panicking with the file's text if there is no such row.
pub fn expect_stats_row(path: &Path, name: &str) -> BTreeMap<String, String> {
    stats_row(path, name).unwrap_or_else(|| {
        let text = fs::read_to_string(path).unwrap_or_default();
        panic!("no row {name:?} in {}:\n{text}", path.display())
    })
}

/// `column` of a [`stats_row`] as a count; panics naming the column and the row.
pub fn count(row: &BTreeMap<String, String>, column: &str) -> u64 {
    row.get(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{column} in {row:?}"))
}

/// `mqload broker ARGS` as a child process, its first line read (the listening addresses);
/// [`BrokerProcess::stop`] sends SIGTERM and returns the exit line with the counters.
pub struct BrokerProcess {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// The broker's first line.
    pub first_line: String,
    /// Every socket address in the first line, in order (TCP, then WebSocket if any).
    pub addrs: Vec<SocketAddr>,
}

impl BrokerProcess {
    /// Starts `mqload broker` with `args` (bounded by `--run-time 120s`).
    pub fn start(args: &[&str]) -> BrokerProcess {
        use std::io::BufRead;
        let mut child = Command::new(mqload_bin())
            .arg("broker")
            .args(args)
            .args(["--run-time", "120s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mqload broker");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first_line = String::new();
        stdout
            .read_line(&mut first_line)
            .expect("the broker's first line");
        let addrs: Vec<SocketAddr> = first_line
            .split_whitespace()
            .filter_map(|word| word.trim_end_matches(';').parse().ok())
            .collect();
        assert!(!addrs.is_empty(), "no address in {first_line:?}");
        BrokerProcess {
            child,
            stdout,
            first_line,
            addrs,
        }
    }

    /// SIGTERM; returns the exit line with the counters.
    pub fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait for mqload broker");
        assert!(status.success(), "mqload broker exited with {status}");
        rest
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A counter from the broker's exit line ("messages received 12, ...").
pub fn exit_counter(exit_line: &str, name: &str) -> u64 {
    exit_line
        .split_once(name)
        .and_then(|(_, after)| after.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in {exit_line:?}"))
}
