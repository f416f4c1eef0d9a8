//! A filesystem that makes every call on a real backend and repeats each call that changed it
//! on a simulated disk, one call at a time and in the same order on both, so that the simulated
//! disk's crash images can be set beside what the real disk kept after a power loss (the
//! fidelity check of power-loss runs: docs/harness.md, "Fidelity").
//!
//! Invariant: between two calls, the simulated disk's visible state is the real disk's, made
//! by the same calls in the same order. Calls take turns (an async lock held from the real
//! call's start to the simulated call's end), so no interleaving can order them differently
//! on the two. A call the real disk refused is not repeated; a call the real disk made and the
//! simulated one refused is a divergence, recorded and reported.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tally_faults::Backend;
use tally_sim::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpKind, OpenMode, SimFs, SimLock};

/// Which of the real backend's syncs the mirror skips while the simulated disk makes them: a
/// real disk whose fsync does not reach the disk, for the check's negative control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealLies {
    pub sync: bool,
    pub sync_dir: bool,
}

#[derive(Debug, Default)]
struct Shared {
    turn: tokio::sync::Mutex<()>,
    /// The call holding the turn, from its real half's start to its simulated half's end.
    in_flight: Mutex<Option<String>>,
    divergences: Mutex<Vec<String>>,
    lies: RealLies,
}

/// Marks a call in flight for as long as it lives. Dropped before [`InFlight::finish`], the
/// call was cancelled between its two halves: a divergence.
struct InFlight<'a> {
    shared: &'a Shared,
    finished: bool,
}

impl<'a> InFlight<'a> {
    fn new(shared: &'a Shared, what: &str) -> Self {
        *lock(&shared.in_flight) = Some(what.to_owned());
        InFlight {
            shared,
            finished: false,
        }
    }

    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let what = lock(&self.shared.in_flight).take();
        if !self.finished {
            let what = what.unwrap_or_default();
            self.shared
                .diverged(format!("{what}: cancelled before both disks had made it"));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Runs `real`, then, if it succeeded, `sim`, holding the turn throughout.
    async fn both<R, S>(
        &self,
        what: String,
        real: impl Future<Output = io::Result<R>>,
        sim: impl Future<Output = io::Result<S>>,
    ) -> io::Result<(R, Option<S>)> {
        let _turn = self.turn.lock().await;
        let call = InFlight::new(self, &what);
        let done = match real.await {
            Ok(done) => done,
            Err(e) => {
                call.finish();
                return Err(e);
            }
        };
        let sim = sim.await;
        call.finish();
        match sim {
            Ok(s) => Ok((done, Some(s))),
            Err(e) => {
                self.refused(&what, &e);
                Ok((done, None))
            }
        }
    }

    fn diverged(&self, what: String) {
        lock(&self.divergences).push(what);
    }

    /// A call the real disk made and the simulated one refused.
    fn refused(&self, what: &str, e: &io::Error) {
        self.diverged(format!(
            "{what}: the real disk made it, the simulated one: {e}"
        ));
    }
}

/// `real`, mirrored onto `sim` (see the module's note).
#[derive(Clone, Debug)]
pub struct MirrorFs<F> {
    real: F,
    sim: SimFs,
    shared: Arc<Shared>,
}

impl<F: Fs> MirrorFs<F> {
    /// `sim` must already hold, durably, the directories above the ones the calls will use.
    pub fn new(real: F, sim: SimFs, lies: RealLies) -> Self {
        let shared = Arc::new(Shared {
            lies,
            ..Shared::default()
        });
        Self { real, sim, shared }
    }

    pub fn sim(&self) -> &SimFs {
        &self.sim
    }

    /// The call being made on both disks right now, if any: while there is one, the two
    /// disks may differ by it.
    pub fn in_flight(&self) -> Option<String> {
        lock(&self.shared.in_flight).clone()
    }

    /// Calls the real disk made and the simulated one refused, or answered differently.
    pub fn divergences(&self) -> Vec<String> {
        lock(&self.shared.divergences).clone()
    }

    fn file(&self, real: F::File, sim: Option<tally_sim::SimFile>, path: &Path) -> MirrorFile<F> {
        MirrorFile {
            real,
            sim,
            path: path.to_owned(),
            shared: self.shared.clone(),
        }
    }
}

fn named(op: &str, path: &Path) -> String {
    format!("{op} {}", path.display())
}

fn named2(op: &str, from: &Path, to: &Path) -> String {
    format!("{op} {} -> {}", from.display(), to.display())
}

/// A file of a [`MirrorFs`]: the real handle and, unless the simulated disk refused to open
/// it (a divergence), the simulated one.
#[derive(Debug)]
pub struct MirrorFile<F: Fs> {
    real: F::File,
    sim: Option<tally_sim::SimFile>,
    path: PathBuf,
    shared: Arc<Shared>,
}

/// Both disks' locks on one path.
#[derive(Debug)]
pub struct MirrorLock<F: Fs> {
    _real: F::Lock,
    _sim: Option<SimLock>,
}

impl<F: Fs> Fs for MirrorFs<F> {
    type File = MirrorFile<F>;
    type Lock = MirrorLock<F>;

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Self::File> {
        let (real, sim) = self
            .shared
            .both(
                named("create", path),
                self.real.create(path, mode),
                self.sim.create(path, mode),
            )
            .await?;
        Ok(self.file(real, sim, path))
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        let (real, sim) = self
            .shared
            .both(
                named("open", path),
                self.real.open(path, mode),
                self.sim.open(path, mode),
            )
            .await?;
        Ok(self.file(real, sim, path))
    }

    async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.real.read(path).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let real = async {
            if self.shared.lies.sync_dir {
                return Ok(());
            }
            self.real.sync_dir(path).await
        };
        let what = named("sync_dir", path);
        self.shared
            .both(what, real, self.sim.sync_dir(path))
            .await?;
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let what = named2("rename", from, to);
        let (real, sim) = (self.real.rename(from, to), self.sim.rename(from, to));
        self.shared.both(what, real, sim).await?;
        Ok(())
    }

    async fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        let what = named2("rename_noreplace", from, to);
        let real = self.real.rename_noreplace(from, to);
        let sim = self.sim.rename_noreplace(from, to);
        self.shared.both(what, real, sim).await?;
        Ok(())
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let what = named2("hard_link", from, to);
        let (real, sim) = (self.real.hard_link(from, to), self.sim.hard_link(from, to));
        self.shared.both(what, real, sim).await?;
        Ok(())
    }

    async fn unlink(&self, path: &Path) -> io::Result<()> {
        let (real, sim) = (self.real.unlink(path), self.sim.unlink(path));
        self.shared.both(named("unlink", path), real, sim).await?;
        Ok(())
    }

    async fn create_dir(&self, path: &Path) -> io::Result<()> {
        let (real, sim) = (self.real.create_dir(path), self.sim.create_dir(path));
        self.shared
            .both(named("create_dir", path), real, sim)
            .await?;
        Ok(())
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let (real, sim) = (
            self.real.create_dir_all(path),
            self.sim.create_dir_all(path),
        );
        let what = named("create_dir_all", path);
        self.shared.both(what, real, sim).await?;
        Ok(())
    }

    async fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let (real, sim) = (self.real.remove_dir(path), self.sim.remove_dir(path));
        self.shared
            .both(named("remove_dir", path), real, sim)
            .await?;
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.real.list_dir(path).await
    }

    async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.real.metadata(path).await
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        self.real.exists(path).await
    }

    async fn try_lock(&self, path: &Path) -> io::Result<Self::Lock> {
        let (real, sim) = (self.real.try_lock(path), self.sim.try_lock(path));
        let (real, sim) = self.shared.both(named("lock", path), real, sim).await?;
        Ok(MirrorLock {
            _real: real,
            _sim: sim,
        })
    }
}

impl<F: Fs> MirrorFile<F> {
    /// Runs a call on the real file and, if it succeeded, on the simulated one (unless the
    /// file has no simulated handle: its open diverged, already reported).
    async fn both<R, S: Future>(
        &self,
        op: &str,
        real: impl Future<Output = io::Result<R>>,
        sim: Option<S>,
    ) -> io::Result<(R, Option<S::Output>)> {
        let what = named(op, &self.path);
        let sim = async {
            match sim {
                Some(call) => Ok(Some(call.await)),
                None => Ok(None),
            }
        };
        let (real, sim) = self.shared.both(what, real, sim).await?;
        Ok((real, sim.flatten()))
    }
}

impl<F: Fs> FsFile for MirrorFile<F> {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.real.read_at(offset, len).await
    }

    async fn read_all(&self) -> io::Result<Vec<u8>> {
        self.real.read_all().await
    }

    async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let real = self.real.write_at(offset, buf);
        let (_, sim) = self
            .both(
                "write_at",
                real,
                self.sim.as_ref().map(|s| s.write_at(offset, buf)),
            )
            .await?;
        self.check("write_at", sim.map(|r| r.map(|()| 0)), 0);
        Ok(())
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        let real = self.real.append(buf);
        let (at, sim) = self
            .both("append", real, self.sim.as_ref().map(|s| s.append(buf)))
            .await?;
        self.check("append", sim, at);
        Ok(at)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        let real = self.real.set_len(len);
        let (_, sim) = self
            .both("set_len", real, self.sim.as_ref().map(|s| s.set_len(len)))
            .await?;
        self.check("set_len", sim.map(|r| r.map(|()| 0)), 0);
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        let lie = self.shared.lies.sync;
        let real = async {
            if lie {
                return Ok(());
            }
            self.real.sync().await
        };
        let (_, sim) = self
            .both("sync", real, self.sim.as_ref().map(|s| s.sync()))
            .await?;
        self.check("sync", sim.map(|r| r.map(|()| 0)), 0);
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        self.real.len().await
    }
}

impl<F: Fs> MirrorFile<F> {
    /// Records a simulated call that failed, or answered other than the real one.
    fn check(&self, op: &str, sim: Option<io::Result<u64>>, real: u64) {
        let what = named(op, &self.path);
        match sim {
            Some(Err(e)) => self.shared.refused(&what, &e),
            Some(Ok(at)) if at != real => self.shared.diverged(format!(
                "{what}: the real disk answered {real}, the simulated one {at}"
            )),
            _ => {}
        }
    }
}

impl<F: Backend> Backend for MirrorFs<F> {
    /// The real backend's failing sync, and the simulated disk's (which drops the file's
    /// unsynced data, as the real disk's cache will at the power loss).
    async fn fail_sync(file: &Self::File) -> io::Error {
        let _turn = file.shared.turn.lock().await;
        if let Some(sim) = &file.sim {
            let _ = sim.fail_sync();
        }
        F::fail_sync(&file.real).await
    }

    /// The real disk keeps no op log, and the simulated one logs only the calls that changed
    /// it: the fault layer numbers the calls itself.
    fn next_index(&self) -> Option<u64> {
        None
    }

    fn answered(&self, _: OpKind, _: &Path, _: Option<&Path>, _: Result<(), io::ErrorKind>) {}
}
