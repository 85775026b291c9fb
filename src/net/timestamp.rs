//! Kernel receive timestamps (SO_TIMESTAMPNS): when bytes reached the socket, not when the loop
//! got round to reading them. This lets a worker sleep between wakeups without blurring latency.

use std::io::{self, Read};
use std::mem;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Asks the kernel to stamp every received segment of `fd` (CLOCK_REALTIME, nanoseconds).
pub fn enable(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `on` for the given length only.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One reading of both clocks, taken once per wakeup, to turn kernel stamps into instants.
#[derive(Debug, Clone, Copy)]
pub struct WakeClock {
    /// Monotonic now.
    pub instant: Instant,
    realtime_ns: i128,
}

impl WakeClock {
    /// Reads the monotonic and the real-time clock.
    pub fn now() -> WakeClock {
        WakeClock {
            instant: Instant::now(),
            realtime_ns: realtime_ns(),
        }
    }

    /// The instant of a kernel stamp; never later than this reading.
    pub fn instant_of(&self, stamp_ns: i128) -> Instant {
        let ago = self.realtime_ns.saturating_sub(stamp_ns);
        if ago <= 0 {
            return self.instant;
        }
        let ago = Duration::from_nanos(u64::try_from(ago).unwrap_or(u64::MAX));
        self.instant.checked_sub(ago).unwrap_or(self.instant)
    }
}

fn realtime_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// A reader over a socket that remembers the kernel stamp of the last bytes it returned.
#[derive(Debug)]
pub struct StampedReader {
    fd: RawFd,
    /// Stamp (real-time nanoseconds) of the latest read, when the kernel gave one.
    pub stamp_ns: Option<i128>,
    /// The latest read returned data but less than the buffer held: the socket's receive
    /// queue was empty after it, so the next arrival raises a new readiness edge.
    pub drained: bool,
}

impl StampedReader {
    /// Reads from `fd`.
    pub fn new(fd: RawFd) -> StampedReader {
        StampedReader {
            fd,
            stamp_ns: None,
            drained: false,
        }
    }
}

/// Control buffer large enough for one `timespec` control message, suitably aligned.
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

impl Read for StampedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = ControlBuffer([0; 64]);
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: every pointer in msg refers to live buffers of the stated lengths.
        let n = unsafe { libc::recvmsg(self.fd, &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.drained = n > 0 && (n as usize) < buf.len();
        // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    self.stamp_ns =
                        Some(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok(n as usize)
    }
}
