//! A broker named as Locust's `-H/--host` names its target: `mqtts://host:8883`,
//! `mqtt://host:1883`, `host:port` or `host`.

/// A broker named as Locust's `--host` names its target.
#[derive(Debug, PartialEq)]
pub struct HostUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// `Some(true)` for `mqtts://`, `Some(false)` for `mqtt://`, `None` without a scheme.
    pub tls: Option<bool>,
}

/// A `--host` that is not an MQTT broker's address; each names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostUrlError {
    /// A scheme other than `mqtt://` or `mqtts://` (e.g. Locust's usual `https://`).
    Scheme(String),
    /// A user name, path, query or fragment after the host.
    MoreThanHostAndPort,
    /// `[v6` without its `]`, or something other than `:port` after it.
    BadBracket,
    /// Nothing before the port.
    NoHost,
    /// A port that is not 1-65535.
    BadPort(String),
}

impl HostUrlError {
    /// The line to print for `--host text`.
    pub fn line(&self, text: &str) -> String {
        match self {
            HostUrlError::Scheme(scheme) => format!(
                "--host {text}: mqload speaks MQTT, not {scheme}://; use mqtts://host:8883 (TLS) or mqtt://host:1883 (plain TCP)"
            ),
            HostUrlError::MoreThanHostAndPort => format!(
                "--host {text}: give only scheme, host and port (e.g. mqtts://broker:8883); credentials go in --username/--password"
            ),
            HostUrlError::BadBracket => {
                format!("--host {text}: write an IPv6 address as [::1] or [::1]:8883")
            }
            HostUrlError::NoHost => format!("--host {text}: no host name before the port"),
            HostUrlError::BadPort(port) => {
                format!("--host {text}: {port:?} is not a port (1-65535)")
            }
        }
    }
}

impl HostUrl {
    /// Parses `mqtts://h:p`, `mqtt://h:p`, `h:p`, `[v6]:p` or `h`; other schemes, user
    /// names and paths are refused.
    pub fn parse(text: &str) -> Result<HostUrl, HostUrlError> {
        let (rest, tls) = match text.split_once("://") {
            Some(("mqtts", rest)) => (rest, Some(true)),
            Some(("mqtt", rest)) => (rest, Some(false)),
            Some((scheme, _)) => return Err(HostUrlError::Scheme(scheme.to_owned())),
            None => (text, None),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '@', '?', '#']) {
            return Err(HostUrlError::MoreThanHostAndPort);
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(HostUrlError::BadBracket)?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(HostUrlError::BadBracket),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                _ => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(HostUrlError::NoHost);
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| HostUrlError::BadPort(p.to_owned()))?,
            ),
            None => None,
        };
        Ok(HostUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_urls_map_to_host_port_and_tls() {
        let url = |t: &str| HostUrl::parse(t);
        assert_eq!(
            url("mqtts://b.example:8884"),
            Ok(HostUrl {
                host: "b.example".into(),
                port: Some(8884),
                tls: Some(true)
            })
        );
        assert_eq!(
            url("mqtt://127.0.0.1/"),
            Ok(HostUrl {
                host: "127.0.0.1".into(),
                port: None,
                tls: Some(false)
            })
        );
        assert_eq!(
            url("[::1]:1883").map(|u| (u.host, u.port)),
            Ok(("::1".into(), Some(1883)))
        );
        assert_eq!(url("::1").map(|u| u.port), Ok(None));
        assert_eq!(url("h").map(|u| (u.port, u.tls)), Ok((None, None)));
        for bad in [
            "https://h",
            "ws://h:80",
            "mqtt://u:p@h",
            "mqtt://h:1883/path",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }
}
