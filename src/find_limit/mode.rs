//! What the search raises: the publish rate (msg/s), or the connect rate (new connections a
//! second, for connect-storm tests), and the unit each is stated in.

/// The load a capacity search raises (`--search`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchMode {
    /// Messages a second over the same users (`--search msg-rate`).
    #[default]
    Messages,
    /// New connections a second, each held open to the level's end (`--search connect-rate`).
    Connects,
}

impl SearchMode {
    /// The unit of a level's load in sentences: `msg/s` or `connections/s`.
    pub fn unit(self) -> &'static str {
        match self {
            SearchMode::Messages => "msg/s",
            SearchMode::Connects => "connections/s",
        }
    }

    /// The word of the JSON report: `msg_rate` or `connect_rate`.
    pub fn word(self) -> &'static str {
        match self {
            SearchMode::Messages => "msg_rate",
            SearchMode::Connects => "connect_rate",
        }
    }
}
