//! SIGINT and SIGTERM become a flag the run polls, so a stop still drains and reports.

use std::sync::atomic::{AtomicBool, Ordering};

static RECEIVED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if RECEIVED.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C: the user does not want to wait for the drain.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Routes SIGINT and SIGTERM to the flag (idempotent); a second one exits at once (code 130).
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Whether SIGINT or SIGTERM arrived since start.
pub fn received() -> bool {
    RECEIVED.load(Ordering::SeqCst)
}
