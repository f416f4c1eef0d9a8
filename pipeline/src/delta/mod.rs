//! The store's root is a Delta Lake table: `_delta_log/<version:020>.json` is the commit
//! point of published data (see `docs/protocol.md`). Written and read here without a Delta
//! library: `action` is the subset of the protocol's actions tally writes, `schema` maps the
//! table's columns to Delta's types, `commit` encodes and decodes one commit, `checkpoint`
//! the table at one version in a Parquet file, and `log` lists, replays (from the newest
//! checkpoint) and writes commits on the `Fs`.

pub mod action;
pub mod checkpoint;
pub mod commit;
pub mod log;
pub mod schema;

pub use self::checkpoint::{BadCheckpoint, Checkpoint};
pub use self::commit::Unreadable;
pub use self::log::{
    Replayed, commit_versions, millis, replay, replay_commits_through, replay_through, write_commit,
};
pub use self::schema::Unsupported;
