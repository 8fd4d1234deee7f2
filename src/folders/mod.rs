//! Home folders: a chroot that can log in.
//!
//! AWS documents that a logical directory's target must exist, unless the server's S3
//! `DirectoryListingOptimization` is enabled (Transfer Family user guide, "Implementing
//! logical directories"): for S3 that is a zero-byte object whose key is the folder
//! followed by `/`. A missing root does not fail the update, it fails the login. So
//! before chrooting a user to a folder on such a server the function looks for the
//! folder object (`HeadObject`), and creates it (`PutObject`, zero bytes) when
//! `CREATE_HOME_FOLDERS=true`, or warns in the result. On EFS the directory must exist
//! too, but only a POSIX client of the file system can create it: documented, not done.
//!
//! The port is object-safe (boxed futures): it is called at most twice per write, and
//! keeping it out of the generic parameters keeps `App<T>` as it is.

pub mod memory;
pub mod s3;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the object-safe port.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An S3 folder object: `s3://<bucket>/<key>` with `key` ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Folder {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A failed S3 call, classified once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} {folder}: {message}")]
pub struct FolderError {
    pub operation: &'static str,
    pub folder: String,
    pub message: String,
    /// 5xx, throttling, timeouts, dropped connections: another try may work.
    pub retryable: bool,
    pub request_id: Option<String>,
}

/// The two S3 calls of the home-folder check.
pub trait Folders: Send + Sync {
    /// Whether the folder object exists.
    fn exists<'a>(&'a self, folder: &'a Folder) -> Pending<'a, Result<bool, FolderError>>;

    /// Creates the zero-byte folder object.
    fn create<'a>(&'a self, folder: &'a Folder) -> Pending<'a, Result<(), FolderError>>;
}
