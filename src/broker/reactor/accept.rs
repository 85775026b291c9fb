//! Taking in connections: accepting on the MQTT and WebSocket listeners, a slot and a
//! poll registration for each, and letting go of a held CONNECT whose client hung up.

use std::time::Instant;

use mio::{Interest, Token};

use super::{FIRST_CONN, Worker};
use crate::broker::conn::{Close, Conn};
use crate::broker::ws::WsLink;

impl Worker {
    /// Accepts what waits on the MQTT listener, or on the WebSocket one with `websocket`.
    pub(super) fn accept(&mut self, now: Instant, websocket: bool) {
        loop {
            let listener = match (websocket, &self.setup.ws_listener) {
                (false, _) => &self.setup.listener,
                (true, Some(ws)) => ws,
                (true, None) => return,
            };
            let (tcp, _) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // Out of file descriptors and the like: try again on the next wakeup.
                Err(_) => {
                    self.accept_again = true;
                    return;
                }
            };
            self.adopt(tcp, now, websocket);
        }
    }

    /// Takes an accepted socket into a free slot.
    pub(super) fn adopt(&mut self, mut tcp: mio::net::TcpStream, now: Instant, websocket: bool) {
        let _ = tcp.set_nodelay(true);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let token = Token(slot + FIRST_CONN);
        if self
            .setup
            .poll
            .registry()
            .register(&mut tcp, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            self.free.push(slot);
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let ws = websocket.then(|| Box::new(WsLink::new(self.ctx.max_packet)));
        match Conn::new(tcp, self.setup.tls.as_ref(), ws, generation, now) {
            Ok(conn) => {
                self.conns[slot] = Some(conn);
                self.ctx.counts.accepted += 1;
                self.ctx.counts.open += 1;
            }
            Err(_) => self.free.push(slot),
        }
    }

    /// A client whose CONNECT waits for a turn hung up: it is gone and wants no CONNACK, so it
    /// leaves the queue without spending a turn meant for clients still waiting.
    pub(super) fn drop_unanswered(&mut self, slot: usize) {
        if matches!(self.conns.get(slot), Some(Some(c)) if c.held && !c.session.is_connected()) {
            self.close(slot, Some(Close::Gone));
        }
    }
}
