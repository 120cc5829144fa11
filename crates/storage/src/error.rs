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
    /// The hybrid logical clock could not issue a timestamp.
    #[error("clock failure: {0}")]
    Clock(meridian_core::ClockError),
}
