//! The process exit codes every command shares, so lower rooms (broker, locust) need not
//! import the `app` that calls them.

/// Exit code for a configuration mistake (a bad option, a missing file, a refused CONNACK).
pub const EXIT_CONFIG: u8 = 2;
