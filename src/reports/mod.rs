//! Where a scheduled audit keeps its report (`REPORT_BUCKET`): S3 objects under
//! `transfer-chroot/audits/<run>/`. Each invocation of a run writes its part
//! (`parts/<finished>-<request id>.json`, the part's counts and findings); the one that
//! completes the run reads the parts back, merges them and writes `report.html` and
//! `findings.csv` beside them (crate::report).
//!
//! The port is object-safe (boxed futures): a handful of calls per invocation.

pub mod memory;
pub mod s3;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the object-safe port.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failed S3 call, classified once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} s3://{bucket}/{key}: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
    pub request_id: Option<String>,
}

/// The three S3 calls of a report: write an object, read one, list a prefix.
pub trait ReportStore: Send + Sync {
    /// The bucket, for the report's `s3://` address.
    fn bucket(&self) -> &str;

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Pending<'a, Result<(), StoreError>>;

    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Vec<u8>, StoreError>>;

    /// Every key under `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str) -> Pending<'a, Result<Vec<String>, StoreError>>;
}
