//! Filesystem helpers shared by writers and readers alike. A leaf: it names no other module of
//! the crate but `error`, so that any module may use it without closing a circle.

use std::io;
use std::path::Path;

use tally_sim::Fs;

use crate::error::Result;

pub(crate) fn is_not_found(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
}

/// Reads a whole file, or `None` if it does not exist.
pub(crate) async fn read_if_exists<F: Fs>(fs: &F, path: &Path) -> Result<Option<Vec<u8>>> {
    match fs.read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
