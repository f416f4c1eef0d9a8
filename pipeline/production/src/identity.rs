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
/// scan, its last commit), the two reads on two cores.
pub fn fingerprint_aside(
    path: &Path,
) -> impl std::future::Future<Output = Result<Fingerprint, InputError>> + use<> {
    let owned = path.to_path_buf();
    let task = tokio::task::spawn_blocking(move || fingerprint(&owned));
    let owned = path.to_path_buf();
    async move {
        task.await.unwrap_or_else(|e| {
            Err(InputError {
                file: owned,
                location: None,
                message: format!("checksumming its content: {e}"),
            })
        })
    }
}

/// The fingerprint of the file at `path`, read once from start to end.
pub fn fingerprint(path: &Path) -> Result<Fingerprint, InputError> {
    let fail = read_failure(path);
    let mut file = File::open(path).map_err(&fail)?;
    check_regular(path, &file.metadata().map_err(&fail)?)?;
    let mut hasher = twox_hash::XxHash3_64::with_seed(0);
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
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
