//! A TLS session store that resumes every client of a reconnect storm, one ticket per client.
//!
//! rustls' default store keeps 8 TLS 1.3 tickets per server name, shared by every connection,
//! so after a broker restart or a churn wave only 8 of thousands of clients would resume, and
//! a device connecting for the first time could pick up another's ticket (a real device never
//! has one then). This store keeps, per simulated device, the newest ticket the broker gave it
//! (TLS 1.3 tickets are single-use; TLS 1.2 sessions too, per device), so:
//! - a device's first connection is a full handshake, as it would be in the field;
//! - each reconnect offers that device's own latest ticket;
//! - memory is bounded: at most `capacity` devices (the users), one ticket each (a few hundred
//!   bytes plus a share of the broker's certificate chain).
//!
//! rustls asks the store only by server name, so the device is named by a thread-local set
//! around the calls that reach the store ([`ClientScope`]: connection setup and reads).
//! Calls outside any scope share a small pool of 8 tickets, as rustls' default does.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::{ClientConfig, NamedGroup};
use rustls_pki_types::ServerName;

/// Tickets shared by connections that name no device (rustls' default per server name).
const SHARED_TICKETS: usize = 8;

thread_local! {
    /// The device whose connection this thread is driving right now, if any.
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Names the device whose TLS calls follow, until dropped.
#[derive(Debug)]
pub struct ClientScope {
    previous: Option<u64>,
}

impl ClientScope {
    /// Enters the scope of device `key` (`None`: no device, the shared pool).
    pub fn enter(key: Option<u64>) -> ClientScope {
        ClientScope {
            previous: CURRENT.with(|c| c.replace(key)),
        }
    }
}

impl Drop for ClientScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// What the store did, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// TLS 1.3 tickets received from the broker.
    pub inserted: u64,
    /// Tickets handed to a connection that asked for one.
    pub taken: u64,
    /// Requests that found no ticket (that connection made a full handshake).
    pub missed: u64,
    /// Tickets refused because the store already held `capacity` devices.
    pub refused: u64,
}

/// What the store remembers for one device.
struct DeviceEntry {
    name: ServerName<'static>,
    tls13: Option<Tls13ClientSessionValue>,
    tls12: Option<Tls12ClientSessionValue>,
}

#[derive(Default)]
struct Inner {
    devices: HashMap<u64, DeviceEntry>,
    shared: VecDeque<(ServerName<'static>, Tls13ClientSessionValue)>,
    kx_hint: Option<(ServerName<'static>, NamedGroup)>,
    counts: StoreCounts,
}

/// A [`ClientSessionStore`] with one ticket per device, for up to `capacity` devices.
pub struct TicketStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for TicketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketStore")
            .field("capacity", &self.capacity)
            .field("counts", &self.counts())
            .finish()
    }
}

impl TicketStore {
    /// A store for `capacity` devices.
    pub fn new(capacity: usize) -> TicketStore {
        TicketStore {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// What the store did so far.
    pub fn counts(&self) -> StoreCounts {
        self.lock().counts
    }

    /// TLS 1.3 tickets held now.
    pub fn held(&self) -> usize {
        let inner = self.lock();
        inner.devices.values().filter(|d| d.tls13.is_some()).count() + inner.shared.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data: keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of `key` for `name`, created when there is room.
    fn device<'a>(
        &self,
        inner: &'a mut Inner,
        key: u64,
        name: &ServerName<'static>,
    ) -> Option<&'a mut DeviceEntry> {
        let full = inner.devices.len() >= self.capacity;
        if full && !inner.devices.contains_key(&key) {
            inner.counts.refused += 1;
            return None;
        }
        let entry = inner.devices.entry(key).or_insert_with(|| DeviceEntry {
            name: name.clone(),
            tls13: None,
            tls12: None,
        });
        if entry.name != *name {
            *entry = DeviceEntry {
                name: name.clone(),
                tls13: None,
                tls12: None,
            };
        }
        Some(entry)
    }
}

/// The device this thread's TLS calls are for right now, if a [`ClientScope`] names one.
pub fn current() -> Option<u64> {
    CURRENT.with(Cell::get)
}

impl ClientSessionStore for TicketStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.lock().kx_hint = Some((server_name, group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        match &self.lock().kx_hint {
            Some((name, group)) if name == server_name => Some(*group),
            _ => None,
        }
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        let Some(key) = current() else { return };
        let mut inner = self.lock();
        if let Some(entry) = self.device(&mut inner, key, &server_name) {
            entry.tls12 = Some(value);
        }
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let key = current()?;
        let inner = self.lock();
        let entry = inner.devices.get(&key)?;
        (entry.name == *server_name)
            .then(|| entry.tls12.clone())
            .flatten()
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        let Some(key) = current() else { return };
        if let Some(entry) = self.lock().devices.get_mut(&key)
            && entry.name == *server_name
        {
            entry.tls12 = None;
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let mut inner = self.lock();
        inner.counts.inserted += 1;
        match current() {
            // The newest ticket replaces the older one: one is all a reconnect needs.
            Some(key) => {
                if let Some(entry) = self.device(&mut inner, key, &server_name) {
                    entry.tls13 = Some(value);
                }
            }
            None => {
                if inner.shared.len() >= SHARED_TICKETS {
                    inner.shared.pop_front();
                }
                inner.shared.push_back((server_name, value));
            }
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let mut inner = self.lock();
        let ticket = match current() {
            Some(key) => inner
                .devices
                .get_mut(&key)
                .filter(|e| e.name == *server_name)
                .and_then(|e| e.tls13.take()),
            None => inner
                .shared
                .iter()
                .rposition(|(name, _)| name == server_name)
                .and_then(|i| inner.shared.remove(i))
                .map(|(_, ticket)| ticket),
        };
        match ticket {
            Some(_) => inner.counts.taken += 1,
            None => inner.counts.missed += 1,
        }
        ticket
    }
}

/// `config` with its resumption store replaced by `store` (TLS 1.2 ids and tickets kept on).
pub fn with_store(config: Arc<ClientConfig>, store: Arc<TicketStore>) -> Arc<ClientConfig> {
    let mut config = Arc::unwrap_or_clone(config);
    config.resumption = Resumption::store(store);
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_without_a_ticket_misses_and_is_counted() {
        let store = TicketStore::new(100);
        let name = ServerName::try_from("broker.example").expect("name");
        {
            let _scope = ClientScope::enter(Some(7));
            assert_eq!(current(), Some(7));
            assert!(store.take_tls13_ticket(&name).is_none());
        }
        assert_eq!(current(), None, "the scope ends with its guard");
        assert!(store.take_tls13_ticket(&name).is_none());
        assert_eq!(store.counts().missed, 2);
        assert_eq!(store.held(), 0);
        store.set_kx_hint(name.clone(), NamedGroup::X25519);
        assert_eq!(store.kx_hint(&name), Some(NamedGroup::X25519));
        let other = ServerName::try_from("other.example").expect("name");
        assert_eq!(store.kx_hint(&other), None);
    }

    #[test]
    fn devices_are_bounded_by_the_capacity() {
        let store = TicketStore::new(2);
        let name = ServerName::try_from("broker.example").expect("name");
        let mut inner = store.lock();
        assert!(store.device(&mut inner, 1, &name).is_some());
        assert!(store.device(&mut inner, 2, &name).is_some());
        assert!(store.device(&mut inner, 3, &name).is_none());
        assert!(
            store.device(&mut inner, 1, &name).is_some(),
            "known devices stay"
        );
        assert_eq!(inner.counts.refused, 1);
    }
}
