//! An in-memory [`Folders`]: a set of folder objects, and a record of the calls.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::{Folder, FolderError, Folders, Pending};

#[derive(Debug, Default)]
pub struct MemoryFolders {
    objects: Mutex<BTreeSet<Folder>>,
    calls: Mutex<Vec<(&'static str, Folder)>>,
    /// Every call fails like this when set.
    failure: Mutex<Option<FolderError>>,
}

impl MemoryFolders {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(self, bucket: &str, key: &str) -> Self {
        self.lock_objects().insert(Folder {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        });
        self
    }

    pub fn failing(self, error: FolderError) -> Self {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self
    }

    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        self.lock_objects().contains(&Folder {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// `("HeadObject" | "PutObject", folder)`, in order.
    pub fn calls(&self) -> Vec<(&'static str, Folder)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock_objects(&self) -> std::sync::MutexGuard<'_, BTreeSet<Folder>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, operation: &'static str, folder: &Folder) -> Result<(), FolderError> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((operation, folder.clone()));
        match &*self.failure.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(FolderError {
                operation,
                ..e.clone()
            }),
            None => Ok(()),
        }
    }
}

impl Folders for MemoryFolders {
    fn exists<'a>(&'a self, folder: &'a Folder) -> Pending<'a, Result<bool, FolderError>> {
        Box::pin(async move {
            self.record("HeadObject", folder)?;
            Ok(self.lock_objects().contains(folder))
        })
    }

    fn create<'a>(&'a self, folder: &'a Folder) -> Pending<'a, Result<(), FolderError>> {
        Box::pin(async move {
            self.record("PutObject", folder)?;
            self.lock_objects().insert(folder.clone());
            Ok(())
        })
    }
}
