//! The S3 loader (thumbor-aws's `thumbor_aws.loader`): the image URL is an object key in a
//! configured bucket, under its prefix. The key is the URL as the thumbor URL parser decoded it,
//! without leading slashes (thumbor-aws's normalizer); a key that would climb out of the prefix
//! (`..` segments) is refused as not found.

use super::{Reservation, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::s3::{S3Client, S3Config, S3Error};

pub struct S3Loader {
    client: S3Client,
    max_bytes: u64,
}

impl S3Loader {
    pub fn new(cfg: &S3Config, max_bytes: u64) -> Result<S3Loader> {
        let client =
            S3Client::new(cfg).map_err(|e| Error::new(ErrorKind::Internal, format!("thumbora.sources.s3: {e}")))?;
        Ok(S3Loader { client, max_bytes })
    }

    /// Read the object `image` names, at most `sources.max_bytes`, counted in `memory`.
    pub async fn load(&self, image: &str, mut memory: Reservation) -> Result<Source> {
        let relative = image.trim_start_matches('/');
        if relative.is_empty() || relative.split('/').any(|part| part == "..") {
            return Err(Error::new(ErrorKind::SourceNotFound, "no such object key"));
        }
        let key = self.client.key(relative);
        let bytes = match self.client.get_max(&key, self.max_bytes).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Error::new(ErrorKind::SourceNotFound, format!("no object {key}"))),
            Err(e) => return Err(error_of(&key, e)),
        };
        if bytes.is_empty() {
            return Err(Error::new(ErrorKind::EmptySource, format!("object {key} is empty")));
        }
        memory.grow_to(bytes.len() as u64)?;
        Ok(memory.into_source(bytes))
    }
}

/// What a failed S3 read means to a client, as the HTTP loader's statuses do.
fn error_of(key: &str, e: S3Error) -> Error {
    let kind = match &e {
        S3Error::Timeout { .. } => ErrorKind::UpstreamTimeout,
        S3Error::Transport { .. } => ErrorKind::UpstreamUnreachable,
        S3Error::TooLarge { .. } => ErrorKind::TooLarge,
        S3Error::BadKey(_) => ErrorKind::SourceNotFound,
        S3Error::Status { status: 403 | 404 | 410, .. } => ErrorKind::SourceNotFound,
        S3Error::Status { .. } => ErrorKind::OriginError,
        _ => ErrorKind::UpstreamFailed,
    };
    Error::new(kind, format!("S3 object {key}: {e}"))
}
