//! MQTT 5 reason codes: one named variant per wire value, and which packets may carry which.

use super::wire;

/// Defines [`ReasonCode`] from one table: variant, wire value, and the name reports show.
macro_rules! reason_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// An MQTT 5 reason code (section 2.4). Values below 0x80 mean success; 0x00 is
        /// "success", "normal disconnection" and "granted QoS 0" alike.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ReasonCode {
            $($(#[doc = $doc])* $variant = $code,)*
        }

        impl ReasonCode {
            /// The reason code for a wire value, `None` for a value MQTT 5 does not define.
            pub fn from_u8(value: u8) -> Option<ReasonCode> {
                match value {
                    $($code => Some(ReasonCode::$variant),)*
                    _ => None,
                }
            }

            /// The specification's name in lower case ("not authorized", "quota exceeded").
            pub fn name(self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $name,)*
                }
            }

            /// Every defined reason code, in wire order.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)*];
        }
    };
}

reason_codes! {
    /// 0x00: success, normal disconnection, or granted QoS 0.
    Success = 0x00, "success";
    /// 0x01: subscription granted with QoS 1.
    GrantedQoS1 = 0x01, "granted qos 1";
    /// 0x02: subscription granted with QoS 2.
    GrantedQoS2 = 0x02, "granted qos 2";
    /// 0x04: the client disconnects but wants its will published.
    DisconnectWithWill = 0x04, "disconnect with will message";
    /// 0x10: accepted, but nobody is subscribed.
    NoMatchingSubscribers = 0x10, "no matching subscribers";
    /// 0x11: UNSUBSCRIBE of a filter that had no subscription.
    NoSubscriptionExisted = 0x11, "no subscription existed";
    /// 0x18: enhanced authentication continues.
    ContinueAuthentication = 0x18, "continue authentication";
    /// 0x19: the client starts re-authentication.
    ReAuthenticate = 0x19, "re-authenticate";
    /// 0x80: failure without a more specific code.
    UnspecifiedError = 0x80, "unspecified error";
    /// 0x81: the packet could not be parsed.
    MalformedPacket = 0x81, "malformed packet";
    /// 0x82: the packet broke a protocol rule.
    ProtocolError = 0x82, "protocol error";
    /// 0x83: valid, but the receiver will not process it.
    ImplementationSpecificError = 0x83, "implementation specific error";
    /// 0x84: the server does not speak the requested protocol version.
    UnsupportedProtocolVersion = 0x84, "unsupported protocol version";
    /// 0x85: the client identifier is not allowed.
    ClientIdentifierNotValid = 0x85, "client identifier not valid";
    /// 0x86: wrong user name or password.
    BadUserNameOrPassword = 0x86, "bad user name or password";
    /// 0x87: the client may not do this (an ACL refused it).
    NotAuthorized = 0x87, "not authorized";
    /// 0x88: the server is unavailable.
    ServerUnavailable = 0x88, "server unavailable";
    /// 0x89: the server is busy; try later.
    ServerBusy = 0x89, "server busy";
    /// 0x8A: the client is banned.
    Banned = 0x8A, "banned";
    /// 0x8B: the server is shutting down.
    ServerShuttingDown = 0x8B, "server shutting down";
    /// 0x8C: the authentication method is not supported.
    BadAuthenticationMethod = 0x8C, "bad authentication method";
    /// 0x8D: no packet within 1.5 keep-alive periods.
    KeepAliveTimeout = 0x8D, "keep alive timeout";
    /// 0x8E: another connection took over the session.
    SessionTakenOver = 0x8E, "session taken over";
    /// 0x8F: the topic filter is not accepted.
    TopicFilterInvalid = 0x8F, "topic filter invalid";
    /// 0x90: the topic name is not accepted.
    TopicNameInvalid = 0x90, "topic name invalid";
    /// 0x91: the packet identifier is already in use.
    PacketIdentifierInUse = 0x91, "packet identifier in use";
    /// 0x92: the packet identifier is unknown.
    PacketIdentifierNotFound = 0x92, "packet identifier not found";
    /// 0x93: more unacknowledged QoS > 0 publishes than Receive Maximum.
    ReceiveMaximumExceeded = 0x93, "receive maximum exceeded";
    /// 0x94: the topic alias is out of range or unknown.
    TopicAliasInvalid = 0x94, "topic alias invalid";
    /// 0x95: the packet is larger than the receiver's maximum.
    PacketTooLarge = 0x95, "packet too large";
    /// 0x96: the client sends too fast.
    MessageRateTooHigh = 0x96, "message rate too high";
    /// 0x97: a quota (rate or volume) is exceeded.
    QuotaExceeded = 0x97, "quota exceeded";
    /// 0x98: an administrator acted on the connection.
    AdministrativeAction = 0x98, "administrative action";
    /// 0x99: the payload does not match its payload format indicator.
    PayloadFormatInvalid = 0x99, "payload format invalid";
    /// 0x9A: the server does not support retained messages.
    RetainNotSupported = 0x9A, "retain not supported";
    /// 0x9B: the QoS is above the server's maximum.
    QoSNotSupported = 0x9B, "qos not supported";
    /// 0x9C: use another server (temporarily).
    UseAnotherServer = 0x9C, "use another server";
    /// 0x9D: use another server (permanently).
    ServerMoved = 0x9D, "server moved";
    /// 0x9E: the server does not support shared subscriptions.
    SharedSubscriptionsNotSupported = 0x9E, "shared subscriptions not supported";
    /// 0x9F: the client connects too often.
    ConnectionRateExceeded = 0x9F, "connection rate exceeded";
    /// 0xA0: the connection reached its maximum connect time.
    MaximumConnectTime = 0xA0, "maximum connect time";
    /// 0xA1: the server does not support subscription identifiers.
    SubscriptionIdentifiersNotSupported = 0xA1, "subscription identifiers not supported";
    /// 0xA2: the server does not support wildcard subscriptions.
    WildcardSubscriptionsNotSupported = 0xA2, "wildcard subscriptions not supported";
}

impl ReasonCode {
    /// The wire value.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// True for failures (0x80 and above).
    pub fn is_error(self) -> bool {
        self.code() >= 0x80
    }

    /// Whether a packet of this type (CONNACK, PUBACK..PUBCOMP, SUBACK, UNSUBACK, DISCONNECT,
    /// AUTH) may carry this code (MQTT 5 sections 3.2.2.2 to 3.15.2.1).
    pub fn allowed_in(self, packet_type: u8) -> bool {
        use ReasonCode::*;
        let code = self.code();
        match packet_type {
            wire::CONNACK => {
                code == 0
                    || (self.is_error()
                        && !matches!(
                            self,
                            KeepAliveTimeout
                                | SessionTakenOver
                                | TopicFilterInvalid
                                | PacketIdentifierInUse
                                | PacketIdentifierNotFound
                                | ReceiveMaximumExceeded
                                | TopicAliasInvalid
                                | MessageRateTooHigh
                                | AdministrativeAction
                                | SharedSubscriptionsNotSupported
                                | MaximumConnectTime
                                | SubscriptionIdentifiersNotSupported
                                | WildcardSubscriptionsNotSupported
                                | ServerShuttingDown
                        ))
            }
            wire::PUBACK | wire::PUBREC => matches!(
                self,
                Success
                    | NoMatchingSubscribers
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicNameInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | PayloadFormatInvalid
            ),
            wire::PUBREL | wire::PUBCOMP => matches!(self, Success | PacketIdentifierNotFound),
            wire::SUBACK => matches!(
                self,
                Success
                    | GrantedQoS1
                    | GrantedQoS2
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | SharedSubscriptionsNotSupported
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            wire::UNSUBACK => matches!(
                self,
                Success
                    | NoSubscriptionExisted
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
            ),
            wire::DISCONNECT => {
                matches!(self, Success | DisconnectWithWill)
                    || (self.is_error()
                        && !matches!(
                            self,
                            UnsupportedProtocolVersion
                                | ClientIdentifierNotValid
                                | BadUserNameOrPassword
                                | ServerUnavailable
                                | Banned
                                | BadAuthenticationMethod
                                | PacketIdentifierInUse
                                | PacketIdentifierNotFound
                        ))
            }
            wire::AUTH => matches!(self, Success | ContinueAuthentication | ReAuthenticate),
            _ => false,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#04x} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_have_names() {
        assert_eq!(ReasonCode::ALL.len(), 43);
        for &reason in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_u8(reason.code()), Some(reason));
            assert!(!reason.name().is_empty());
        }
        assert_eq!(ReasonCode::from_u8(0x03), None);
        assert_eq!(ReasonCode::from_u8(0xA3), None);
        assert_eq!(ReasonCode::NotAuthorized.code(), 0x87);
        assert_eq!(ReasonCode::QuotaExceeded.name(), "quota exceeded");
        assert_eq!(ReasonCode::NotAuthorized.to_string(), "0x87 not authorized");
    }

    #[test]
    fn packets_carry_only_their_codes() {
        use ReasonCode::*;
        assert!(NotAuthorized.allowed_in(wire::PUBACK));
        assert!(QuotaExceeded.allowed_in(wire::PUBREC));
        assert!(!GrantedQoS1.allowed_in(wire::PUBACK));
        assert!(!NotAuthorized.allowed_in(wire::PUBREL));
        assert!(BadUserNameOrPassword.allowed_in(wire::CONNACK));
        assert!(!NoMatchingSubscribers.allowed_in(wire::CONNACK));
        assert!(SessionTakenOver.allowed_in(wire::DISCONNECT));
        assert!(MalformedPacket.allowed_in(wire::DISCONNECT));
        assert!(!Banned.allowed_in(wire::DISCONNECT));
        assert!(GrantedQoS2.allowed_in(wire::SUBACK));
        assert!(NoSubscriptionExisted.allowed_in(wire::UNSUBACK));
        assert!(ContinueAuthentication.allowed_in(wire::AUTH));
        assert!(!Success.allowed_in(wire::PUBLISH));
    }
}
