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

/// What a power loss waits for LazyFS to take the FIFO's command (it reads it on a thread of
/// its own and says nothing back).
const CLEAR_SETTLE: Duration = Duration::from_millis(200);

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge: a FUSE mount and its files on the real disk"
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
        make_fifo(&fifo)?;
        let config = dir.join("lazyfs.toml");
        std::fs::write(&config, config_text(&fifo))?;
        let process = Command::new(&binary)
            .arg(&mount)
            .arg("--config-path")
            .arg(&config)
            .args(["-o", "allow_other", "-o", "modules=subdir", "-o"])
            .arg(format!("subdir={}", backing.display()))
            .env("LD_LIBRARY_PATH", build)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let lazyfs = LazyFs {
            mount,
            fifo,
            process,
        };
        for _ in 0..100 {
            if is_mounted(&lazyfs.mount)? {
                return Ok(lazyfs);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "LazyFS did not mount at {} within 5 s",
            lazyfs.mount.display()
        )
    }

    /// Drops every byte written under the mount and not synced: a power loss for file data.
    pub fn power_loss(&self) -> anyhow::Result<()> {
        std::fs::write(&self.fifo, "lazyfs::clear-cache\n")
            .with_context(|| format!("writing to LazyFS's FIFO {}", self.fifo.display()))?;
        std::thread::sleep(CLEAR_SETTLE);
        Ok(())
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
/// on its own), a cache large enough for every run, no operation log.
fn config_text(fifo: &Path) -> String {
    format!(
        "[faults]\nfifo_path=\"{}\"\n[cache]\napply_eviction=false\n[cache.simple]\n\
         custom_size=\"2gb\"\nblocks_per_page=1\n[filesystem]\nlog_all_operations=false\n\
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
    let wanted = path.display().to_string();
    Ok(table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|point| point == wanted))
}
