//! What the CLI tests share: running the built `tally`, describing its output, and reading a
//! directory as a user would see it.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests run the binary and read directories on the real disk"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tally <args>`, run to completion.
pub fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .output()
        .expect("tally runs")
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether a run is writing rows under `root`: a table file (or its temp) is in `data/` — the
/// bulk load of `tally run` — or a log segment holds parts (more than its header) — streamed
/// ingest.
pub fn writing_rows(root: &Path) -> bool {
    let data =
        std::fs::read_dir(root.join("data")).is_ok_and(|mut entries| entries.any(|e| e.is_ok()));
    data || std::fs::read_dir(root.join("_tally/log")).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            e.path().extension().is_some_and(|x| x == "log")
                && e.metadata().is_ok_and(|m| m.len() > 4096)
        })
    })
}

/// Every path under `dir` (directories too), with a file's bytes, relative and sorted.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(relative, None);
                stack.push(path);
            } else {
                out.insert(relative, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// Every path under `dir`, relative, sorted.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    tree(dir).into_keys().collect()
}

/// The Python interpreter the tests that read a store with other engines run: `$TALLY_PYTHON`
/// if set and not empty, else `python3` from the PATH. `.ci/run` installs the engines into a virtualenv and
/// exports `TALLY_PYTHON` pointing into it; locally, point it at any interpreter that has them
/// (the pinned set is in `.ci/run`).
pub fn python() -> OsString {
    std::env::var_os("TALLY_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Whether an engine that cannot be imported fails the test instead of being skipped:
/// `TALLY_REQUIRE_ENGINES=1`, which `.ci/run` sets once it installed them, so that CI never
/// passes a skipped interop test as a run one.
pub fn engines_required() -> bool {
    std::env::var_os("TALLY_REQUIRE_ENGINES").is_some_and(|v| v == "1")
}

/// Runs `script` under [`python`] with whichever of pyarrow, DuckDB and polars are installed; it
/// prints the engines it checked, or `SKIP`. Returns that line, or `None` (said on stderr)
/// when python or every engine is missing — a failure instead when [`engines_required`].
pub fn python_readers(script: &str) -> Option<String> {
    let out = match Command::new(python()).arg("-c").arg(script).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(!engines_required(), "{:?} cannot run: {e}", python());
            eprintln!("SKIPPED: {:?} is not available ({e})", python());
            return None;
        }
    };
    assert!(out.status.success(), "{}", text(&out));
    let checked = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if checked == "SKIP" {
        assert!(
            !engines_required(),
            "none of pyarrow, duckdb, polars imports in {:?}",
            python()
        );
        eprintln!(
            "SKIPPED: none of pyarrow, duckdb, polars is installed in {:?} (see .ci/run)",
            python()
        );
        return None;
    }
    Some(checked)
}

/// One version of a Delta table as its log says, replayed here from the JSON commit files —
/// independently of tally's own reader, so that tests can hold both to it.
#[derive(Debug, Clone, Default)]
pub struct DeltaVersion {
    pub version: u64,
    /// The live files (`add.path`, relative to the root) and their `numRecords`.
    pub files: BTreeMap<String, u64>,
    /// Files a commit up to this version removed and none re-added.
    pub removed: BTreeSet<String>,
    /// The latest `txn` version of each application id (for tally: a source's published rows).
    pub txns: BTreeMap<String, u64>,
}

impl DeltaVersion {
    /// Rows of the version by its files' `numRecords`.
    pub fn rows(&self) -> u64 {
        self.files.values().sum()
    }

    /// Rows of the version by its `txn` actions: what tally says each source has published.
    pub fn txn_rows(&self) -> u64 {
        self.txns.values().sum()
    }
}

/// The commit files under `root/_delta_log/`, each version's actions parsed, in version order.
/// Panics on a gap or an unparsable line: a committed version must read whole.
pub fn delta_commits(root: &Path) -> Vec<(u64, Vec<serde_json::Value>)> {
    let mut versions: Vec<(u64, PathBuf)> = std::fs::read_dir(root.join("_delta_log"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let stem = path.file_name()?.to_str()?.strip_suffix(".json")?;
            let version = (stem.len() == 20).then(|| stem.parse().ok())??;
            Some((version, path))
        })
        .collect();
    versions.sort();
    versions
        .into_iter()
        .enumerate()
        .map(|(i, (version, path))| {
            assert_eq!(version, i as u64, "a gap in {}", root.display());
            let text = std::fs::read_to_string(&path).unwrap();
            let actions = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path:?}: {e}")))
                .collect();
            (version, actions)
        })
        .collect()
}

/// The table at `through` (the latest version when `None`), replayed from the commit files.
pub fn delta_version(root: &Path, through: Option<u64>) -> DeltaVersion {
    let mut table = DeltaVersion::default();
    for (version, actions) in delta_commits(root) {
        if through.is_some_and(|t| version > t) {
            break;
        }
        table.version = version;
        for action in actions {
            apply(&mut table, &action);
        }
    }
    table
}

fn apply(table: &mut DeltaVersion, action: &serde_json::Value) {
    if let Some(add) = action.get("add") {
        let path = add["path"].as_str().unwrap().to_string();
        let stats: serde_json::Value =
            serde_json::from_str(add["stats"].as_str().expect("add.stats")).unwrap();
        table.removed.remove(&path);
        table
            .files
            .insert(path, stats["numRecords"].as_u64().unwrap());
    } else if let Some(remove) = action.get("remove") {
        let path = remove["path"].as_str().unwrap().to_string();
        table.files.remove(&path);
        table.removed.insert(path);
    } else if let Some(txn) = action.get("txn") {
        let app = txn["appId"].as_str().unwrap().to_string();
        table.txns.insert(app, txn["version"].as_u64().unwrap());
    }
}

/// The data files of the table's latest version, as absolute paths: what a reader that reads
/// Parquet files directly must read (never a glob of `data/`, which holds removed files too).
pub fn live_data_files(root: &Path) -> Vec<PathBuf> {
    delta_version(root, None)
        .files
        .into_keys()
        .map(|path| root.join(path))
        .collect()
}

/// A temporary directory holding a store root (not created) and an input directory.
pub struct Store {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub inputs: PathBuf,
}

/// A fresh [`Store`].
pub fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    Store { dir, root, inputs }
}

impl Store {
    /// The root, as a command-line argument.
    pub fn root_arg(&self) -> &str {
        self.root.to_str().unwrap()
    }
}

/// A CSV file of `rows` rows `id,name`: ids `first..`, names `row-<id>`.
pub fn write_csv(path: &Path, first: u64, rows: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,name").unwrap();
    for i in first..first + rows {
        writeln!(out, "{i},row-{i}").unwrap();
    }
}
