//! The command line assembled as Locust assembles it: config files < environment < command
//! line, Locust's switch values, `-H` URLs, and one line for any flag mqload does not take.
//!
//! Config files, lowest first (configargparse's order): `~/.locust.conf`, `./locust.conf`,
//! `./pyproject.toml` (`[tool.locust]`), then `--config FILE`. A key is a long option without
//! its dashes, spelled as on the command line (`spawn-rate`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use super::config_file::{self, Setting, SettingValue};
use super::host_url::HostUrl;
use super::locust_flags::{self, Support};
use super::{Cli, TransportArg};

/// Why the command line did not give a runnable [`Cli`].
#[derive(Debug)]
pub enum LoadError {
    /// Help or version was asked for (clap prints it and exits 0).
    Display(clap::Error),
    /// A user mistake: one line naming the fix; exit code 2.
    Usage(String),
}

/// Where the process finds its config files.
#[derive(Debug, Clone)]
pub struct Places {
    /// The working directory (`locust.conf`, `pyproject.toml`).
    pub cwd: PathBuf,
    /// The home directory (`~/.locust.conf`), if known.
    pub home: Option<PathBuf>,
}

impl Places {
    /// The process's working directory and `$HOME`.
    pub fn of_process() -> Places {
        Places {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// The options of this process (its arguments, environment and config files), and the notes
/// to print for Locust flags that are accepted but change nothing.
pub fn load() -> Result<(Cli, Vec<String>), LoadError> {
    load_from(std::env::args_os().collect(), &Places::of_process())
}

/// As [`load`], for the given arguments (the first is the program name).
pub fn load_from(
    mut args: Vec<OsString>,
    places: &Places,
) -> Result<(Cli, Vec<String>), LoadError> {
    // `mqload find-limit [run options]`: the run's options, read as for a run, then the search.
    let find_limit = args.get(1).is_some_and(|a| a == super::FIND_LIMIT);
    if find_limit {
        args.remove(1);
    }
    let command = Cli::command();
    let first = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(|e| clap_error(e, None))?;
    if let Some(word) = first.subcommand_name() {
        if word == super::FIND_LIMIT {
            return Err(LoadError::Usage(format!(
                "put the run's options after `{word}`: mqload {word} [options]"
            )));
        }
        let cli = Cli::from_arg_matches(&first).map_err(|e| clap_error(e, None))?;
        return Ok((cli, Vec::new()));
    }
    check_unsupported_env()?;
    let typed: HashSet<String> = first
        .ids()
        .filter(|id| first.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_owned())
        .collect();
    let mut given = given_ids(&first);
    let mut prefix: Vec<OsString> = Vec::new();
    // Locust's LOCUST_HOST is `-H`'s variable; it beats the seed's LOCUST_MQTT_HOST.
    if let Ok(host) = std::env::var("LOCUST_HOST")
        && !host.is_empty()
        && first.value_source("host") != Some(ValueSource::CommandLine)
    {
        prefix.push(format!("--host={host}").into());
        given.insert("host".into());
    }
    let mut from_files: Vec<(String, String)> = Vec::new();
    for (label, settings) in config_files(&first, places)?.into_iter().rev() {
        for setting in settings {
            let args = file_setting_args(&command, &setting, &label, &mut given)?;
            if let Some((id, args)) = args {
                from_files.push((id, label.clone()));
                prefix.extend(args);
            }
        }
    }
    let mut all = vec![args.first().cloned().unwrap_or_else(|| "mqload".into())];
    all.extend(prefix);
    all.extend(args.into_iter().skip(1));
    let matches = command
        .try_get_matches_from(&all)
        .map_err(|e| clap_error(e, Some(&from_files)))?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| clap_error(e, None))?;
    given.extend(given_ids(&matches));
    apply_host_url(&mut cli, &typed, &mut given)?;
    expand_html_tags(&mut cli);
    let notes = ignored_notes(&matches);
    let mut given: Vec<String> = given.into_iter().collect();
    given.sort();
    cli.given = given;
    if find_limit {
        cli.command = Some(super::Command::FindLimit);
    }
    Ok((cli, notes))
}

/// Clap ids the user set, on the command line or in the environment.
fn given_ids(matches: &ArgMatches) -> HashSet<String> {
    matches
        .ids()
        .filter(|id| {
            matches!(
                matches.value_source(id.as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .map(|id| id.as_str().to_owned())
        .collect()
}

/// Refuses a Locust variable of a flag mqload does not support (a false switch is fine).
fn check_unsupported_env() -> Result<(), LoadError> {
    for flag in locust_flags::LOCUST_FLAGS {
        let (Support::Unsupported(why), Some(name)) = (flag.support, flag.env) else {
            continue;
        };
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        if flag.switch && locust_flags::switch_value(&value) == Some(false) {
            continue;
        }
        return Err(LoadError::Usage(format!(
            "{}; unset {name}",
            locust_flags::unsupported_line(flag, why, &format!("from {name}"))
        )));
    }
    Ok(())
}

/// The config files that exist, lowest precedence first, each with its settings.
fn config_files(
    first: &ArgMatches,
    places: &Places,
) -> Result<Vec<(String, Vec<Setting>)>, LoadError> {
    let mut files: Vec<(String, Vec<Setting>)> = Vec::new();
    let defaults = [
        places.home.as_ref().map(|h| h.join(".locust.conf")),
        Some(places.cwd.join("locust.conf")),
        Some(places.cwd.join("pyproject.toml")),
    ];
    for path in defaults.into_iter().flatten() {
        if path.is_file() {
            files.push(read_config(&path)?);
        }
    }
    if let Some(path) = first.get_one::<PathBuf>("config") {
        if !path.is_file() {
            return Err(LoadError::Usage(format!(
                "--config {}: no such file; give the path of a Locust config file",
                path.display()
            )));
        }
        files.push(read_config(path)?);
    }
    Ok(files)
}

/// One config file's settings; a `.toml` file is read as TOML (its `[tool.locust]` table).
fn read_config(path: &Path) -> Result<(String, Vec<Setting>), LoadError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        LoadError::Usage(format!(
            "cannot read the config file {label}: {e}; fix or remove it"
        ))
    })?;
    let parsed = if label.ends_with(".toml") {
        config_file::parse_pyproject(&text)
    } else {
        config_file::parse_conf(&text)
    };
    let settings = parsed.map_err(|e| LoadError::Usage(format!("config file {label}, {e}")))?;
    Ok((label, settings))
}

/// The arguments one config-file setting adds (with its clap id), or `None` when a higher
/// source already set that option; `given` records what is now set.
fn file_setting_args(
    command: &clap::Command,
    setting: &Setting,
    label: &str,
    given: &mut HashSet<String>,
) -> Result<Option<(String, Vec<OsString>)>, LoadError> {
    let at = format!("{label} line {}", setting.line);
    if setting.key == "config" {
        return Ok(None);
    }
    let Some(arg) = find_long(command, &setting.key) else {
        return Err(LoadError::Usage(
            match locust_flags::find_by_long(&setting.key) {
                Some(flag) => match flag.support {
                    Support::Unsupported(why) => locust_flags::unsupported_line(flag, why, &at),
                    _ => format!("{at}: `{}` cannot be set in a config file", setting.key),
                },
                None => format!(
                    "{at}: unknown option `{}` (neither Locust 2.47 nor mqload has --{}): fix or remove the line",
                    setting.key, setting.key
                ),
            },
        ));
    };
    let id = arg.get_id().as_str().to_owned();
    if !given.insert(id.clone()) {
        return Ok(None);
    }
    let long = format!("--{}", arg.get_long().unwrap_or(&setting.key));
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let list = matches!(arg.get_action(), ArgAction::Append) || arg.get_value_delimiter().is_some();
    let args: Vec<OsString> = match (&setting.value, switch) {
        (SettingValue::Text(text), true) => match locust_flags::switch_value(text) {
            Some(true) => vec![long.into()],
            Some(false) => Vec::new(),
            None => {
                return Err(LoadError::Usage(format!(
                    "{at}: {}: {text:?} is not a switch value; use true, false, yes, no, on, off, 1 or 0",
                    setting.key
                )));
            }
        },
        (SettingValue::Text(text), false) => vec![format!("{long}={text}").into()],
        (SettingValue::List(items), false) if list => {
            vec![format!("{long}={}", items.join(",")).into()]
        }
        (SettingValue::List(_), _) => {
            return Err(LoadError::Usage(format!(
                "{at}: {} takes one value, not a list: write `{} = value`",
                setting.key, setting.key
            )));
        }
    };
    Ok(Some((id, args)))
}

/// The argument whose long name (or alias) is `key` (a leading `--` allowed).
fn find_long<'c>(command: &'c clap::Command, key: &str) -> Option<&'c Arg> {
    let key = key.trim_start_matches('-');
    command.get_arguments().find(|a| {
        a.get_long() == Some(key)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&key))
    })
}

/// `-H mqtts://host:8883` / `mqtt://host:1883` / `wss://host/mqtt` / `ws://host:port/mqtt` /
/// `host:port` / `host` -> host, port, TLS, and for WebSocket the transport and path.
/// What the URL says beats `--port` and `--no-tls` from files and the environment (the
/// seed's `LOCUST_MQTT_PORT=8883` must not fight `-H mqtt://h:1883`); the same options typed
/// on the command line (`typed`) with another value are a mistake.
fn apply_host_url(
    cli: &mut Cli,
    typed: &HashSet<String>,
    given: &mut HashSet<String>,
) -> Result<(), LoadError> {
    let Some(text) = cli.host.clone() else {
        return Ok(());
    };
    let url = HostUrl::parse(&text).map_err(|e| LoadError::Usage(e.line(&text)))?;
    if let Some(tls) = url.tls {
        if tls && cli.no_tls && typed.contains("no_tls") {
            return Err(LoadError::Usage(format!(
                "--host {text} asks for TLS but --no-tls is set: use mqtt:// for plain TCP, or drop --no-tls"
            )));
        }
        cli.no_tls = !tls;
        given.insert("no_tls".into());
    }
    if url.websocket {
        if cli.transport != TransportArg::Websockets && typed.contains("transport") {
            return Err(LoadError::Usage(format!(
                "--host {text} is a WebSocket URL but --transport is tcp: drop --transport, or use mqtts:// / mqtt://"
            )));
        }
        cli.transport = TransportArg::Websockets;
        given.insert("transport".into());
        if let Some(path) = &url.path {
            cli.ws_path = path.clone();
            given.insert("ws_path".into());
        }
    }
    let port = url.port.or(match (url.tls, url.websocket) {
        (Some(true), false) => Some(8883),
        (Some(false), false) => Some(1883),
        (Some(true), true) => Some(443),
        (Some(false), true) => Some(80),
        (None, _) => None,
    });
    if let Some(port) = port {
        if typed.contains("port") && cli.port != port && url.port.is_some() {
            return Err(LoadError::Usage(format!(
                "--host {text} names port {port} but --port is {}: give the port once",
                cli.port
            )));
        }
        if url.port.is_some() || !typed.contains("port") {
            cli.port = port;
            given.insert("port".into());
        }
    }
    cli.host = Some(url.host);
    Ok(())
}

/// Locust's `{u}`, `{r}`, `{t}` in `--html`: users, spawn rate and run time in seconds
/// (whole numbers without a fraction, as Locust writes them). With `--stages`, users are the
/// profile's peak and the run time defaults to the profile's length, as the run's are.
fn expand_html_tags(cli: &mut Cli) {
    let Some(html) = cli.html.as_ref().and_then(|p| p.to_str()) else {
        return;
    };
    if !html.contains(['{']) {
        return;
    }
    let number = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    };
    let profile = cli
        .stages
        .as_deref()
        .and_then(|text| crate::stages::parse(text).ok());
    let users = profile.as_ref().map_or(cli.users, |stages| {
        stages.iter().map(|s| s.users).max().unwrap_or(0)
    });
    let mut out = html
        .replace("{u}", &users.to_string())
        .replace("{r}", &number(cli.spawn_rate));
    let run_time = cli
        .run_time
        .as_deref()
        .and_then(crate::duration::parse_duration)
        .or_else(|| profile.map(|stages| stages.iter().map(|s| s.duration).sum()));
    if let Some(t) = run_time {
        out = out.replace("{t}", &number(t.as_secs_f64().floor()));
    }
    cli.html = Some(PathBuf::from(out));
}

/// One note per accepted-and-ignored Locust flag the user set.
fn ignored_notes(matches: &ArgMatches) -> Vec<String> {
    let command = Cli::command();
    locust_flags::LOCUST_FLAGS
        .iter()
        .filter_map(|flag| {
            let Support::Ignored(why) = flag.support else {
                return None;
            };
            if flag.long == "locustfile" {
                return None; // the run itself says so
            }
            let arg = find_long(&command, flag.long)?;
            let set = matches!(
                matches.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) && (!flag.switch || matches.get_flag(arg.get_id().as_str()));
            set.then(|| format!("--{} is accepted and ignored: {why}", flag.long))
        })
        .collect()
}

/// A clap error as help/version output, or as the one line to print.
fn clap_error(e: clap::Error, from_files: Option<&[(String, String)]>) -> LoadError {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => return LoadError::Display(e),
        _ => {}
    }
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    if e.kind() == ErrorKind::UnknownArgument
        && let Some(word) = &invalid
    {
        return LoadError::Usage(match locust_flags::find_by_word(word) {
            Some(flag) => match flag.support {
                Support::Unsupported(why) => {
                    locust_flags::unsupported_line(flag, why, "on the command line")
                }
                _ => format!("{word} is not accepted here"),
            },
            None => format!(
                "unknown option {word}: neither Locust 2.47 nor mqload has it (see mqload --help)"
            ),
        });
    }
    if e.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidSubcommand)
    {
        return LoadError::Usage(format!(
            "unexpected word {word:?}: mqload takes no Locust User classes (its subcommands are `broker` and `find-limit`)"
        ));
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_owned();
    let source = invalid.as_deref().and_then(|arg| {
        let long = arg.trim_start_matches('-').split([' ', '=']).next()?;
        let command = Cli::command();
        let id = find_long(&command, long)?.get_id().as_str().to_owned();
        from_files?
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, label)| label.clone())
    });
    LoadError::Usage(match source {
        Some(label) => format!("{first} (set in {label})"),
        None => first,
    })
}

/// Sends everything mqload writes to stderr to `path` (appended), as Locust's `--logfile`
/// sends its log there.
pub fn redirect_stderr(path: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            format!(
                "--logfile {}: cannot open it for writing ({e}); give a writable path",
                path.display()
            )
        })?;
    // SAFETY: dup2 on two valid descriptors; stderr is unbuffered in Rust.
    if unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
        return Err(format!(
            "--logfile {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_settings_count_as_given_and_the_command_line_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("locust.conf"),
            "qos = 1\ntopic = from/file\n",
        )
        .expect("write");
        let places = Places {
            cwd: dir.path().to_owned(),
            home: None,
        };
        let args = ["mqload", "--worker", "--topic", "from/cli"].map(OsString::from);
        let (cli, notes) = load_from(args.to_vec(), &places).expect("loads");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(cli.qos, 1);
        assert_eq!(cli.topic, "from/cli");
        for id in ["qos", "topic", "worker"] {
            assert!(cli.given.iter().any(|g| g == id), "{id} in {:?}", cli.given);
        }
        assert!(!cli.given.iter().any(|g| g == "port"), "{:?}", cli.given);
    }

    #[test]
    fn websocket_urls_set_transport_path_and_the_schemes_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let places = Places {
            cwd: dir.path().to_owned(),
            home: None,
        };
        let load = |args: &[&str]| {
            let mut all = vec![OsString::from("mqload")];
            all.extend(args.iter().map(OsString::from));
            load_from(all, &places)
        };
        let (cli, _) = load(&["-H", "wss://b.example/custom"]).expect("loads");
        assert_eq!(cli.transport, TransportArg::Websockets);
        assert_eq!((cli.port, cli.no_tls), (443, false));
        assert_eq!(cli.ws_path, "/custom");
        let (cli, _) = load(&["-H", "ws://127.0.0.1:9001"]).expect("loads");
        assert_eq!(
            (cli.port, cli.no_tls, cli.ws_path.as_str()),
            (9001, true, "/mqtt")
        );
        let (cli, _) = load(&["-H", "ws://b.example"]).expect("loads");
        assert_eq!(cli.port, 80);
        assert!(matches!(
            load(&["-H", "wss://b.example/mqtt", "--transport", "tcp"]),
            Err(LoadError::Usage(_))
        ));
    }

    #[test]
    fn html_tags_become_users_rate_and_run_time_as_in_locust() {
        use clap::Parser;
        let mut cli = Cli::parse_from([
            "mqload",
            "-u",
            "100",
            "-r",
            "10",
            "-t",
            "1m",
            "--html",
            "r_{u}_{r}_{t}.html",
        ]);
        expand_html_tags(&mut cli);
        assert_eq!(cli.html, Some(PathBuf::from("r_100_10_60.html")));
        let mut cli = Cli::parse_from(["mqload", "-r", "0.5", "--html", "r_{r}_{t}.html"]);
        expand_html_tags(&mut cli);
        assert_eq!(
            cli.html,
            Some(PathBuf::from("r_0.5_{t}.html")),
            "no run time: {{t}} stays"
        );
        let mut cli = Cli::parse_from([
            "mqload",
            "--stages",
            "10s:50u,1m:200u,5s:0u",
            "--html",
            "s_{u}_{t}.html",
        ]);
        expand_html_tags(&mut cli);
        assert_eq!(
            cli.html,
            Some(PathBuf::from("s_200_75.html")),
            "the profile's peak users and length"
        );
    }
}
