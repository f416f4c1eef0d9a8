//! Runs one seeded simulation to completion on the runtime of the current build.
//!
//! Under `--cfg madsim` each run gets a fresh madsim runtime seeded with the run's seed, so the
//! seed decides task interleavings and virtual time as well as the workload. In a normal build
//! a current-thread tokio runtime with paused time runs it; the result is the same for
//! workloads whose only I/O is the simulated disk, which never waits.

use std::future::Future;

/// Each run gets a thread of its own. std seeds a thread's `HashMap` keys once, on the
/// thread's first `RandomState`; madsim can make that draw come from the run's seed only if it
/// is the first on the thread. A fresh thread per run keeps it so, whatever ran before in the
/// process (otherwise madsim warns that std `HashMap` order is not deterministic).
#[cfg(madsim)]
#[allow(
    clippy::disallowed_methods,
    reason = "one thread per simulated run, joined at once"
)]
pub fn run_seeded<F: Future + Send>(seed: u64, future: F) -> F::Output
where
    F::Output: Send,
{
    warm_process_globals();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Initializes, outside any simulation, the process-wide state that libraries seed lazily from
/// `getrandom` on first use. Under madsim a draw made inside a run comes from the run's seeded
/// generator, so if the first run in a process made these draws and later runs did not, the
/// same seed would schedule differently depending on what ran before it. Drawn here, from the
/// OS, they no longer touch any run's generator.
///
/// Known sources: the random state of `ahash` (hash maps inside arrow and parquet: dictionary
/// encoding, schema metadata) and of `hashbrown`'s default hasher. The warm-up encodes and
/// decodes a batch through Parquet (dictionary encoding on) and Arrow IPC, which touches them.
/// The CLI test `a_seed_in_a_sweep_has_the_verdict_and_digest_of_its_fresh_replay`
/// (`scenarios/cli/tests/cli.rs`: a sweep's seeds against fresh replays) is what shows the list
/// is complete.
pub fn warm_process_globals() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let columns: [(&str, ArrayRef); 2] = [
            ("key", Arc::new(StringArray::from(vec!["a", "b", "a"]))),
            ("value", Arc::new(Int64Array::from(vec![1, 2, 3]))),
        ];
        let batch = RecordBatch::try_from_iter(columns).expect("a valid batch");
        let mut parquet = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut parquet, batch.schema(), None)
            .expect("an in-memory writer");
        writer.write(&batch).expect("writing to memory");
        writer.close().expect("closing an in-memory file");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(parquet),
        )
        .and_then(|b| b.build())
        .expect("reading back what was written");
        for read in reader {
            read.expect("reading back what was written");
        }
        let mut ipc = Vec::new();
        {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &batch.schema())
                .expect("an in-memory writer");
            writer.write(&batch).expect("writing to memory");
            writer.finish().expect("finishing");
        }
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .expect("reading back what was written");
        for read in reader {
            read.expect("reading back what was written");
        }
    });
}

#[cfg(not(madsim))]
pub fn run_seeded<F: Future + Send>(_seed: u64, future: F) -> F::Output
where
    F::Output: Send,
{
    // Time is paused: it moves only when every task waits, straight to the next timer. The
    // fault plan's latencies and the live reader's pauses are timers; on the real clock, how
    // many times a yielding task (a group-commit leader lingering) ran before a timer fired
    // would depend on the machine, and a seed could replay to another interleaving.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime starts")
        .block_on(future)
}

/// Whether this binary was built for simulation (`cargo sim ...`).
pub const SIMULATION_BUILD: bool = cfg!(madsim);
