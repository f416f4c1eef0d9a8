//! What the CLI tests share: running the built `tally`, describing its output, and reading a
//! directory as a user would see it.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests run the binary and read directories on the real disk"
)]

use std::collections::BTreeMap;
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

/// Whether some log segment under `root` holds parts (more than its header): a run is writing.
pub fn log_has_parts(root: &Path) -> bool {
    std::fs::read_dir(root.join("_tally/log")).is_ok_and(|entries| {
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

/// Runs `script` under python3 with whichever of pyarrow, DuckDB and polars are installed; it
/// prints the engines it checked, or `SKIP`. Returns that line, or `None` (said on stderr)
/// when python3 or every engine is missing.
pub fn python_readers(script: &str) -> Option<String> {
    let out = match Command::new("python3").arg("-c").arg(script).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: python3 is not available ({e})");
            return None;
        }
    };
    assert!(out.status.success(), "{}", text(&out));
    let checked = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if checked == "SKIP" {
        eprintln!(
            "skipped: none of pyarrow, duckdb, polars is installed (pip install pyarrow duckdb polars)"
        );
        return None;
    }
    Some(checked)
}
