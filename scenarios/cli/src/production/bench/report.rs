//! The report: the machine it ran on, every figure, and each target marked met or not.

use super::IngestRound;
use serde::Serialize;

use super::Report;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// UTC date of the run.
    pub date: String,
}

fn read_proc(path: &str) -> String {
    #[allow(clippy::disallowed_methods, reason = "machine facts for the report")]
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = read_proc("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_kib: f64 = read_proc("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        #[allow(clippy::disallowed_methods, reason = "the date of the report")]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (y, m, d) = civil((now / 86_400) as i64);
        Self {
            cpu,
            #[allow(clippy::disallowed_methods, reason = "machine facts for the report")]
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: read_proc("/proc/sys/kernel/osrelease").trim().to_string(),
            date: format!("{y:04}-{m:02}-{d:02}"),
        }
    }
}

/// One target: what it asks, what was measured, whether it is met, and — when it is not — what
/// the report's own figures say bounds it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub target: String,
    pub measured: String,
    pub met: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bound: String,
}

fn target(out: &mut Vec<Target>, target: &str, measured: String, met: bool, bound: String) {
    out.push(Target {
        target: target.into(),
        measured,
        met,
        bound: if met { String::new() } else { bound },
    });
}

/// What bounds ingest, from the run's byte counts.
/// Bytes a row costs outside the table files (log frames, ledger records, Delta commits).
fn log_bytes_per_row(p: &super::real::Ingest) -> f64 {
    (p.bytes_written - p.table_bytes_written) as f64 / p.rows as f64
}

fn ingest_bound(i: &super::IngestRuns) -> String {
    let p = &i.pipeline;
    let log_per_row = log_bytes_per_row(p);
    format!(
        "The pipeline writes every row twice before it is published: to the log ({log_per_row:.0} \
         bytes a row outside the table files, nearly all of it uncompressed Arrow IPC fsynced \
         before each acknowledgement; {} of the {} written) and then as Parquet ({:.0} bytes a \
         row), encoded from memory while its segment fills; the baseline writes {:.0} bytes a \
         row once. Both cores share the IPC encoding, the log writes and the Parquet encoding.",
        mib(p.bytes_written - p.table_bytes_written),
        mib(p.bytes_written),
        p.published_bytes as f64 / p.rows as f64,
        i.baseline.bytes as f64 / i.baseline.rows as f64,
    )
}

/// What bounds the simulator, from the cost breakdown.
fn simulator_bound(s: &super::simulator::Simulator) -> String {
    let b = &s.breakdown;
    let share = |us: f64| 100.0 * us / b.total_us.max(1e-9);
    format!(
        "A crash point costs {:.0} µs on one job: the oracle (every row, the ledger, the store \
         check, a second recovery and its idempotence check) {:.0}%, the workload itself {:.0}%, \
         recovery {:.0}%, the disk copy and crash image {:.0}% (table below).",
        b.total_us,
        share(b.oracle_us),
        share(b.workload_us),
        share(b.recovery_us),
        share(b.clone_us + b.crash_image_us),
    )
}

fn m(rows_per_second: f64) -> String {
    format!("{:.2} M rows/s", rows_per_second / 1e6)
}

fn memory_bound(small: u64, large: u64) -> String {
    let segment = tally_pipeline::Config::default().segment_bytes;
    format!(
        "tally run bulk-loads: it holds the input's batches of the row group it gathers and of \
         the one it encodes, and the encoded bytes not yet drained, and commits a file every {} \
         of input batches; {small} rows make fewer, partly filled files than {large}, and only \
         the larger input is merged (after the load, by its last flush).",
        mib(segment)
    )
}

pub fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    ingest_targets(&mut out, r);
    latency_targets(&mut out, r);
    recovery_targets(&mut out, r);
    memory_targets(&mut out, r);
    processes_targets(&mut out, r);
    simulator_targets(&mut out, r);
    out
}

fn ingest_targets(out: &mut Vec<Target>, r: &Report) {
    if let Some(i) = &r.ingest {
        // Each round's ratio compares runs made side by side; the target takes their median.
        let ratio_target =
            |out: &mut Vec<Target>, what: &str, run: fn(&IngestRound) -> f64, min| {
                let ratios: Vec<f64> = i
                    .rounds
                    .iter()
                    .filter(|x| !x.warmup)
                    .map(|x| run(x) / x.baseline)
                    .collect();
                let ratio = median(&ratios).unwrap_or(0.0);
                let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
                let measured = format!(
                    "{ratio:.2}×, median of {} rounds ({})",
                    ratios.len(),
                    each.join(", ")
                );
                target(out, what, measured, ratio >= min, ingest_bound(i));
            };
        ratio_target(
            out,
            "bulk load (`tally run`) ≥ 0.9× arrow-rs durable baseline (same encodings)",
            |x| x.bulk,
            0.9,
        );
        ratio_target(
            out,
            "streaming ingest→published ≥ 0.7× arrow-rs durable baseline (same encodings)",
            |x| x.streaming,
            0.7,
        );
        target(
            out,
            "streaming ingest→published ≥ 3 M rows/s, ZSTD(1), both cores",
            m(i.pipeline.rows_per_second),
            i.pipeline.rows_per_second >= 3e6,
            ingest_bound(i),
        );
        let bound = u64::from(i.merge_max_level + 1) * i.with_merges.published_bytes;
        target(
            out,
            "with merges, table bytes written ≤ (levels + 1) × final size",
            format!(
                "{:.2}× final size ({} levels + 1 = {})",
                i.with_merges.table_bytes_written as f64 / i.with_merges.published_bytes as f64,
                i.merge_max_level,
                i.merge_max_level + 1
            ),
            i.with_merges.table_bytes_written <= bound,
            String::new(),
        );
    }
}

fn latency_targets(out: &mut Vec<Target>, r: &Report) {
    for l in &r.latency {
        if l.callers > 1 {
            let per_group = l.batches as f64 / l.group_commits.max(1) as f64;
            let bound = format!(
                "Each group commit costs two fsyncs (the log's frames, then their ledger records); \
                 {} batches took {} group commits, {per_group:.1} batches a group: a leader lingers \
                 (a few yields) for the callers the last group answered, and a caller still \
                 encoding its batch after that waits for the next group, so with {} callers a \
                 group can hold fewer batches than there are callers.",
                l.batches, l.group_commits, l.callers
            );
            target(
                out,
                &format!(
                    "fsyncs per acknowledged batch ≤ 0.3 ({} callers)",
                    l.callers
                ),
                format!("{:.3}", l.fsyncs_per_batch),
                l.fsyncs_per_batch <= 0.3,
                bound,
            );
        }
    }
}

fn recovery_targets(out: &mut Vec<Target>, r: &Report) {
    if let (Some(small), Some(large)) = (r.recovery.first(), r.recovery.last()) {
        if large.published_rows > small.published_rows {
            target(
                out,
                &format!(
                    "recovery of {} published rows < 100 ms",
                    large.published_rows
                ),
                format!("{:.1} ms", large.median_ms),
                large.median_ms < 100.0,
                String::new(),
            );
            target(
                out,
                &format!(
                    "recovery of {} rows within 2× of {} rows",
                    large.published_rows, small.published_rows
                ),
                format!(
                    "{:.2}× ({:.1} ms vs {:.1} ms)",
                    large.median_ms / small.median_ms,
                    large.median_ms,
                    small.median_ms
                ),
                large.median_ms <= 2.0 * small.median_ms,
                String::new(),
            );
        }
    }
}

fn memory_targets(out: &mut Vec<Target>, r: &Report) {
    let (Some(small), Some(large)) = (
        r.memory.iter().map(|m| m.rows).min(),
        r.memory.iter().map(|m| m.rows).max(),
    ) else {
        return;
    };
    if large <= small {
        return;
    }
    // The ratio of each round: the largest input's peak over the smallest's, same round.
    let peak = |round: usize, rows: u64| {
        r.memory
            .iter()
            .find(|m| m.round == round && m.rows == rows)
            .map(|m| m.peak_rss_bytes as f64)
    };
    let rounds = r.memory.iter().map(|m| m.round).max().unwrap_or(0) + 1;
    let ratios: Vec<f64> = (0..rounds)
        .filter_map(|round| Some(peak(round, large)? / peak(round, small)?))
        .collect();
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    let shown: Vec<String> = ratios.iter().map(|x| format!("{x:.2}×")).collect();
    target(
        out,
        &format!(
            "peak memory of tally run flat in input size: ≤ 1.15× ({large} vs {small} rows) in every run"
        ),
        format!("{} over {} runs", shown.join(", "), ratios.len()),
        worst <= 1.15,
        memory_bound(small, large),
    );
}

fn processes_targets(out: &mut Vec<Target>, r: &Report) {
    let Some(p) = &r.processes else { return };
    // Each round's pyarrow time over its tally run time: the two ran side by side.
    let ratios: Vec<f64> = p
        .tally_seconds
        .iter()
        .zip(&p.pyarrow_seconds)
        .map(|(t, py)| py / t)
        .collect();
    let (Some(ratio), Some(t), Some(py)) = (
        median(&ratios),
        median(&p.tally_seconds),
        median(&p.pyarrow_seconds),
    ) else {
        return;
    };
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    target(
        out,
        "tally run ≥ 1.8× pyarrow, whole processes on one Parquet input (median of the rounds' ratios)",
        format!(
            "{ratio:.2}× ({}; medians {t:.2} s vs {py:.2} s)",
            each.join(", ")
        ),
        ratio >= 1.8,
        "tally run reads its input four times: it is validated in full before any row is \
         ingested, then loaded, and checksummed before and after (each checksum beside the scan \
         or the last commit, on the other core); and it compresses the same ZSTD(1) pages as \
         pyarrow, its largest cost (about half of its CPU in a profile, 2026-11-27)."
            .to_owned(),
    );
}

fn median(xs: &[f64]) -> Option<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn simulator_targets(out: &mut Vec<Target>, r: &Report) {
    if let Some(s) = &r.simulator {
        let d = &s.default_sweep.current;
        target(
            out,
            "simulator ≥ 10,000 crash points/s per core (default sweep, median per core)",
            format!(
                "{:.0} /s ({:.0} /s on {} jobs, {} runs, spread {:.0}%)",
                d.median_per_core,
                d.median,
                d.jobs,
                d.runs.len(),
                100.0 * d.spread
            ),
            d.median_per_core >= 10_000.0,
            simulator_bound(s),
        );
        if let Some(b) = &s.default_sweep.baseline {
            target(
                out,
                "default sweep ≥ 3× the pre-issue binary (median crash points/s, runs alternated)",
                format!(
                    "{:.2}× ({:.0} /s vs {:.0} /s){}",
                    b.ratio,
                    d.median,
                    b.sweep.median,
                    if b.same_work { "" } else { "; different work" }
                ),
                b.ratio >= 3.0,
                b.note.clone(),
            );
        }
        let scaling = s.jobs2.crash_points_per_second / s.jobs1.crash_points_per_second;
        target(
            out,
            "2 jobs ≥ 1.8× 1 job",
            format!("{scaling:.2}×"),
            scaling >= 1.8,
            "Each job has its own runtime and disk; the jobs share the machine's cores, the \
             allocator and memory bandwidth."
                .into(),
        );
        if let Some(c) = &r.crashtest {
            let ratio = d.median_per_core / c.cycles_per_second;
            target(
                out,
                "sim vs real ≥ 1000× (default sweep crash points/s per core, vs crashtest cycles/s)",
                format!(
                    "{ratio:.0}× ({:.0} /s vs {:.1} /s)",
                    d.median_per_core, c.cycles_per_second
                ),
                ratio >= 1000.0,
                simulator_bound(s),
            );
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    intro(&mut s, r);
    ingest_section(&mut s, r);
    latency_section(&mut s, r);
    recovery_section(&mut s, r);
    memory_section(&mut s, r);
    processes_section(&mut s, r);
    simulator_section(&mut s, r);
    sim_vs_real_section(&mut s, r);
    s
}

fn intro(s: &mut String, r: &Report) {
    *s += "# Performance\n\n";
    *s += "The latest figures of `tally bench`: the production path on the real disk and the \
          simulator, measured in one run. Regenerate with `./scripts/bench` (release build and \
          simulation build; it writes this file and `docs/performance.json`).\n\n";
    *s += &format!("Command: `{}`\n\n", r.command);
    let mc = &r.machine;
    *s += &format!(
        "Machine: {} × {}, {:.1} GiB memory, Linux {}; run on {}.\n\n",
        mc.cores, mc.cpu, mc.memory_gib, mc.kernel, mc.date
    );
    *s += "## Targets\n\n| target | measured | met |\n|---|---|---|\n";
    let targets = targets(r);
    for t in &targets {
        *s += &format!(
            "| {} | {} | {} |\n",
            t.target,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        );
    }
    let mut explained: Vec<&str> = Vec::new();
    for t in targets.iter().filter(|t| !t.bound.is_empty()) {
        if !explained.contains(&t.bound.as_str()) {
            explained.push(&t.bound);
            *s += &format!("\n**{}** — {}\n", t.target, t.bound);
        }
    }
}

fn ingest_section(s: &mut String, r: &Report) {
    if let Some(i) = &r.ingest {
        *s += &format!(
            "\n## Ingest to published Parquet\n\n{} rows of 8 columns (u64 id, i64 timestamp, a \
             100-value string, a unique 24-character string, three f64, a bool) in batches of {} \
             rows, ZSTD(1), on the real disk. Each pipeline figure runs from `open` to the \
             return of `flush`. The bulk load (`tally run`'s path) writes every row once, \
             straight into table files, each published by a durable Delta commit that advances \
             the source's ledger. Streaming ingest ({} concurrent callers, each its own source) \
             acknowledges every row through the log (group commit, log fsyncs); each segment's \
             rows are encoded into Parquet from memory while it fills and published behind a \
             durable Delta commit once it is sealed. The baseline is arrow-rs's \
             `ArrowWriter` writing the same batches into one file durably (temp file, fsync, \
             rename, directory fsync), once with the encodings tally picks and once with \
             arrow-rs defaults. The baseline with tally's encodings, the bulk load and streaming \
             ran alternated, a warm-up round then {} rounds; each of their rows is the median \
             round, and each ratio target the median of the rounds' ratios (every round below \
             the table). \"After the last row\": from the last row handed to the pipeline \
             (acknowledged; for the bulk load, its last file committed) to the return of \
             `flush`.\n\n",
            r.rows,
            r.batch_rows,
            i.streaming_callers,
            i.rounds.iter().filter(|x| !x.warmup).count()
        );
        *s += "| run | rows/s | seconds | after the last row | Parquet bytes | bytes/row | files | merges | table bytes written | all bytes written | fsyncs (file + dir) |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
        for (name, x) in [
            ("bulk load (`tally run`), no merges", &i.bulk),
            ("streaming, no merges", &i.pipeline),
            ("streaming, with merges", &i.with_merges),
        ] {
            *s += &format!(
                "| {name} | {} | {:.2} | {:.2} | {} | {:.1} | {} (max level {}) | {} | {} | {} | {} + {} |\n",
                m(x.rows_per_second),
                x.seconds,
                x.tail_seconds,
                mib(x.published_bytes),
                x.published_bytes as f64 / x.rows as f64,
                x.files_published,
                x.max_level,
                x.merges,
                mib(x.table_bytes_written),
                mib(x.bytes_written),
                x.file_syncs,
                x.dir_syncs
            );
        }
        for b in [&i.baseline, &i.baseline_default] {
            *s += &format!(
                "| arrow-rs, {} encodings | {} | {:.2} | – | {} | {:.1} | 1 | – | {} | {} | 1 + 1 |\n",
                b.encodings,
                m(b.rows_per_second),
                b.seconds,
                mib(b.bytes),
                b.bytes as f64 / b.rows as f64,
                mib(b.bytes),
                mib(b.bytes)
            );
        }
        *s += &rounds_line(&i.rounds);
        *s += &format!(
            "\nWith merges (streaming, one caller): segments of {} bytes, fan-in {}, {} levels above level 0. \
             \"All bytes written\" adds the log (Arrow IPC frames, written once before staging), \
             ledger records and Delta commits to the table files.\n",
            i.merge_segment_bytes, i.merge_fan_in, i.merge_max_level
        );
    }
}

/// Every round of the ingest section, in the order run.
fn rounds_line(rounds: &[IngestRound]) -> String {
    let rounds: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(n, x)| {
            format!(
                "round {n}{}: arrow-rs {}, bulk {} ({:.2}×), streaming {} ({:.2}×)",
                if x.warmup {
                    " (warm-up, not counted)"
                } else {
                    ""
                },
                m(x.baseline),
                m(x.bulk),
                x.bulk / x.baseline,
                m(x.streaming),
                x.streaming / x.baseline
            )
        })
        .collect();
    format!("\nRounds: {}.\n", rounds.join("; "))
}

fn latency_section(s: &mut String, r: &Report) {
    if !r.latency.is_empty() {
        *s += "\n## Acknowledged-ingest latency\n\nEach caller ingests 1,000-row batches of its \
              own source; latency is from the call to its acknowledgement (rows durable). fsyncs \
              count file and directory syncs over all acknowledged batches.\n\n\
              | callers | batches | p50 | p99 | max | batches/s | fsyncs per batch | group commits |\n|---|---|---|---|---|---|---|---|\n";
        for l in &r.latency {
            *s += &format!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} | {:.3} | {} |\n",
                l.callers,
                l.batches,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                l.batches_per_second,
                l.fsyncs_per_batch,
                l.group_commits
            );
        }
    }
}

fn recovery_section(s: &mut String, r: &Report) {
    if !r.recovery.is_empty() {
        *s += "\n## Recovery time\n\nOpening a store (recovery runs on every open) with the \
              published rows shown, published by that many flushes (a commit each, plus one per \
              merge), and the same unpublished staging in the log. Median of 7 opens after a \
              first one: as the store is (the log replayed from its newest checkpoint, one every \
              10 commits), then with its checkpoints moved out of `_delta_log/` (every commit \
              replayed from 0).\n\n\
              | published rows | flushes | commits | staged rows | files | live segments | from checkpoint | median | runs | median without checkpoints | runs |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
        let runs = |v: &[f64]| {
            v.iter()
                .map(|t| format!("{t:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for x in &r.recovery {
            *s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} ms | {} | {:.2} ms | {} |\n",
                x.published_rows,
                x.flushes,
                x.commits,
                x.staged_rows,
                x.files,
                x.segments,
                x.checkpoint
                    .map_or_else(|| "–".to_string(), |v| v.to_string()),
                x.median_ms,
                runs(&x.runs_ms),
                x.without_checkpoints_median_ms,
                runs(&x.without_checkpoints_runs_ms),
            );
        }
    }
}

fn memory_section(s: &mut String, r: &Report) {
    if !r.memory.is_empty() {
        *s += "\n## Peak memory of `tally run`\n\nOne Parquet input of each size; peak resident \
              set (VmHWM) of the `tally run` process, every input once a round.\n\n\
              | round | rows | peak RSS | seconds |\n|---|---|---|---|\n";
        for x in &r.memory {
            *s += &format!(
                "| {} | {} | {} | {:.2} |\n",
                x.round,
                x.rows,
                mib(x.peak_rss_bytes),
                x.seconds
            );
        }
    }
}

fn processes_section(s: &mut String, r: &Report) {
    let Some(p) = &r.processes else { return };
    *s += &format!(
        "\n## Whole processes: `tally run` and pyarrow\n\nOne Parquet input of {} rows ({}), \
         the benchmark's 8 columns. `tally run` into a fresh store, and pyarrow \
         (`pq.read_table`, `pq.write_table(compression='zstd', compression_level=1)`, fsync of \
         the file, rename, fsync of the directory), alternated, each timed from outside as a \
         whole process.\n\n| round | tally run | pyarrow | pyarrow ÷ tally run |\n|---|---|---|---|\n",
        p.rows,
        mib(p.input_bytes)
    );
    for (round, t) in p.tally_seconds.iter().enumerate() {
        let (py, ratio) = p.pyarrow_seconds.get(round).map_or_else(
            || ("–".to_owned(), "–".to_owned()),
            |x| (format!("{x:.2} s"), format!("{:.2}×", x / t)),
        );
        *s += &format!("| {round} | {t:.2} s | {py} | {ratio} |\n");
    }
    if let Some(why) = &p.pyarrow_missing {
        *s += &format!("\npyarrow did not run: {why}\n");
    }
}

fn default_sweep_section(s: &mut String, sim: &super::simulator::Simulator) {
    let d = &sim.default_sweep;
    *s += &format!(
        "\n## Simulator\n\nA crash point is one crash image recovered with the real recovery \
         code and checked by the oracle. The default sweep is `tally sweep` as users run it \
         (`cargo sim sweep`: scenario `{}`, seeds {}, one job per core, doublecheck 0.02), \
         run as a child process (`{}`); crash points/s is the sweep's own (`crash_points / \
         seconds` of its JSON: its seeds, without the doublecheck), wall is the whole process.\n\n\
         | binary | run | crash points | seconds | wall seconds | crash points/s |\n|---|---|---|---|---|---|\n",
        sim.scenario, d.current.seeds, d.command
    );
    // The runs alternate: current 1, baseline 1, current 2, ...
    let sweeps: Vec<&super::simulator::DefaultSweep> = std::iter::once(&d.current)
        .chain(d.baseline.as_ref().map(|b| &b.sweep))
        .collect();
    for i in 0..d.current.runs.len() {
        for sweep in &sweeps {
            if let Some(run) = sweep.runs.get(i) {
                *s += &format!(
                    "| `{}` | {} | {} | {:.1} | {:.1} | {:.0} |\n",
                    sweep.binary,
                    i + 1,
                    run.crash_points,
                    run.seconds,
                    run.wall_seconds,
                    run.crash_points_per_second
                );
            }
        }
    }
    *s += "\n| binary | jobs | median | min | max | spread | median per core | median wall |\n|---|---|---|---|---|---|---|---|\n";
    for sweep in &sweeps {
        *s += &format!(
            "| `{}` | {} | {:.0} | {:.0} | {:.0} | {:.1}% | {:.0} | {:.1} s |\n",
            sweep.binary,
            sweep.jobs,
            sweep.median,
            sweep.min,
            sweep.max,
            100.0 * sweep.spread,
            sweep.median_per_core,
            sweep.median_wall_seconds
        );
    }
    if let Some(b) = &d.baseline {
        *s += &format!(
            "\nCurrent ÷ baseline: {:.2}× by median crash points/s, {:.2}× by median wall time; \
             run by run (each current run ÷ the baseline run right after it) {}.{}\n",
            b.ratio,
            b.wall_ratio,
            b.pair_ratios
                .iter()
                .map(|r| format!("{r:.2}×"))
                .collect::<Vec<_>>()
                .join(", "),
            if b.same_work {
                " Both checked the same crash points in every run.".to_string()
            } else {
                format!(" Note: {}.", b.note)
            }
        );
    }
}

fn simulator_section(s: &mut String, r: &Report) {
    if let Some(sim) = &r.simulator {
        default_sweep_section(s, sim);
        *s += &format!(
            "\nIn process (`Sweep::run` timed inside the bench), scenario `{}`, seeds 0..{}:\n\n\
             | jobs | seconds | seeds/s | crash points | crash points/s |\n|---|---|---|---|---|\n",
            sim.scenario, sim.jobs1.seeds
        );
        for j in [&sim.jobs1, &sim.jobs2] {
            *s += &format!(
                "| {} | {:.1} | {:.2} | {} | {:.0} |\n",
                j.jobs, j.seconds, j.seeds_per_second, j.crash_points, j.crash_points_per_second
            );
        }
        *s += &format!(
            "\nExplore (every persistence variant of every crash point of the small workload, \
             all six models): {} states in {:.1} s, {:.0} states/s.\n",
            sim.explore.states, sim.explore.seconds, sim.explore.states_per_second
        );
        let b = &sim.breakdown;
        *s += &format!(
            "\nCost per crash point, 1 job, seeds 0..{} ({} points): the same seeds run to \
             each depth (count the point, copy the disk, apply the crash model, recover) and in \
             full; each part is the difference between consecutive depths.\n\n\
             | part | µs per point | share |\n|---|---|---|\n",
            b.seeds, b.crash_points
        );
        for (name, us) in [
            (
                "the workload itself (spread over its points)",
                b.workload_us,
            ),
            ("clone of the disk", b.clone_us),
            ("crash image (the model applied)", b.crash_image_us),
            ("recovery", b.recovery_us),
            (
                "oracle (rows, ledger, levels, store check, second recovery)",
                b.oracle_us,
            ),
        ] {
            *s += &format!(
                "| {name} | {us:.1} | {:.0}% |\n",
                100.0 * us / b.total_us.max(1e-9)
            );
        }
        *s += &format!("| total (full run) | {:.1} | |\n", b.total_us);
    }
}

fn sim_vs_real_section(s: &mut String, r: &Report) {
    if let Some(c) = &r.crashtest {
        *s += &format!(
            "\n## Sim vs real\n\n`tally crashtest`: {} crash-restart cycles on the real disk \
             (child process aborted at a seeded call, recovery and the oracle in a fresh \
             process) in {:.1} s: {:.1} cycles/s.",
            c.runs, c.seconds, c.cycles_per_second
        );
        if let Some(sim) = &r.simulator {
            let per_core = sim.default_sweep.current.median_per_core;
            *s += &format!(
                " The simulator's default sweep checks {per_core:.0} crash points/s per core: \
                 {:.0}× as many.",
                per_core / c.cycles_per_second
            );
        }
        *s += "\n";
    }
}
