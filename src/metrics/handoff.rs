//! The latest-value handoff from the thread that makes snapshots (about once a second) to the
//! responder that serves them: publishing replaces an unread snapshot, reading never blocks,
//! and replaced snapshots go back to the producer for refilling.

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};

use super::snapshot::Snapshot;

/// A connected publisher and reader; the reader starts with an empty snapshot.
pub fn snapshot_handoff<T: Snapshot>() -> (SnapshotPublisher<T>, SnapshotReader<T>) {
    let (latest_tx, latest_rx) = bounded(1);
    let (recycled_tx, recycled_rx) = bounded(2);
    let publisher = SnapshotPublisher {
        latest_tx,
        stale_rx: latest_rx.clone(),
        recycled_rx,
    };
    let reader = SnapshotReader {
        latest_rx,
        recycled_tx,
        current: T::default(),
    };
    (publisher, reader)
}

/// The producer's end. Only one producer publishes (it is not `Clone`).
#[derive(Debug)]
pub struct SnapshotPublisher<T> {
    latest_tx: Sender<T>,
    /// The channel's own receiving end, to take back a snapshot nobody read in time.
    stale_rx: Receiver<T>,
    recycled_rx: Receiver<T>,
}

impl<T: Snapshot> SnapshotPublisher<T> {
    /// An empty snapshot to fill: one the reader is done with when there is one, so that in
    /// a steady run the vectors inside are reused rather than allocated again.
    pub fn blank(&self) -> T {
        match self.recycled_rx.try_recv() {
            Ok(mut snapshot) => {
                snapshot.clear();
                snapshot
            }
            Err(_) => T::default(),
        }
    }

    /// Makes `snapshot` the one served from now on, replacing one not read yet. Never blocks;
    /// if the responder has stopped, the snapshot is dropped.
    pub fn publish(&self, snapshot: T) {
        if let Err(full) = self.latest_tx.try_send(snapshot) {
            // Only this producer fills the slot, so after taking the stale value out the
            // send has room (unless the reader took it first, which also leaves room).
            let _ = self.stale_rx.try_recv();
            let _ = self.latest_tx.try_send(full.into_inner());
        }
    }
}

/// The responder's end: keeps the latest snapshot it has seen.
pub struct SnapshotReader<T> {
    latest_rx: Receiver<T>,
    recycled_tx: Sender<T>,
    current: T,
}

impl<T: Snapshot> SnapshotReader<T> {
    /// The newest snapshot published (the previous one again when nothing new came).
    pub fn latest(&mut self) -> &T {
        loop {
            match self.latest_rx.try_recv() {
                Ok(newer) => {
                    let older = std::mem::replace(&mut self.current, newer);
                    let _ = self.recycled_tx.try_send(older);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return &self.current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::LoadSnapshot;

    fn with_users(publisher: &SnapshotPublisher<LoadSnapshot>, users: u64) -> LoadSnapshot {
        let mut snapshot = publisher.blank();
        snapshot.users = users;
        snapshot
    }

    #[test]
    fn the_reader_sees_the_newest_and_keeps_it() {
        let (publisher, mut reader) = snapshot_handoff::<LoadSnapshot>();
        assert_eq!(reader.latest().users, 0);
        publisher.publish(with_users(&publisher, 1));
        publisher.publish(with_users(&publisher, 2));
        publisher.publish(with_users(&publisher, 3));
        assert_eq!(reader.latest().users, 3);
        assert_eq!(
            reader.latest().users,
            3,
            "nothing new: the same snapshot again"
        );
    }

    #[test]
    fn read_snapshots_come_back_cleared_for_reuse() {
        let (publisher, mut reader) = snapshot_handoff::<LoadSnapshot>();
        let mut first = publisher.blank();
        first.failures.reserve(64);
        first.users = 7;
        publisher.publish(first);
        reader.latest();
        publisher.publish(with_users(&publisher, 8));
        reader.latest(); // hands the first one back
        let reused = publisher.blank();
        assert_eq!(reused.users, 0);
        assert!(
            reused.failures.capacity() >= 64,
            "the reused vector keeps its room"
        );
    }

    #[test]
    fn publishing_after_the_reader_is_gone_does_not_block() {
        let (publisher, reader) = snapshot_handoff::<LoadSnapshot>();
        drop(reader);
        publisher.publish(with_users(&publisher, 1));
        publisher.publish(with_users(&publisher, 2));
    }
}
