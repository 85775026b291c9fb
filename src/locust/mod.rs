//! mqload as a native worker of a Python Locust master: ZMTP 3 + msgpack in the crate, the
//! engine driven live through its control channel, statistics in Locust's own shape.

pub mod budget;
pub mod msgpack;
pub mod node;
pub mod options;
pub mod protocol;
pub mod stats;
pub mod subscribers;
pub mod sys;
pub mod zmtp;

use std::time::Duration;

use crate::cli::Cli;
use crate::duration::parse_duration;
use crate::exit_code::EXIT_CONFIG;

/// Locust's `MASTER_HEARTBEAT_TIMEOUT`: a worker gives up on a silent master after this.
pub const DEFAULT_MASTER_TIMEOUT: Duration = Duration::from_secs(60);

/// `mqload --worker`: joins the master and runs what it orders; returns the exit code
/// (0 after quit or a signal, 1 when the master went silent or none answered within
/// [`node::JOIN_TIMEOUT`], 2 for a configuration mistake).
pub fn run(cli: &Cli) -> u8 {
    let Some(master_timeout) =
        parse_duration(&cli.master_heartbeat_timeout).filter(|d| !d.is_zero())
    else {
        eprintln!(
            "mqload: error: --master-heartbeat-timeout {:?} is not a duration above zero: use e.g. 60s",
            cli.master_heartbeat_timeout
        );
        return EXIT_CONFIG;
    };
    // Check the worker's own options now (certificates, QoS...), so a mistake is one line
    // at start, not an exception at the first spawn. The master may still give the host.
    // Two users, so a client id shared by every user is refused here as it is standalone.
    let mut check = cli.clone();
    check.users = 2;
    if check.host.is_none() {
        check.host = Some("127.0.0.1".into());
    }
    if let Err(e) = subscribers::plan(&check) {
        eprintln!("mqload: error: {e}");
        return EXIT_CONFIG;
    }
    crate::signals::install();
    let config = node::WorkerConfig {
        master_host: cli.master_host.clone(),
        master_port: cli.master_port,
        master_timeout,
        node_id: sys::node_id(),
    };
    eprintln!(
        "mqload: worker {} waiting for the Locust master at {}:{}",
        config.node_id, config.master_host, config.master_port
    );
    let mut worker = match node::Worker::new(config, cli.clone(), options::given_options(cli)) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("mqload: error: cannot create an event loop: {e}");
            return 1;
        }
    };
    match worker.run() {
        node::Exit::Quit => 0,
        node::Exit::MasterGone => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_master_timeout_defaults_to_locusts_60_s() {
        let cli = Cli::parse_from(["mqload", "--worker"]);
        assert_eq!(
            parse_duration(&cli.master_heartbeat_timeout),
            Some(DEFAULT_MASTER_TIMEOUT)
        );
        assert_eq!(DEFAULT_MASTER_TIMEOUT, Duration::from_secs(60));
        assert_eq!(cli.master_port, 5557);
        assert_eq!(
            node::JOIN_TIMEOUT,
            Duration::from_secs(305),
            "Locust's 5 s x 61"
        );
    }
}
