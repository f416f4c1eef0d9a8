//! A source is its file's path bound to its content: a run over a changed file is refused,
//! whether an earlier run was interrupted in it or finished it, and an empty input does not
//! decide the table's columns.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files on the real disk"
)]

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tally_production::{Progress, RunError, RunOptions, RunSummary};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn write_csv(path: &Path, rows: impl Iterator<Item = u64>) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,name").unwrap();
    for i in rows {
        writeln!(out, "{i},row-{i}").unwrap();
    }
}

fn options(root: &Path, inputs: &[&Path]) -> RunOptions {
    RunOptions {
        root: root.to_path_buf(),
        inputs: inputs.iter().map(|p| p.to_path_buf()).collect(),
        format: None,
        batch_rows: 1000,
        // Small files, so that an interrupted run has committed (acknowledged) some of its
        // rows: the bulk load acknowledges a file's rows when its commit is durable.
        config: tally_pipeline::Config {
            segment_bytes: 16 << 10,
            ..tally_pipeline::Config::default()
        },
    }
}

fn run(options: &RunOptions) -> Result<RunSummary, RunError> {
    runtime().block_on(tally_production::run(options, &()))
}

/// Dies (panics, dropping the pipeline mid-ingest) once `limit` rows were ingested: what an
/// interrupted run leaves on disk, without timing a kill.
struct DieAfter {
    limit: u64,
    ingesting: AtomicU64,
}

impl Progress for DieAfter {
    fn phase(&self, message: String, _rows: Option<u64>) {
        if message.starts_with("ingesting") {
            self.ingesting.store(1, Ordering::SeqCst);
        }
    }
    fn advance(&self, rows: u64) {
        if self.ingesting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let done = self.ingesting.fetch_add(rows, Ordering::SeqCst) + rows - 1;
        assert!(done < self.limit, "interrupted after {done} rows");
    }
    fn note(&self, _line: String) {}
}

fn interrupted_run(options: &RunOptions, limit: u64) {
    let die = DieAfter {
        limit,
        ingesting: AtomicU64::new(0),
    };
    let died = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime().block_on(tally_production::run(options, &die))
    }));
    assert!(died.is_err(), "the run was to be interrupted");
}

struct Case {
    _dir: tempfile::TempDir,
    root: PathBuf,
    input: PathBuf,
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let input = dir.path().join("in.csv");
    Case {
        root,
        input,
        _dir: dir,
    }
}

#[test]
fn a_changed_input_is_refused_not_resumed_at_its_old_row() {
    let c = case();
    write_csv(&c.input, 0..10_000);
    let opts = options(&c.root, &[&c.input]);
    interrupted_run(&opts, 4_000);
    // 100 lines deleted: resuming at the old row offset would skip 100 rows of the new file.
    write_csv(
        &c.input,
        (0..10_000).filter(|i| !(1_000..1_100).contains(i)),
    );
    let err = run(&opts).expect_err("a changed input must be refused");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            RunError::Changed {
                complete: false,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("the file changed since") && message.contains("interrupted run"),
        "{message}"
    );
    // Put back as it was, the source resumes and ends with every row exactly once.
    write_csv(&c.input, 0..10_000);
    let summary = run(&opts).unwrap();
    assert_eq!(summary.sources[0].status, "resumed");
    assert_eq!(summary.published_rows, 10_000);
}

#[test]
fn a_completed_input_whose_file_changed_is_reported_not_skipped() {
    let c = case();
    write_csv(&c.input, 0..500);
    let opts = options(&c.root, &[&c.input]);
    assert_eq!(run(&opts).unwrap().published_rows, 500);
    write_csv(&c.input, 0..501);
    let err = run(&opts).expect_err("a changed completed input must be reported");
    assert!(
        matches!(
            err,
            RunError::Changed {
                complete: true,
                acknowledged: 500,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("give the file a new path"),
        "{err}"
    );
    // The same content again is the no-op it always was.
    write_csv(&c.input, 0..500);
    let summary = run(&opts).unwrap();
    assert_eq!(summary.sources[0].status, "already-ingested");
    assert_eq!(summary.published_rows, 500);
}

#[test]
fn an_empty_first_input_does_not_fix_the_table_columns() {
    let c = case();
    let empty = c._dir.path().join("empty.csv");
    std::fs::write(&empty, "other,columns\n").unwrap();
    write_csv(&c.input, 0..10);
    let summary = run(&options(&c.root, &[&empty, &c.input])).unwrap();
    assert_eq!(summary.sources[0].status, "ingested");
    assert_eq!(summary.published_rows, 10);
}
