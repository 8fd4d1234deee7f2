//! Reports in memory, for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Pending, ReportStore, StoreError};

#[derive(Debug, Default)]
pub struct MemoryReports {
    objects: Mutex<BTreeMap<String, (Vec<u8>, &'static str)>>,
}

impl MemoryReports {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Vec<u8>, &'static str)>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The object at `key` as text, and its content type.
    pub fn text(&self, key: &str) -> Option<(String, &'static str)> {
        self.lock()
            .get(key)
            .map(|(b, t)| (String::from_utf8_lossy(b).into_owned(), *t))
    }

    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

impl ReportStore for MemoryReports {
    fn bucket(&self) -> &str {
        "memory"
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Pending<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.lock().insert(key.to_owned(), (body, content_type));
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Vec<u8>, StoreError>> {
        Box::pin(async move {
            self.lock()
                .get(key)
                .map(|(b, _)| b.clone())
                .ok_or_else(|| StoreError {
                    operation: "GetObject",
                    bucket: "memory".to_owned(),
                    key: key.to_owned(),
                    message: "no such key".to_owned(),
                    request_id: None,
                })
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> Pending<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        })
    }
}
