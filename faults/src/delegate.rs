//! Pass-through methods for filesystem wrappers that change only a few operations. A wrapper
//! holds the wrapped filesystem or file in a field named `inner`.

/// The `Fs` methods other than `create`, `open` and `sync_dir`, forwarded to `self.inner`
/// (the wrapper declares `type Lock = F::Lock;`).
macro_rules! forward_fs_namespace {
    () => {
        async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.inner.read(path).await
        }

        async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.inner.rename(from, to).await
        }

        async fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.inner.rename_noreplace(from, to).await
        }

        async fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.inner.hard_link(from, to).await
        }

        async fn unlink(&self, path: &Path) -> io::Result<()> {
            self.inner.unlink(path).await
        }

        async fn create_dir(&self, path: &Path) -> io::Result<()> {
            self.inner.create_dir(path).await
        }

        async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            self.inner.create_dir_all(path).await
        }

        async fn remove_dir(&self, path: &Path) -> io::Result<()> {
            self.inner.remove_dir(path).await
        }

        async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
            self.inner.list_dir(path).await
        }

        async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
            self.inner.metadata(path).await
        }

        async fn exists(&self, path: &Path) -> io::Result<bool> {
            self.inner.exists(path).await
        }

        async fn try_lock(&self, path: &Path) -> io::Result<Self::Lock> {
            self.inner.try_lock(path).await
        }
    };
}

/// The `FsFile` methods other than `sync`, forwarded to `self.inner`.
macro_rules! forward_file_data {
    () => {
        async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
            self.inner.read_at(offset, len).await
        }

        async fn read_all(&self) -> io::Result<Vec<u8>> {
            self.inner.read_all().await
        }

        async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
            self.inner.write_at(offset, buf).await
        }

        async fn append(&self, buf: &[u8]) -> io::Result<u64> {
            self.inner.append(buf).await
        }

        async fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len).await
        }

        async fn len(&self) -> io::Result<u64> {
            self.inner.len().await
        }
    };
}
