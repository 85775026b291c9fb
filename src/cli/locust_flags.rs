//! Every flag of `locust --help` (Locust 2.47) and what mqload does with it, so a Locust
//! command line either runs with Locust's meaning or stops with one line naming the flag.

/// What mqload does with one of Locust's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Accepted, with Locust's meaning.
    Supported,
    /// Accepted and parsed, but it changes nothing in mqload; the text says why.
    Ignored(&'static str),
    /// Refused with exit code 2; the text says why and what to do instead.
    Unsupported(&'static str),
}

/// One flag of `locust --help`.
#[derive(Debug, Clone, Copy)]
pub struct LocustFlag {
    /// Long name without the dashes (also its config-file key).
    pub long: &'static str,
    /// Short form, if Locust has one.
    pub short: Option<char>,
    /// Locust's environment variable for it, if any.
    pub env: Option<&'static str>,
    /// A switch (`store_true`): no value on the command line, a boolean in files and env.
    pub switch: bool,
    /// What mqload does with it.
    pub support: Support,
}

const NO_WEB_UI: &str = "mqload has no web UI (it always runs headless)";
const NO_MASTER: &str =
    "mqload is not a Locust master: run `locust --master` and join it with `mqload --worker`";
const NO_TASKS: &str =
    "mqload has no locustfile tasks or User classes: its engine is the MQTT user";

const fn flag(
    long: &'static str,
    short: Option<char>,
    env: Option<&'static str>,
    switch: bool,
    support: Support,
) -> LocustFlag {
    LocustFlag {
        long,
        short,
        env,
        switch,
        support,
    }
}

use Support::{Ignored, Supported, Unsupported};

/// The flags of `locust --help`, in its order.
pub const LOCUST_FLAGS: &[LocustFlag] = &[
    flag("help", Some('h'), None, true, Supported),
    flag(
        "locustfile",
        Some('f'),
        Some("LOCUST_LOCUSTFILE"),
        false,
        Ignored("mqload's engine replaces the locustfile (a note says so on stderr)"),
    ),
    flag("config", None, None, false, Supported),
    flag("host", Some('H'), Some("LOCUST_HOST"), false, Supported),
    flag("users", Some('u'), Some("LOCUST_USERS"), false, Supported),
    flag(
        "spawn-rate",
        Some('r'),
        Some("LOCUST_SPAWN_RATE"),
        false,
        Supported,
    ),
    flag(
        "run-time",
        Some('t'),
        Some("LOCUST_RUN_TIME"),
        false,
        Supported,
    ),
    flag("list", Some('l'), None, true, Unsupported(NO_TASKS)),
    flag(
        "config-users",
        None,
        Some("LOCUST_CONFIG_USERS"),
        false,
        Unsupported(NO_TASKS),
    ),
    flag(
        "web-host",
        None,
        Some("LOCUST_WEB_HOST"),
        false,
        Unsupported(NO_WEB_UI),
    ),
    flag(
        "web-port",
        Some('P'),
        Some("LOCUST_WEB_PORT"),
        false,
        Unsupported(NO_WEB_UI),
    ),
    flag("headless", None, Some("LOCUST_HEADLESS"), true, Supported),
    flag(
        "autostart",
        None,
        Some("LOCUST_AUTOSTART"),
        true,
        Unsupported(NO_WEB_UI),
    ),
    flag(
        "autoquit",
        None,
        Some("LOCUST_AUTOQUIT"),
        false,
        Unsupported(NO_WEB_UI),
    ),
    flag(
        "web-login",
        None,
        Some("LOCUST_WEB_LOGIN"),
        true,
        Unsupported(NO_WEB_UI),
    ),
    flag(
        "tls-cert",
        None,
        Some("LOCUST_TLS_CERT"),
        false,
        Unsupported(
            "it serves Locust's web UI over HTTPS; the broker's client certificate is --cert",
        ),
    ),
    flag(
        "tls-key",
        None,
        Some("LOCUST_TLS_KEY"),
        false,
        Unsupported("it serves Locust's web UI over HTTPS; the broker's client key is --key"),
    ),
    flag(
        "class-picker",
        None,
        Some("LOCUST_USERCLASS_PICKER"),
        true,
        Unsupported(NO_WEB_UI),
    ),
    flag(
        "web-base-path",
        None,
        Some("LOCUST_WEB_BASE_PATH"),
        false,
        Unsupported(NO_WEB_UI),
    ),
    flag(
        "master",
        None,
        Some("LOCUST_MODE_MASTER"),
        true,
        Unsupported(NO_MASTER),
    ),
    flag(
        "master-bind-host",
        None,
        Some("LOCUST_MASTER_BIND_HOST"),
        false,
        Unsupported(NO_MASTER),
    ),
    flag(
        "master-bind-port",
        None,
        Some("LOCUST_MASTER_BIND_PORT"),
        false,
        Unsupported(NO_MASTER),
    ),
    flag(
        "expect-workers",
        None,
        Some("LOCUST_EXPECT_WORKERS"),
        false,
        Unsupported(NO_MASTER),
    ),
    flag(
        "expect-workers-max-wait",
        None,
        Some("LOCUST_EXPECT_WORKERS_MAX_WAIT"),
        false,
        Unsupported(NO_MASTER),
    ),
    flag(
        "enable-rebalancing",
        None,
        None,
        true,
        Unsupported(NO_MASTER),
    ),
    flag("worker", None, Some("LOCUST_MODE_WORKER"), true, Supported),
    flag(
        "processes",
        None,
        Some("LOCUST_PROCESSES"),
        false,
        Supported,
    ),
    flag(
        "master-host",
        None,
        Some("LOCUST_MASTER_NODE_HOST"),
        false,
        Supported,
    ),
    flag(
        "master-port",
        None,
        Some("LOCUST_MASTER_NODE_PORT"),
        false,
        Supported,
    ),
    flag(
        "tags",
        Some('T'),
        Some("LOCUST_TAGS"),
        false,
        Unsupported(NO_TASKS),
    ),
    flag(
        "exclude-tags",
        Some('E'),
        Some("LOCUST_EXCLUDE_TAGS"),
        false,
        Unsupported(NO_TASKS),
    ),
    flag("csv", None, Some("LOCUST_CSV"), false, Supported),
    flag(
        "csv-full-history",
        None,
        Some("LOCUST_CSV_FULL_HISTORY"),
        true,
        Supported,
    ),
    flag(
        "print-stats",
        None,
        Some("LOCUST_PRINT_STATS"),
        true,
        Ignored("mqload always prints the stats table every 2 s (unless --only-summary)"),
    ),
    flag(
        "only-summary",
        None,
        Some("LOCUST_ONLY_SUMMARY"),
        true,
        Supported,
    ),
    flag(
        "reset-stats",
        None,
        Some("LOCUST_RESET_STATS"),
        true,
        Supported,
    ),
    flag("html", None, Some("LOCUST_HTML"), false, Supported),
    flag("json", None, None, true, Supported),
    flag("json-file", None, None, false, Supported),
    flag(
        "skip-log-setup",
        None,
        Some("LOCUST_SKIP_LOG_SETUP"),
        true,
        Ignored("mqload has no Python logging to set up"),
    ),
    flag(
        "loglevel",
        Some('L'),
        Some("LOCUST_LOGLEVEL"),
        false,
        Ignored(
            "the level is checked as Locust checks it, but mqload's stderr lines have no levels",
        ),
    ),
    flag("logfile", None, Some("LOCUST_LOGFILE"), false, Supported),
    flag("show-task-ratio", None, None, true, Unsupported(NO_TASKS)),
    flag(
        "show-task-ratio-json",
        None,
        None,
        true,
        Unsupported(NO_TASKS),
    ),
    flag("version", Some('V'), None, true, Supported),
    flag(
        "exit-code-on-error",
        None,
        Some("LOCUST_EXIT_CODE_ON_ERROR"),
        false,
        Supported,
    ),
    flag(
        "stop-timeout",
        Some('s'),
        Some("LOCUST_STOP_TIMEOUT"),
        false,
        Supported,
    ),
    flag("equal-weights", None, None, true, Unsupported(NO_TASKS)),
    flag(
        "profile",
        None,
        None,
        false,
        Ignored("it only labels runs for Locust's own dashboards"),
    ),
    flag(
        "otel",
        None,
        Some("LOCUST_ENABLE_OPENTELEMETRY"),
        true,
        Unsupported("mqload does not export OpenTelemetry; use --csv, --json or --report-json"),
    ),
];

/// The Locust flag a command-line word names (`--web-port`, `--web-port=1`, `-P`, `-P1`).
pub fn find_by_word(word: &str) -> Option<&'static LocustFlag> {
    if let Some(long) = word.strip_prefix("--") {
        let long = long.split_once('=').map_or(long, |(name, _)| name);
        return find_by_long(long);
    }
    let short = word.strip_prefix('-')?.chars().next()?;
    LOCUST_FLAGS.iter().find(|f| f.short == Some(short))
}

/// The Locust flag with this long name (no dashes).
pub fn find_by_long(long: &str) -> Option<&'static LocustFlag> {
    LOCUST_FLAGS.iter().find(|f| f.long == long)
}

/// Locust's reading of a switch's value in a config file or the environment (configargparse:
/// `true yes on 1` / `false no off 0`, any case); `None` for anything else.
pub fn switch_value(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The one line for a Locust flag mqload refuses; `from` says where it was given.
pub fn unsupported_line(flag: &LocustFlag, why: &str, from: &str) -> String {
    format!("Locust's --{} ({from}) is not supported: {why}", flag.long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_find_their_flag() {
        assert_eq!(find_by_word("--web-port").map(|f| f.long), Some("web-port"));
        assert_eq!(
            find_by_word("--web-port=8089").map(|f| f.long),
            Some("web-port")
        );
        assert_eq!(find_by_word("-P").map(|f| f.long), Some("web-port"));
        assert_eq!(find_by_word("-T").map(|f| f.long), Some("tags"));
        assert!(find_by_word("--no-such-flag").is_none());
        assert!(find_by_word("word").is_none());
    }

    #[test]
    fn switch_values_are_configargparses() {
        for t in ["1", "true", "TRUE", "yes", "On"] {
            assert_eq!(switch_value(t), Some(true), "{t}");
        }
        for f in ["0", "false", "No", "off"] {
            assert_eq!(switch_value(f), Some(false), "{f}");
        }
        for other in ["", "y", "t", "2", "enabled"] {
            assert_eq!(switch_value(other), None, "{other}");
        }
    }
}
