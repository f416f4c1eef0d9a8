//! What identifies an input file's content: its size and an XXH3-64 checksum of its bytes
//! (see "What identifies a source" in the README). The ledger binds this fingerprint to the
//! source with its first acknowledged part, so a resume over a changed file, or a completed
//! source whose file changed, is refused instead of resumed at a stale row or skipped.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "the user's input files are read at the binary's edge; they are not part of a store"
)]

use std::fs::File;
use std::hash::Hasher;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tally_pipeline::Fingerprint;

use crate::input::InputError;

/// Bytes read per call while checksumming.
const CHUNK: usize = 1 << 20;

fn read_failure(path: &Path) -> impl Fn(std::io::Error) -> InputError + '_ {
    move |e| InputError {
        file: path.to_path_buf(),
        location: None,
        message: format!("reading it to checksum its content: {e}"),
    }
}

/// Refuses anything but a regular file: a device or a pipe has no content to bind (and
/// `/dev/zero` would never end).
fn check_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<(), InputError> {
    if metadata.is_file() {
        return Ok(());
    }
    Err(InputError {
        file: path.to_path_buf(),
        location: None,
        message: "not a regular file: tally ingests files, not devices, pipes or directories"
            .into(),
    })
}

/// Checks that `path` is a regular file before anything else reads it.
pub fn regular_file(path: &Path) -> Result<(), InputError> {
    let metadata = std::fs::metadata(path).map_err(read_failure(path))?;
    check_regular(path, &metadata)
}

/// [`fingerprint`] on the runtime's blocking pool: the caller reads the file meanwhile (its
/// scan, its last commit), the two reads on two cores. Dropping the future stops the read at
/// its next chunk: a run that fails meanwhile exits without reading its input to the end.
/// (The simulation build, which never runs `tally run`, reads when the future is awaited.)
pub fn fingerprint_aside(
    path: &Path,
) -> impl std::future::Future<Output = Result<Fingerprint, InputError>> + use<> {
    let stop = Arc::new(AtomicBool::new(false));
    let work = {
        let (path, stop) = (path.to_path_buf(), Arc::clone(&stop));
        move || read_fingerprint(&path, &stop)
    };
    #[cfg(not(madsim))]
    let work = tokio::task::spawn_blocking(work);
    let path = path.to_path_buf();
    async move {
        let _stop = StopOnDrop(stop);
        #[cfg(madsim)]
        let result = {
            let _ = &path;
            work()
        };
        #[cfg(not(madsim))]
        let result = work.await.unwrap_or_else(|e| {
            Err(InputError {
                file: path,
                location: None,
                message: format!("checksumming its content: {e}"),
            })
        });
        result
    }
}

/// Tells a checksum on the blocking pool to stop once its future is gone.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The fingerprint of the file at `path`, read once from start to end.
pub fn fingerprint(path: &Path) -> Result<Fingerprint, InputError> {
    read_fingerprint(path, &AtomicBool::new(false))
}

/// [`fingerprint`], giving up between chunks once `stop` is set.
fn read_fingerprint(path: &Path, stop: &AtomicBool) -> Result<Fingerprint, InputError> {
    let fail = read_failure(path);
    // Checked before the open too: opening a pipe blocks until a writer comes.
    regular_file(path)?;
    let mut file = File::open(path).map_err(&fail)?;
    check_regular(path, &file.metadata().map_err(&fail)?)?;
    let mut hasher = twox_hash::XxHash3_64::with_seed(0);
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(InputError {
                file: path.to_path_buf(),
                location: None,
                message: "checksum abandoned: the run stopped".into(),
            });
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        hasher.write(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Fingerprint {
        bytes,
        checksum: hasher.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_a_directory_is_refused_not_read_forever() {
        for path in ["/dev/zero", "/tmp"] {
            let err = fingerprint(Path::new(path)).unwrap_err();
            assert!(err.message.contains("not a regular file"), "{path}: {err}");
        }
    }

    #[tokio::test]
    async fn a_checksum_aside_is_the_checksum_and_refuses_a_pipe_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, vec![b'x'; 3 * CHUNK + 5]).unwrap();
        assert_eq!(
            fingerprint_aside(&path).await.unwrap(),
            fingerprint(&path).unwrap()
        );
        // A pipe with no writer would block `open` forever.
        let pipe = dir.path().join("pipe.csv");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        if made.is_ok_and(|s| s.success()) {
            let err = fingerprint_aside(&pipe).await.unwrap_err();
            assert!(err.message.contains("not a regular file"), "{err}");
        }
    }

    #[test]
    fn a_stopped_checksum_gives_up_instead_of_reading_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, b"a\n1\n").unwrap();
        let err = read_fingerprint(&path, &AtomicBool::new(true)).unwrap_err();
        assert!(err.message.contains("abandoned"), "{err}");
    }

    #[test]
    fn one_changed_byte_or_one_more_byte_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, b"a\n1\n2\n").unwrap();
        let first = fingerprint(&path).unwrap();
        assert_eq!(
            first,
            fingerprint(&path).unwrap(),
            "the same bytes, the same print"
        );
        assert_eq!(first.bytes, 6);
        std::fs::write(&path, b"a\n1\n3\n").unwrap();
        let flipped = fingerprint(&path).unwrap();
        assert_eq!(flipped.bytes, first.bytes);
        assert_ne!(flipped.checksum, first.checksum);
        std::fs::write(&path, b"a\n1\n2\n4\n").unwrap();
        assert_ne!(fingerprint(&path).unwrap(), first);
    }
}
