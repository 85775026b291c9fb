//! AWS IoT custom authorizers, as a device presents one: over MQTT in the CONNECT user name's
//! query string (TLS on 443 with ALPN `mqtt`), over WebSocket as upgrade headers.

use std::fmt;

use super::sigv4::uri_encode;

/// The ALPN protocol AWS IoT wants for MQTT with a custom authorizer on port 443.
pub const MQTT_ALPN: &[u8] = b"mqtt";
/// The parameter or header that names the authorizer.
pub const NAME_KEY: &str = "x-amz-customauthorizer-name";
/// The parameter or header that carries the token's signature.
pub const SIGNATURE_KEY: &str = "x-amz-customauthorizer-signature";

/// A custom authorizer's fields; each is optional, as AWS IoT allows (a default authorizer
/// needs no name; an authorizer without token signing needs no token nor signature).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomAuthorizer<'a> {
    /// The authorizer's name.
    pub name: Option<&'a str>,
    /// The token key name the authorizer reads, and the token.
    pub token: Option<(&'a str, &'a str)>,
    /// The token's signature, base64, made with the authorizer's private key.
    pub signature: Option<&'a str>,
}

/// A custom-authorizer field that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomAuthorizerError {
    /// The token key name is not an HTTP header name (letters, digits and `!#$%&'*+-.^_`|~`).
    BadTokenKey(String),
    /// A value holds a control character, which no header may carry.
    ControlCharacter(&'static str),
}

impl fmt::Display for CustomAuthorizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomAuthorizerError::BadTokenKey(key) => write!(
                f,
                "custom authorizer token key {key:?} is not a header name: use letters, digits and '-'"
            ),
            CustomAuthorizerError::ControlCharacter(field) => write!(
                f,
                "the custom authorizer {field} holds a control character: remove it"
            ),
        }
    }
}

impl std::error::Error for CustomAuthorizerError {}

impl<'a> CustomAuthorizer<'a> {
    /// The MQTT CONNECT user name: `user` (may be empty), then the authorizer's fields as a
    /// query string, each value percent-encoded (a base64 signature holds `+`, `/`, `=`).
    pub fn mqtt_username(&self, user: &str) -> Result<String, CustomAuthorizerError> {
        self.check()?;
        let mut out = String::from(user);
        let mut separator = '?';
        let mut add = |key: &str, value: &str| {
            out.push(separator);
            separator = '&';
            out.push_str(&uri_encode(key));
            out.push('=');
            out.push_str(&uri_encode(value));
        };
        if let Some(name) = self.name {
            add(NAME_KEY, name);
        }
        if let Some(signature) = self.signature {
            add(SIGNATURE_KEY, signature);
        }
        if let Some((key, token)) = self.token {
            add(key, token);
        }
        Ok(out)
    }

    /// The WebSocket upgrade's extra headers, values as given.
    pub fn websocket_headers(&self) -> Result<Vec<(&'a str, &'a str)>, CustomAuthorizerError> {
        self.check()?;
        let mut headers = Vec::with_capacity(3);
        if let Some(name) = self.name {
            headers.push((NAME_KEY, name));
        }
        if let Some(signature) = self.signature {
            headers.push((SIGNATURE_KEY, signature));
        }
        if let Some(token) = self.token {
            headers.push(token);
        }
        Ok(headers)
    }

    fn check(&self) -> Result<(), CustomAuthorizerError> {
        if let Some((key, _)) = self.token {
            let is_token = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !is_token {
                return Err(CustomAuthorizerError::BadTokenKey(key.to_owned()));
            }
        }
        let fields = [
            ("name", self.name),
            ("signature", self.signature),
            ("token", self.token.map(|(_, token)| token)),
        ];
        for (field, value) in fields {
            if value.is_some_and(|v| v.chars().any(char::is_control)) {
                return Err(CustomAuthorizerError::ControlCharacter(field));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: CustomAuthorizer<'static> = CustomAuthorizer {
        name: Some("FleetAuthorizer"),
        token: Some(("fleet-token", "device 0/ok")),
        signature: Some("aGVsbG8+d29ybGQ/=="),
    };

    #[test]
    fn username_carries_the_fields_percent_encoded() {
        assert_eq!(
            SIGNED.mqtt_username("device-0").unwrap(),
            "device-0?x-amz-customauthorizer-name=FleetAuthorizer\
             &x-amz-customauthorizer-signature=aGVsbG8%2Bd29ybGQ%2F%3D%3D\
             &fleet-token=device%200%2Fok"
        );
        let name_only = CustomAuthorizer {
            name: Some("A"),
            ..CustomAuthorizer::default()
        };
        assert_eq!(
            name_only.mqtt_username("").unwrap(),
            "?x-amz-customauthorizer-name=A"
        );
        assert_eq!(CustomAuthorizer::default().mqtt_username("u").unwrap(), "u");
    }

    #[test]
    fn websocket_headers_carry_the_fields_as_given() {
        assert_eq!(
            SIGNED.websocket_headers().unwrap(),
            vec![
                (NAME_KEY, "FleetAuthorizer"),
                (SIGNATURE_KEY, "aGVsbG8+d29ybGQ/=="),
                ("fleet-token", "device 0/ok"),
            ]
        );
    }

    #[test]
    fn fields_that_cannot_be_sent_are_named() {
        let bad_key = CustomAuthorizer {
            token: Some(("token key", "t")),
            ..SIGNED
        };
        assert_eq!(
            bad_key.websocket_headers(),
            Err(CustomAuthorizerError::BadTokenKey("token key".into()))
        );
        let bad_token = CustomAuthorizer {
            token: Some(("k", "t\r\nx: y")),
            ..SIGNED
        };
        assert_eq!(
            bad_token.mqtt_username("u"),
            Err(CustomAuthorizerError::ControlCharacter("token"))
        );
    }
}
