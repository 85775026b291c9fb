//! A broker named as Locust's `-H/--host` names its target: `mqtts://host:8883`,
//! `mqtt://host:1883`, `wss://host/mqtt`, `ws://host:8080/mqtt`, `host:port` or `host`.

/// A broker named as Locust's `--host` names its target.
#[derive(Debug, PartialEq)]
pub struct HostUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// `Some(true)` for `mqtts://` and `wss://`, `Some(false)` for `mqtt://` and `ws://`,
    /// `None` without a scheme.
    pub tls: Option<bool>,
    /// MQTT over WebSocket: `ws://` or `wss://`.
    pub websocket: bool,
    /// A `ws://`/`wss://` URL's path (`/mqtt`), when it has one.
    pub path: Option<String>,
}

/// A `--host` that is not an MQTT broker's address; each names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostUrlError {
    /// A scheme other than `mqtt://`, `mqtts://`, `ws://` or `wss://` (e.g. Locust's usual
    /// `https://`).
    Scheme(String),
    /// A user name, query or fragment after the host, or a path after an MQTT one.
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
                "--host {text}: mqload speaks MQTT, not {scheme}://; use mqtts://host:8883 (TLS), mqtt://host:1883 (plain TCP), wss://host/mqtt or ws://host:port/mqtt (WebSocket)"
            ),
            HostUrlError::MoreThanHostAndPort => format!(
                "--host {text}: give only scheme, host and port (e.g. mqtts://broker:8883), and a path only for WebSocket (wss://broker/mqtt); credentials go in --username/--password, AWS signatures are made by --aws-sigv4"
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
    /// Parses `mqtts://h:p`, `mqtt://h:p`, `wss://h:p/path`, `ws://h:p/path`, `h:p`,
    /// `[v6]:p` or `h`; other schemes, user names, queries and MQTT paths are refused.
    pub fn parse(text: &str) -> Result<HostUrl, HostUrlError> {
        let (rest, tls, websocket) = match text.split_once("://") {
            Some(("mqtts", rest)) => (rest, Some(true), false),
            Some(("mqtt", rest)) => (rest, Some(false), false),
            Some(("wss", rest)) => (rest, Some(true), true),
            Some(("ws", rest)) => (rest, Some(false), true),
            Some((scheme, _)) => return Err(HostUrlError::Scheme(scheme.to_owned())),
            None => (text, None, false),
        };
        let (rest, path) = match rest.find('/') {
            Some(slash) if websocket => (&rest[..slash], Some(&rest[slash..])),
            _ => (rest.strip_suffix('/').unwrap_or(rest), None),
        };
        let path = path.filter(|p| *p != "/");
        if rest.contains(['/', '@', '?', '#']) || path.is_some_and(|p| p.contains(['?', '#'])) {
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
            websocket,
            path: path.map(str::to_owned),
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
                tls: Some(true),
                websocket: false,
                path: None,
            })
        );
        assert_eq!(
            url("mqtt://127.0.0.1/"),
            Ok(HostUrl {
                host: "127.0.0.1".into(),
                port: None,
                tls: Some(false),
                websocket: false,
                path: None,
            })
        );
        assert_eq!(
            url("[::1]:1883").map(|u| (u.host, u.port)),
            Ok(("::1".into(), Some(1883)))
        );
        assert_eq!(url("::1").map(|u| u.port), Ok(None));
        assert_eq!(url("h").map(|u| (u.port, u.tls)), Ok((None, None)));
        assert_eq!(
            url("wss://abc-ats.iot.eu-west-1.amazonaws.com/mqtt"),
            Ok(HostUrl {
                host: "abc-ats.iot.eu-west-1.amazonaws.com".into(),
                port: None,
                tls: Some(true),
                websocket: true,
                path: Some("/mqtt".into()),
            })
        );
        assert_eq!(
            url("ws://[::1]:8080/").map(|u| (u.host, u.port, u.tls, u.websocket, u.path)),
            Ok(("::1".into(), Some(8080), Some(false), true, None))
        );
        for bad in [
            "https://h",
            "wss://h/mqtt?X-Amz-Signature=1",
            "ws://u@h/mqtt",
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
