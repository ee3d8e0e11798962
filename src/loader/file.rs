//! The file loader: a path under a root directory. `..`, encoded traversal, absolute paths, NUL
//! bytes and symlinks that lead out of the root are all refused as "not found", before any open.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{Reservation, Source, Validators};
use crate::error::{Error, ErrorKind, Result};

pub struct FileLoader {
    root: PathBuf,
    max_bytes: u64,
}

fn not_found(context: impl Into<String>) -> Error {
    Error::new(ErrorKind::SourceNotFound, context)
}

impl FileLoader {
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        FileLoader { root, max_bytes }
    }

    /// Resolve `image` (percent-decoded once by the URL parser, which is all thumbor's file
    /// loader decodes too) to a file inside the root, or refuse.
    pub fn resolve(&self, image: &str) -> Result<PathBuf> {
        let decoded = image;
        if decoded.contains('\0') {
            return Err(not_found("NUL in path"));
        }
        let mut relative = PathBuf::new();
        for component in Path::new(decoded.trim_start_matches('/')).components() {
            match component {
                Component::Normal(part) => relative.push(part),
                Component::CurDir => {}
                // `..` may not climb above the root; a prefix or root cannot appear after trimming.
                Component::ParentDir => {
                    if !relative.pop() {
                        return Err(not_found("path climbs out of the root"));
                    }
                }
                Component::RootDir | Component::Prefix(_) => return Err(not_found("absolute path")),
            }
        }
        let root = self.root.canonicalize().map_err(|e| not_found("file root missing").with_source(e))?;
        let candidate = root.join(&relative);
        // Resolve symlinks and check again: a link inside the root must not lead outside it.
        let real = candidate.canonicalize().map_err(|e| not_found("no such file").with_source(e))?;
        if !real.starts_with(&root) {
            return Err(not_found("path resolves outside the root"));
        }
        Ok(real)
    }

    /// Read the file `image` names, its size taken from `memory` before reading.
    pub async fn load(&self, image: &str, mut memory: Reservation) -> Result<Source> {
        let path = self.resolve(image)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| not_found("cannot open").with_source(e))?;
        let meta = file.metadata().await.map_err(|e| not_found("cannot stat").with_source(e))?;
        if !meta.is_file() {
            return Err(not_found("not a regular file"));
        }
        if meta.len() > self.max_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("file is {} bytes, above sources.max_bytes", meta.len()),
            ));
        }
        memory.grow_to(meta.len())?;
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.take(self.max_bytes + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| Error::new(ErrorKind::UpstreamFailed, "reading file").with_source(e))?;
        if buf.len() as u64 > self.max_bytes {
            return Err(Error::new(ErrorKind::TooLarge, "file grew above sources.max_bytes"));
        }
        memory.grow_to(buf.len() as u64)?;
        Ok(memory.into_source(Bytes::from(buf)).with_validators(file_validators(&meta)))
    }
}

/// A file's validators: its modification time as `Last-Modified`, and an `ETag` of that time (to
/// the nanosecond) and its size, which tells apart two writes within one second.
fn file_validators(meta: &std::fs::Metadata) -> Validators {
    let Ok(modified) = meta.modified() else { return Validators::default() };
    let since_epoch = modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Validators {
        etag: Some(format!("\"{:x}-{:x}\"", since_epoch.as_nanos(), meta.len())),
        last_modified: Some(httpdate::fmt_http_date(modified)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl FileLoader {
        async fn load_unbudgeted(&self, image: &str) -> Result<Source> {
            self.load(image, crate::fetched::FetchMemory::new(1 << 20).reservation()).await
        }
    }

    fn setup() -> (tempfile::TempDir, FileLoader) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.jpg"), b"image").unwrap();
        std::fs::write(root.join("sub/b.jpg"), b"image").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"secret").unwrap();
        std::fs::create_dir_all(dir.path().join("root2")).unwrap();
        std::fs::write(dir.path().join("root2/x.jpg"), b"sibling").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.jpg")).unwrap();
        let loader = FileLoader::new(root, 1024);
        (dir, loader)
    }

    #[tokio::test]
    async fn loads_inside_the_root() {
        let (_dir, loader) = setup();
        assert_eq!(&loader.load_unbudgeted("a.jpg").await.unwrap()[..], b"image");
        assert_eq!(&loader.load_unbudgeted("/sub/b.jpg").await.unwrap()[..], b"image");
        assert_eq!(&loader.load_unbudgeted("sub/../a.jpg").await.unwrap()[..], b"image");
    }

    #[tokio::test]
    async fn traversal_is_not_found() {
        let (_dir, loader) = setup();
        for evil in [
            "../secret.txt",
            "%2e%2e/secret.txt",
            "%2E%2E%2Fsecret.txt",
            "..%2Fsecret.txt",
            "sub/../../secret.txt",
            "/../secret.txt",
            "../root2/x.jpg",
            "a.jpg\0.png",
            "link.jpg",
            "sub",
            "missing.jpg",
        ] {
            let err = loader.load_unbudgeted(evil).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::SourceNotFound, "{evil}: {err}");
        }
    }

    #[tokio::test]
    async fn encoded_dots_are_names_not_traversal() {
        let (_dir, loader) = setup();
        // The URL parser decoded once: `%252e` arrives as `%2e`, a literal file name here.
        assert_eq!(loader.resolve("%2e%2e/secret.txt").unwrap_err().kind(), ErrorKind::SourceNotFound);
        assert_eq!(loader.resolve("../root/a.jpg").unwrap_err().kind(), ErrorKind::SourceNotFound);
    }
}
