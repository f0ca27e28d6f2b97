//! Which requests changed, for long polls and approver streams. The handler that committed a
//! change announces it here; on a database several instances share, the store's change feed
//! also brings in what the other instances commit (see [`crate::store::Store::follow_changes`]).

/// One announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// This request's state changed (created, approved, decided, redeemed, expired…).
    Request(String),
    /// Changes may have been missed (the feed from other instances broke off and came back):
    /// whoever follows changes re-reads what it shows.
    Resync,
}

/// Where changes are announced; every long poll and event stream subscribes.
pub type Changes = tokio::sync::broadcast::Sender<Change>;

/// How many announcements a slow subscriber may fall behind before it is told to resync.
const CAPACITY: usize = 1024;

/// A new announcement channel.
pub fn channel() -> Changes {
    tokio::sync::broadcast::channel(CAPACITY).0
}
