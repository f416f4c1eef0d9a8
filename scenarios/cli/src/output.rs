//! What the commands share: writing to stdout, parsing seed ranges, progress bars.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

/// Writes to stdout. A reader that went away (`tally ... | head`) is not an error of ours.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to stdout"),
    }
}

/// A line of `tally bench`'s progress on stderr (both builds' benches), prefixed `bench:`.
pub fn say(line: &str) {
    eprintln!("bench: {line}");
}

/// A progress bar drawn on stderr from `template`, over `length` steps when known, ticking on
/// its own (hidden when `hidden`).
pub fn progress_bar(template: &str, length: Option<u64>, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = length.map_or_else(ProgressBar::no_length, ProgressBar::new);
    bar.set_style(ProgressStyle::with_template(template).expect("the template is valid"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
