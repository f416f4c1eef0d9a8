//! The two halves of every step that rewrites table files (protocol "Stage", "Merge",
//! "Export"): installing a new file in a directory of the store, and removing the files a
//! published step superseded.
//!
//! Installing, call by call: `create <name>.tmp` (exclusive), `write` (row group by row
//! group), `sync` — then the step's conservation check on what was written; a violation
//! unlinks the temp file and moves nothing — then `exists <name>` (a file already there is
//! refused, never written over), `rename <name>.tmp → <name>`, `sync_dir`. The `sync` before the
//! `rename` keeps a durable name from ever pointing at data that is not durable; the `sync_dir`
//! makes the name durable before anything (a manifest, a watermark) may reference it.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow_schema::SchemaRef;
use tally_sim::Fs;

use crate::error::{Error, Result};
use crate::fsutil::is_not_found;
use crate::layout;
use crate::table::{TableOptions, TableWriter, Written};

/// A table file being written under its temp name, to be installed under its own.
pub(crate) struct Install<'a, F: Fs> {
    fs: &'a F,
    dir: PathBuf,
    path: PathBuf,
    temp: PathBuf,
    options: &'a TableOptions,
    /// Created by the first batch, which decides the file's schema and encodings.
    writer: Option<TableWriter<F>>,
    /// Whether the file is synced before its rename: always, but for a twin's planted bug.
    sync: bool,
}

impl<'a, F: Fs> Install<'a, F> {
    /// A file `dir/name` to be; nothing touches the disk before the first `write`.
    pub(crate) fn new(fs: &'a F, dir: PathBuf, name: &str, options: &'a TableOptions) -> Self {
        let path = dir.join(name);
        let temp = layout::temp_path(&path);
        Self {
            fs,
            dir,
            path,
            temp,
            options,
            writer: None,
            sync: true,
        }
    }

    /// A file whose rows were written under `temp` (a temp name of its own in `dir`) before
    /// its name was decided, to be installed as `dir/name`.
    pub(crate) fn adopt(
        fs: &'a F,
        dir: PathBuf,
        name: &str,
        options: &'a TableOptions,
        temp: PathBuf,
        writer: TableWriter<F>,
    ) -> Self {
        assert_eq!(
            temp.parent(),
            Some(dir.as_path()),
            "a temp file outside its directory"
        );
        Self {
            fs,
            path: dir.join(name),
            dir,
            temp,
            options,
            writer: Some(writer),
            sync: true,
        }
    }

    /// The `bulk_file_unsynced` twin: the file is renamed into place without its sync.
    pub(crate) fn without_sync(mut self) -> Self {
        self.sync = false;
        self
    }

    /// The file's columns, once its first batch fixed them.
    pub(crate) fn schema(&self) -> Option<&SchemaRef> {
        self.writer.as_ref().map(TableWriter::schema)
    }

    /// No batch was written: there is no temp file, and nothing to install.
    pub(crate) fn is_empty(&self) -> bool {
        self.writer.is_none()
    }

    /// Appends `batch`, creating the temp file from it if it is the first.
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        TableWriter::write_creating(&mut self.writer, self.fs, &self.temp, batch, self.options)
            .await
    }

    /// Gives up after a failed conservation check: unlinks the temp file (whatever of it
    /// exists; a failure is ignored, since recovery or the next export removes temp files)
    /// and returns `err`.
    pub(crate) async fn abandon(self, err: Error) -> Error {
        let _ = self.fs.unlink(&self.temp).await;
        err
    }

    /// Writes the footer with `metadata` and syncs the file; then, if `check` accepts what
    /// was written, renames it to its name and syncs the directory. When `check` refuses, the
    /// file is abandoned and its error returned.
    pub(crate) async fn finish(
        mut self,
        metadata: &[(&str, String)],
        check: impl FnOnce(&Written) -> Result<()>,
    ) -> Result<Written> {
        let writer = self
            .writer
            .take()
            .expect("a table file is finished only after a batch created it");
        let written = writer.finish_syncing(metadata, self.sync).await?;
        tally_sim::probe!("table.synced");
        if let Err(e) = check(&written) {
            return Err(self.abandon(e).await);
        }
        // A rename replaces its target: refuse rather than write over a file already under
        // this name (an id handed out twice, or a file that is not tally's). One writer per
        // root keeps the check and the rename together.
        if self.fs.exists(&self.path).await? {
            let err = Error::corrupt(
                &self.path,
                "a file already exists under the name of the table file being installed; tally never \
                 writes over one, and nothing was published. Way out: if the file is not tally's, move it \
                 out of the store and run again",
            );
            tally_sim::probe!("table.name-taken");
            return Err(self.abandon(err).await);
        }
        self.fs.rename(&self.temp, &self.path).await?;
        tally_sim::probe!("table.renamed");
        self.fs.sync_dir(&self.dir).await?;
        tally_sim::probe!("table.installed");
        Ok(written)
    }
}

/// Removes `paths` from `dir` once a durable manifest no longer needs them, then syncs `dir`
/// so the removals are durable. A file already gone counts as removed (an earlier attempt
/// took it); any other failure is returned, and the next recovery removes what is left.
pub(crate) async fn remove_superseded<F: Fs>(fs: &F, dir: &Path, paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        match fs.unlink(path).await {
            Err(e) if !is_not_found(&e) => return Err(e.into()),
            _ => {}
        }
    }
    tally_sim::probe!("remove.unlinked");
    fs.sync_dir(dir).await?;
    Ok(())
}
