//! A LazyFS mount for power-loss crash runs: a FUSE filesystem with its own page cache, whose
//! unsynced file data is dropped when `lazyfs::clear-cache` is written to its fault FIFO.
//! LazyFS does not model directory entries: creates, renames and unlinks reach the filesystem
//! under it at once (docs/harness.md, "Power-loss runs").

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// A mounted LazyFS: `mount` shows `backing` through LazyFS's cache. Unmounted when dropped.
pub struct LazyFs {
    pub mount: PathBuf,
    fifo: PathBuf,
    process: Child,
}

/// How long a mount may take: LazyFS allocates its whole cache before it mounts (measured:
/// 4.5 s for 2 GiB on the 2-core machine).
const MOUNT_WAIT: Duration = Duration::from_secs(60);

/// How long a power loss may take to show: LazyFS reads the FIFO's command on a thread of its
/// own and answers nothing, so the probe file tells when the cache was dropped.
const CLEAR_WAIT: Duration = Duration::from_secs(30);

/// Written unsynced before each power loss: the clear has happened once it reads back empty.
const CLEAR_PROBE: &str = ".power-loss-probe";

#[allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the binary's edge: a FUSE mount, its log and its files on the real disk"
)]
impl LazyFs {
    /// Mounts the LazyFS built in `build` (`lazyfs` and `libpcache.so.0`, as
    /// `../shared/tools/lazyfs/build.sh` leaves them) over `dir/backing` at `dir/mnt`.
    pub fn mount(build: &Path, dir: &Path) -> anyhow::Result<Self> {
        let binary = build.join("lazyfs");
        if !binary.is_file() {
            bail!(
                "{} is not a LazyFS build (no {}): build it with ../shared/tools/lazyfs/build.sh {}",
                build.display(),
                binary.display(),
                build.display()
            );
        }
        if !Path::new("/dev/fuse").exists() {
            bail!("/dev/fuse is missing: power-loss runs need FUSE");
        }
        let (backing, mount, fifo) = (dir.join("backing"), dir.join("mnt"), dir.join("fifo"));
        for d in [&backing, &mount] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        // A crashtest killed before it unmounted leaves its LazyFS mounted: mounting over it
        // would run on top of the old cache.
        if is_mounted(&mount)? {
            bail!(
                "{} is still mounted (a crashtest that was stopped before it unmounted): run fusermount3 -u {} and try again",
                mount.display(),
                mount.display()
            );
        }
        make_fifo(&fifo)?;
        let config = dir.join("lazyfs.toml");
        std::fs::write(&config, config_text(&fifo))?;
        let log = dir.join("lazyfs.log");
        let output = std::fs::File::create(&log)?;
        let process = Command::new(&binary)
            .arg(&mount)
            .arg("--config-path")
            .arg(&config)
            .args(["-o", "allow_other", "-o", "modules=subdir", "-o"])
            .arg(format!("subdir={}", backing.display()))
            .env("LD_LIBRARY_PATH", build)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut lazyfs = LazyFs {
            mount,
            fifo,
            process,
        };
        let started = std::time::Instant::now();
        while started.elapsed() < MOUNT_WAIT {
            if is_mounted(&lazyfs.mount)? {
                return Ok(lazyfs);
            }
            if let Some(status) = lazyfs.process.try_wait()? {
                bail!(
                    "LazyFS exited ({status}) before mounting; its log: {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "LazyFS did not mount at {} within {} s; its log: {}",
            lazyfs.mount.display(),
            MOUNT_WAIT.as_secs(),
            log.display()
        )
    }

    /// Drops every byte written under the mount and not synced: a power loss for file data.
    /// Returns once a probe file written unsynced just before reads back empty.
    pub fn power_loss(&self) -> anyhow::Result<()> {
        let probe = self.mount.join(CLEAR_PROBE);
        std::fs::write(&probe, b"unsynced")?;
        std::fs::write(&self.fifo, "lazyfs::clear-cache\n")
            .with_context(|| format!("writing to LazyFS's FIFO {}", self.fifo.display()))?;
        let started = std::time::Instant::now();
        while started.elapsed() < CLEAR_WAIT {
            if std::fs::read(&probe)?.is_empty() {
                std::fs::remove_file(&probe)?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!(
            "LazyFS did not drop its cache within {} s of lazyfs::clear-cache",
            CLEAR_WAIT.as_secs()
        )
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mount)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The configuration `mount` gives LazyFS: no eviction (so nothing unsynced is written back
/// on its own), a 512 MiB cache (a run's store holds a few MiB, and LazyFS allocates the whole
/// cache before it mounts), no operation log.
fn config_text(fifo: &Path) -> String {
    format!(
        "[faults]\nfifo_path=\"{}\"\n[cache]\napply_eviction=false\n[cache.simple]\n\
         custom_size=\"512mb\"\nblocks_per_page=1\n[filesystem]\nlog_all_operations=false\n\
         logfile=\"\"\n",
        fifo.display()
    )
}

#[allow(clippy::disallowed_methods, reason = "the binary's edge: mkfifo")]
fn make_fifo(fifo: &Path) -> anyhow::Result<()> {
    if fifo.exists() {
        return Ok(());
    }
    let status = Command::new("mkfifo")
        .arg(fifo)
        .status()
        .context("running mkfifo")?;
    if !status.success() {
        bail!("mkfifo {} failed", fifo.display());
    }
    Ok(())
}

/// Whether `path` is a mount point, from the kernel's table of this process's mounts.
#[allow(clippy::disallowed_methods, reason = "the binary's edge: /proc")]
fn is_mounted(path: &Path) -> anyhow::Result<bool> {
    let table =
        std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    // The table escapes space, tab, newline and backslash in octal.
    let wanted: String = path
        .display()
        .to_string()
        .chars()
        .map(|c| match c {
            ' ' => r"\040".to_owned(),
            '\t' => r"\011".to_owned(),
            '\n' => r"\012".to_owned(),
            '\\' => r"\134".to_owned(),
            c => c.to_string(),
        })
        .collect();
    Ok(table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|point| point == wanted))
}
