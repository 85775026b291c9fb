//! One pump of a device with a socket: move the socket's bytes in, let the device handle its
//! events, publish what is due and run its timers, and move its bytes out.

use std::time::Instant;

use super::Shared;
use super::drive::DeviceError;
use crate::engine::conn::Conn;
use crate::engine::device::{Batch, Device};
use crate::net::Link;

impl Shared<'_> {
    /// Reads, handles events, publishes what is due, handles timers, writes.
    pub(super) fn pump(&mut self, conn: &mut Conn, now: Instant) -> Result<(), DeviceError> {
        let Some(transport) = conn.transport.as_mut() else {
            return Ok(());
        };
        if let Some(deadline) = conn.device.connect_deadline(&self.env) {
            if now >= deadline {
                let websocket = self.env.plan.websocket.is_some();
                return Err(DeviceError::ConnectTimeout { websocket });
            }
            if !transport.check_connected()? {
                return Ok(());
            }
        }
        let read = self.read_input(conn);
        let (Some(transport), device) = (conn.transport.as_mut(), &mut conn.device) else {
            return Ok(());
        };
        // Events first: acks that arrived with a close still count.
        device.handle_events(now, &mut self.env)?;
        read?;
        if device.may_publish(now, &self.env) {
            // A writable edge after back-pressure: drain first, so held-back messages go now.
            if transport.has_backlog() {
                transport.flush()?;
            }
            while device.publish_due(now, transport.has_backlog(), &mut self.env)? == Batch::Full {
                send_pending(transport, device, &mut self.ws_scratch, now)?;
            }
        }
        device.handle_timeout(now, &mut self.env)?;
        send_pending(transport, device, &mut self.ws_scratch, now)?;
        device.settle(now, &mut self.env);
        Ok(())
    }

    /// Hands what the socket has to the device. Timer-only wakes skip the read: it would be
    /// a recvmsg returning EAGAIN.
    fn read_input(&mut self, conn: &mut Conn) -> Result<(), DeviceError> {
        let (Some(transport), device) = (conn.transport.as_mut(), &mut conn.device) else {
            return Ok(());
        };
        if !conn.readable {
            return Ok(());
        }
        let read = transport.read(
            &mut self.scratch,
            &mut self.ws_scratch,
            &self.clock,
            |data, at| device.handle_input(data, at),
        );
        // Ok(Ok(())) means drained: wait for the next readable edge.
        conn.readable = !matches!(read, Ok(Ok(())));
        read??;
        Ok(())
    }
}

/// Hands the device's pending bytes to the transport (framed in `ws_scratch` over
/// WebSocket) and pushes them to the socket.
#[inline]
fn send_pending(
    transport: &mut Link,
    device: &mut Device,
    ws_scratch: &mut Vec<u8>,
    now: Instant,
) -> Result<(), DeviceError> {
    let out = device.poll_transmit();
    if !out.is_empty() {
        transport.queue(out, ws_scratch)?;
        device.transmitted(now);
    }
    transport.flush()?;
    Ok(())
}
