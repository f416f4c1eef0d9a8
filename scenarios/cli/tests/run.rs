//! `tally run`, `verify` and `inspect` on the real disk, as a user runs them — including a
//! run killed with SIGKILL at arbitrary moments and started again.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files and time a kill on the real disk"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;

use support::{Store, live_data_files, python_readers, store, tally, text, writing_rows};

/// A CSV with the benchmark's 8 columns: id, timestamp, a 100-value string, a unique string,
/// three floats and a bool.
fn write_csv(path: &Path, first: u64, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,ts,cat,uid,a,b,c,flag").unwrap();
    for i in first..first + rows {
        writeln!(
            out,
            "{i},{},cat-{:03},u{i:023},{},{},{},{}",
            1_700_000_000_000u64 + i * 37,
            i % 100,
            i as f64 * 0.5,
            (i % 7) as f64 / 8.0,
            -(i as f64) * 1.25,
            i % 3 == 0
        )
        .unwrap();
    }
}

fn write_jsonl(path: &Path, first: u64, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in first..first + rows {
        writeln!(
            out,
            r#"{{"id": {i}, "ts": {}, "cat": "cat-{:03}", "uid": "j{i:023}", "a": {}.5, "b": 0.25, "c": -1.5, "flag": {}}}"#,
            1_700_000_000_000u64 + i,
            i % 100,
            i,
            i % 2 == 0
        )
        .unwrap();
    }
}

fn root_arg(store: &Store) -> &str {
    store.root_arg()
}

/// `tally run --root <store> --input <inputs...>`.
fn run(store: &Store, inputs: &[&Path]) -> Output {
    let mut args = vec!["run", "--root", root_arg(store), "--input"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    tally(&args)
}

fn inspect_json(store: &Store) -> serde_json::Value {
    let out = tally(&["inspect", "--root", root_arg(store), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn run_publishes_every_row_and_a_second_run_ingests_nothing() {
    let s = store();
    let csv = s.inputs.join("a.csv");
    let jsonl = s.inputs.join("b.jsonl");
    write_csv(&csv, 0, 3000);
    write_jsonl(&jsonl, 0, 1000);
    let args = [
        "run",
        "--root",
        root_arg(&s),
        "--input",
        csv.to_str().unwrap(),
        jsonl.to_str().unwrap(),
    ];
    let out = tally(&args);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("4000 rows acknowledged"), "{stdout}");
    assert!(stdout.contains("4000 rows published"), "{stdout}");

    let again = tally(&args);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{}", text(&again));
    assert!(stdout.contains("already-ingested"), "{stdout}");
    assert!(stdout.contains("nothing new to ingest"), "{stdout}");
    assert_eq!(inspect_json(&s)["published_rows"], 4000);

    let verify = tally(&["verify", "--root", root_arg(&s), "--deep"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("read 4000 rows"));
}

#[test]
fn run_json_summary_is_machine_readable() {
    let s = store();
    let csv = s.inputs.join("a.csv");
    write_csv(&csv, 0, 100);
    let out = tally(&[
        "run",
        "--root",
        root_arg(&s),
        "--input",
        csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows_acknowledged"], 100);
    assert_eq!(summary["sources"][0]["status"], "ingested");
    assert!(summary["rows_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_malformed_line_refuses_the_whole_source_and_names_the_line() {
    let s = store();
    let good = s.inputs.join("good.csv");
    write_csv(&good, 0, 50);
    let bad = s.inputs.join("bad.csv");
    write_csv(&bad, 1000, 30);
    let mut f = std::fs::OpenOptions::new().append(true).open(&bad).unwrap();
    writeln!(f, "1,2,three").unwrap();
    drop(f);
    let out = run(&s, &[&good, &bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.csv") && stderr.contains("line 32"),
        "{stderr}"
    );
    // The good source before it is published; nothing of the bad one is.
    let report = inspect_json(&s);
    assert_eq!(report["published_rows"], 50);
    assert_eq!(report["staged_rows"], 0);
}

#[test]
fn a_json_line_that_does_not_parse_is_named() {
    let s = store();
    let bad = s.inputs.join("bad.jsonl");
    write_jsonl(&bad, 0, 5);
    let mut f = std::fs::OpenOptions::new().append(true).open(&bad).unwrap();
    writeln!(f, r#"{{"id": 6, "#).unwrap();
    drop(f);
    let out = run(&s, &[&bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl: line 6"), "{stderr}");
}

#[test]
fn a_schema_mismatch_is_refused() {
    let s = store();
    let a = s.inputs.join("a.csv");
    write_csv(&a, 0, 10);
    let b = s.inputs.join("b.csv");
    std::fs::write(&b, "x,y\n1,2\n").unwrap();
    let out = run(&s, &[&a, &b]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema mismatch"));
    assert_eq!(inspect_json(&s)["published_rows"], 10);
}

#[test]
fn an_unreadable_parquet_file_is_refused() {
    let s = store();
    let bad = s.inputs.join("bad.parquet");
    std::fs::write(&bad, b"not parquet at all").unwrap();
    let out = run(&s, &[&bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.parquet: not a readable Parquet file")
    );
}

#[test]
fn verify_fails_when_a_published_file_is_gone() {
    let s = store();
    let csv = s.inputs.join("a.csv");
    write_csv(&csv, 0, 100);
    assert!(run(&s, &[&csv]).status.success());
    let data = s.root.join("data");
    for entry in std::fs::read_dir(&data).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let out = tally(&["verify", "--root", root_arg(&s)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INCONSISTENT"));
    // And a run refuses to continue over the loss, naming the counts.
    let rerun = run(&s, &[&csv]);
    assert_eq!(rerun.status.code(), Some(1), "{}", text(&rerun));
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        stderr.contains("acknowledges 100 rows, the disk holds 0"),
        "{stderr}"
    );
}

#[test]
fn a_parquet_input_carrying_the_sequence_column_is_refused() {
    let s = store();
    let csv = s.inputs.join("a.csv");
    write_csv(&csv, 0, 500);
    assert!(run(&s, &[&csv]).status.success());
    let published = std::fs::read_dir(s.root.join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // A published file carries the sequence column, a name the pipeline reserves.
    let other = s.inputs.join("other-store");
    let out = tally(&[
        "run",
        "--root",
        other.to_str().unwrap(),
        "--input",
        published.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tally_seq is reserved"));
}

/// The promise of `tally run`: killed at any moment and run again with the same inputs, the
/// store ends with every input row exactly once.
#[test]
fn a_killed_run_rerun_holds_every_row_exactly_once() {
    let s = store();
    let inputs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let path = s.inputs.join(format!("part{i}.csv"));
            write_csv(&path, i * 100_000, 40_000);
            path
        })
        .collect();
    let mut args: Vec<String> = [
        "run",
        "--root",
        root_arg(&s),
        "--batch-rows",
        "4096",
        "--input",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(inputs.iter().map(|p| p.to_str().unwrap().to_string()));
    // Each round waits until the run is writing rows — so the kill lands mid-ingest, not
    // before the first row — then lets it go on a little longer before SIGKILL.
    let mut interrupted_mid_ingest = 0;
    for round in 0..5u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !writing_rows(&s.root)
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round * 40));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let verify = tally(&["verify", "--root", root_arg(&s)]);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "after kill {round}: {}",
            text(&verify)
        );
        let report = inspect_json(&s);
        if report["staged_rows"] != 0 || report["published_rows"] != 120_000 {
            interrupted_mid_ingest += 1;
        }
    }
    assert!(
        interrupted_mid_ingest > 0,
        "no kill landed before the run finished: the test checked nothing"
    );
    let out = tally(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));
    let verify = tally(&["verify", "--root", root_arg(&s), "--deep"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("read 120000 rows"),
        "{}",
        text(&verify)
    );
    let report = inspect_json(&s);
    assert_eq!(report["published_rows"], 120_000);
    assert_eq!(report["complete_sources"], 3);
}

#[test]
fn parquet_inputs_are_ingested() {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    let s = store();
    let path = s.inputs.join("in.parquet");
    let batch = RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(StringArray::from_iter_values(
                (0..300).map(|i| format!("k{i}")),
            )) as _,
        ),
        ("v", Arc::new(Int64Array::from_iter_values(0..300)) as _),
    ])
    .unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = run(&s, &[&path]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect_json(&s)["published_rows"], 300);
}

/// The live files of the store's latest version as a Python list literal: the Parquet readers
/// below read the files the Delta log names, not a glob of `data/` (which also holds the files a
/// merge removed, kept for time travel).
fn files_literal(root: &Path) -> String {
    let files: Vec<String> = live_data_files(root)
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    assert!(!files.is_empty(), "no live files in {}", root.display());
    serde_json::to_string(&files).unwrap()
}

/// Published files open in other Parquet readers, with the encodings the pipeline picked.
/// Skips (saying so) when none of pyarrow, DuckDB and polars is installed; CI installs them.
#[test]
fn published_files_open_in_pyarrow_duckdb_and_polars() {
    let s = store();
    let csv = s.inputs.join("a.csv");
    write_csv(&csv, 0, 2500);
    assert!(run(&s, &[&csv]).status.success());
    let script = format!(
        r#"
files = {files}
checked = []
try:
    import pyarrow.parquet as pq
    t = pq.read_table(files)
    assert t.num_rows == 2500, t.num_rows
    assert t.column_names == ["id","ts","cat","uid","a","b","c","flag","tally_seq"], t.column_names
    assert sorted(t.column("tally_seq").to_pylist()) == list(range(2500))
    # The encodings the pipeline picks: delta for increasing integers, no dictionary for
    # unique strings, a dictionary for the 100-value category.
    meta = pq.ParquetFile(files[0]).metadata.row_group(0)
    enc = {{meta.column(i).path_in_schema: set(meta.column(i).encodings) for i in range(meta.num_columns)}}
    for delta in ["id", "ts", "tally_seq"]:
        assert "DELTA_BINARY_PACKED" in enc[delta], (delta, enc[delta])
    assert "RLE_DICTIONARY" not in enc["uid"] and "PLAIN_DICTIONARY" not in enc["uid"], enc["uid"]
    assert "RLE_DICTIONARY" in enc["cat"] or "PLAIN_DICTIONARY" in enc["cat"], enc["cat"]
    checked.append("pyarrow")
except ImportError:
    pass
try:
    import duckdb
    n, distinct = duckdb.connect().execute("select count(*), count(distinct tally_seq) from read_parquet(" + repr(files) + ")").fetchone()
    assert (n, distinct) == (2500, 2500), (n, distinct)
    checked.append("duckdb")
except ImportError:
    pass
try:
    import polars as pl
    df = pl.concat([pl.read_parquet(f) for f in files])
    assert df.height == 2500 and df["tally_seq"].n_unique() == 2500, df.shape
    assert df["uid"].n_unique() == 2500
    checked.append("polars")
except ImportError:
    pass
print(" ".join(checked) if checked else "SKIP")
"#,
        files = files_literal(&s.root)
    );
    if let Some(checked) = python_readers(&script) {
        eprintln!("read by: {checked}");
    }
}

fn export(store: &Store, to: &Path) -> serde_json::Value {
    let out = tally(&[
        "export",
        "--root",
        root_arg(store),
        "--to",
        to.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The batches of an export directory, by name.
fn batches(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("batch-"))
        .collect();
    names.sort();
    names
}

#[test]
fn export_ships_each_published_row_once_and_a_retry_adds_nothing() {
    let s = store();
    let to = s.inputs.parent().unwrap().join("export");
    let a = s.inputs.join("a.csv");
    write_csv(&a, 0, 1500);
    assert!(run(&s, &[&a]).status.success());
    let first = export(&s, &to);
    assert_eq!(first["rows"], 1500, "{first}");
    assert_eq!(first["watermark_before"], 0);
    assert_eq!(first["watermark_after"], 1500);
    assert_eq!(batches(&to), vec!["batch-00000000000000000000.parquet"]);

    // Nothing new: nothing written.
    let again = export(&s, &to);
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(again["batch"], serde_json::Value::Null);

    // New rows go into a batch named by their first sequence number.
    let b = s.inputs.join("b.jsonl");
    write_jsonl(&b, 0, 700);
    assert!(run(&s, &[&a, &b]).status.success());
    let second = export(&s, &to);
    assert_eq!(second["rows"], 700, "{second}");
    assert_eq!(second["watermark_before"], 1500);
    assert_eq!(
        batches(&to),
        vec![
            "batch-00000000000000000000.parquet",
            "batch-00000000000000001500.parquet"
        ]
    );

    // An export interrupted before its watermark moved left a batch at the watermark: the next
    // export removes it, writes the batch again under the same name, and nothing is doubled.
    let c = s.inputs.join("c.csv");
    write_csv(&c, 10_000, 300);
    assert!(run(&s, &[&c]).status.success());
    let watermark = std::fs::read(to.join("WATERMARK")).unwrap();
    let third = export(&s, &to);
    assert_eq!(third["rows"], 300);
    let shipped = to.join(third["batch"].as_str().unwrap());
    std::fs::write(to.join("WATERMARK"), &watermark).unwrap();
    std::fs::write(
        to.join("batch-00000000000000099999.parquet.tmp"),
        b"partial",
    )
    .unwrap();
    let retried = export(&s, &to);
    assert_eq!(retried["rows"], 300, "{retried}");
    assert_eq!(retried["batch"], third["batch"]);
    let removed = retried["leftovers_removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{retried}");
    assert!(shipped.exists());
    assert_eq!(batches(&to).len(), 3);
}

#[test]
fn export_refuses_a_damaged_watermark_naming_it() {
    let s = store();
    let to = s.inputs.parent().unwrap().join("export");
    let a = s.inputs.join("a.csv");
    write_csv(&a, 0, 10);
    assert!(run(&s, &[&a]).status.success());
    export(&s, &to);
    std::fs::write(to.join("WATERMARK"), b"not sixteen bytes").unwrap();
    let out = tally(&[
        "export",
        "--root",
        root_arg(&s),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WATERMARK"), "{stderr}");
    assert!(
        stderr.contains("export watermark is unreadable"),
        "{stderr}"
    );
}

#[test]
fn scenarios_lists_the_five_incidents_and_their_twins() {
    let out = tally(&["scenarios", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let incidents: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| Some((s["name"].as_str()?, s["incident"].as_str()?)))
        .collect();
    assert_eq!(
        incidents,
        vec![
            ("ledger-vs-output", "000"),
            ("journal-drain", "001"),
            ("multi-step-publish", "002"),
            ("incremental-export", "003"),
            ("merge-cascade", "004")
        ]
    );
    for s in list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["incident"].is_null())
    {
        assert!(!s["twins"].as_array().unwrap().is_empty(), "{s}");
    }
    let plain = tally(&["scenarios"]);
    assert!(String::from_utf8_lossy(&plain.stdout).contains("twin ordinal-batch-ids"));
}

/// `tally bench` on small sizes: every real-disk section reports, the targets are judged from
/// the figures, and the Markdown report is written where asked.
#[test]
fn bench_measures_every_real_section_and_judges_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("performance.md");
    let md_arg = md.display().to_string();
    let work = dir.path().display().to_string();
    let out = tally(&[
        "bench",
        "--json",
        "--rows",
        "30000",
        "--batch-rows",
        "4096",
        "--recovery-rows",
        "1000,20000",
        "--staged-rows",
        "2000",
        "--memory-rows",
        "2000,8000",
        "--memory-runs",
        "2",
        "--process-runs",
        "2",
        "--callers",
        "1,8",
        "--latency-batches",
        "32",
        "--crashtest-runs",
        "2",
        "--work-dir",
        &work,
        "--out",
        &md_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let ingest = &report["ingest"];
    for run in [
        "bulk",
        "pipeline",
        "with_merges",
        "baseline",
        "baseline_default",
    ] {
        assert_eq!(ingest[run]["rows"], 30000, "{run}: {ingest}");
        assert!(ingest[run]["rows_per_second"].as_f64().unwrap() > 0.0);
    }
    assert!(
        ingest["with_merges"]["merges"].as_u64().unwrap() > 0,
        "{ingest}"
    );
    let latency = report["latency"].as_array().unwrap();
    assert_eq!(latency.len(), 2);
    // One caller: every batch pays its own log and ack fsyncs.
    assert!(
        latency[0]["fsyncs_per_batch"].as_f64().unwrap() >= 2.0,
        "{latency:?}"
    );
    let recovery = report["recovery"].as_array().unwrap();
    assert_eq!(recovery[1]["published_rows"], 20000);
    assert_eq!(recovery[1]["staged_rows"], 2000);
    // The bulk load writes no log: every byte written is a table file or a commit.
    let bulk = &ingest["bulk"];
    assert_eq!(bulk["segments_staged"], 0, "{bulk}");
    assert!(
        bulk["bytes_written"].as_u64().unwrap()
            < ingest["pipeline"]["bytes_written"].as_u64().unwrap(),
        "{ingest}"
    );
    let processes = &report["processes"];
    assert_eq!(processes["tally_seconds"].as_array().unwrap().len(), 2);
    let memory = report["memory"].as_array().unwrap();
    assert_eq!(memory.len(), 4, "two inputs, two rounds: {memory:?}");
    assert!(
        memory
            .iter()
            .all(|m| m["peak_rss_bytes"].as_u64().unwrap() > 1 << 20)
    );
    assert_eq!(report["crashtest"]["runs"], 2);
    assert!(report["simulator"].is_null());
    let targets = report["targets"].as_array().unwrap();
    assert!(targets.len() >= 6, "{targets:?}");
    let written = std::fs::read_to_string(&md).unwrap();
    assert!(written.contains("## Targets") && written.contains("## Recovery time"));
}

#[test]
fn a_completed_input_whose_file_changed_is_refused_naming_what_changed() {
    let s = store();
    let input = s.inputs.join("in.csv");
    write_csv(&input, 0, 500);
    assert!(run(&s, &[&input]).status.success());
    write_csv(&input, 0, 400); // 100 rows fewer
    let out = run(&s, &[&input]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the file changed since all 500 rows of it were ingested")
            && stderr.contains("give the file a new path"),
        "{}",
        text(&out)
    );
    assert_eq!(inspect_json(&s)["published_rows"], 500, "nothing changed");
}

#[test]
fn an_empty_input_is_ingested_not_called_already_acknowledged() {
    let s = store();
    let empty = s.inputs.join("empty.csv");
    std::fs::write(&empty, "id,name\n").unwrap();
    let out = run(&s, &[&empty]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ingested (0 rows written") && !stdout.contains("nothing new"),
        "{}",
        text(&out)
    );
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let s = store();
    let input = s.inputs.join("in.csv");
    write_csv(&input, 0, 10);
    assert!(run(&s, &[&input]).status.success());
    // A segment torn while being created: recovery removes it and logs a warning.
    std::fs::write(s.root.join("_tally/log/00000000000000000099.log"), b"torn").unwrap();
    let out = run(&s, &[&input]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARN"), "no warning logged: {}", text(&out));
    assert!(!stderr.contains('\u{1b}'), "colour codes: {}", text(&out));
}

/// The edge values of finding 1, as the user's engines see them: a string column empty for the
/// first 10,000 rows, a fraction after 10,000 integers, timestamps with an offset — read back by
/// pyarrow, DuckDB and polars with their values and a timestamp type.
#[test]
fn edge_values_read_back_exactly_in_pyarrow_duckdb_and_polars() {
    let s = store();
    let csv = s.inputs.join("edges.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "id,ts,late,x").unwrap();
    for i in 0..10_001u64 {
        let late = if i == 10_000 { "hello, world" } else { "" };
        let x = if i == 10_000 {
            "0.5".to_string()
        } else {
            i.to_string()
        };
        // One second apart, written at +02:00: row i is 10:00:00.123 UTC plus i seconds.
        writeln!(
            out,
            "{i},2024-03-01T12:00:{:02}.123+02:00,\"{late}\",{x}",
            i % 60
        )
        .unwrap();
    }
    drop(out);
    let ran = run(&s, &[&csv]);
    assert!(ran.status.success(), "{}", text(&ran));
    let script = format!(
        r#"
import datetime
files = {files}
utc = datetime.timezone.utc
first = datetime.datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=utc)
checked = []
try:
    import pyarrow as pa, pyarrow.parquet as pq
    t = pq.read_table(files).sort_by("id")
    assert t.schema.field("ts").type == pa.timestamp("ms", tz="UTC"), t.schema
    assert t.column("ts")[0].as_py() == first, t.column("ts")[0]
    assert t.column("late").null_count == 10000 and t.column("late")[10000].as_py() == "hello, world"
    assert t.schema.field("x").type == pa.float64() and t.column("x")[10000].as_py() == 0.5
    assert t.column("x")[9999].as_py() == 9999.0
    checked.append("pyarrow")
except ImportError:
    pass
try:
    import duckdb
    con = duckdb.connect()
    con.execute("set timezone = 'UTC'")
    row = con.execute("select typeof(ts), epoch_ms(ts), late, x from read_parquet(" + repr(files) + ") order by id desc limit 1").fetchone()
    assert row[0] == "TIMESTAMP WITH TIME ZONE", row
    assert row[1] == int(first.timestamp() * 1000) + 40 * 1000, row
    assert row[2:] == ("hello, world", 0.5), row
    checked.append("duckdb")
except ImportError:
    pass
try:
    import polars as pl
    df = pl.concat([pl.read_parquet(f) for f in files]).sort("id")
    assert df["ts"].dtype == pl.Datetime("ms", "UTC"), df["ts"].dtype
    assert df["ts"][0] == first, df["ts"][0]
    assert df["late"].null_count() == 10000 and df["late"][10000] == "hello, world"
    assert df["x"][10000] == 0.5
    checked.append("polars")
except ImportError:
    pass
print(" ".join(checked) if checked else "SKIP")
"#,
        files = files_literal(&s.root)
    );
    if let Some(checked) = python_readers(&script) {
        eprintln!("read by: {checked}");
    }
}
