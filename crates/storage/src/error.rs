use thiserror::Error;

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The engine failed; the store is poisoned and refuses all further work.
    #[error("storage engine failure: {0}")]
    Engine(#[from] fjall::Error),
    /// An earlier failure poisoned the store.
    #[error("store failed earlier and is stopped (fail-stop)")]
    Poisoned,
    /// A stored record could not be decoded: the store is corrupt.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The writer thread is gone (shutdown).
    #[error("store is shut down")]
    Closed,
    /// A table with that name exists already.
    #[error("table exists: {0}")]
    TableExists(String),
    /// A failure injected on purpose (tests and drills).
    #[error("injected fault: {0}")]
    Injected(&'static str),
    /// Waited too long for the store (e.g. for a commit to become durable).
    #[error("store timed out: {0}")]
    Timeout(String),
    /// The data directory's on-disk layout is one this build cannot read.
    #[error("unsupported store layout: {0}")]
    Layout(String),
    /// No such table.
    #[error("no such table: {0}")]
    NoSuchTable(String),
    /// A received version is further ahead of this region's clock than the maximum clock
    /// offset: the whole batch is refused and nothing of it applied (the store stays healthy).
    #[error("refused a change from {origin}: {error}")]
    ClockAhead {
        /// The region that made the refused version.
        origin: String,
        /// What the clock said.
        error: meridian_core::ClockError,
    },
    /// A journal is damaged before its tail; the store refuses to open unless asked to recover
    /// (`StoreOptions::recover`).
    #[error(
        "{0}. Check the data directory with `meridian region verify --data-dir DIR`; to truncate \
         the journal there and fetch this region's lost writes back from its peers, start the \
         region once with --recover"
    )]
    JournalDamaged(Box<crate::journal::Damage>),
    /// The store lost the tail of its change log and is recovering: it takes no local write
    /// until it knows how far its peers had received its changes (its sequences continue after
    /// theirs).
    #[error("the region is recovering its change log from its peers and takes no writes yet")]
    Recovering,
    /// The hybrid logical clock could not issue a timestamp.
    #[error("clock failure: {0}")]
    Clock(meridian_core::ClockError),
}
