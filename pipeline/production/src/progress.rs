//! How `run` reports its progress without knowing who watches: the binary draws a progress
//! bar, a test or an embedding program may ignore it (`()`).

/// Receives `run`'s progress. Calls come from the task running `run`, in order.
pub trait Progress: Sync {
    /// A new phase over one input (validating it, then ingesting it); `rows` is its length
    /// when known. The position restarts at zero.
    fn phase(&self, message: String, rows: Option<u64>);
    /// `rows` more rows of the current phase are done.
    fn advance(&self, rows: u64);
    /// A line worth keeping above the progress display.
    fn note(&self, line: String);
}

/// No progress display.
impl Progress for () {
    fn phase(&self, _message: String, _rows: Option<u64>) {}
    fn advance(&self, _rows: u64) {}
    fn note(&self, _line: String) {}
}
