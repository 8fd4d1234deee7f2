//! Security Hub in memory, for unit tests: imports kept by `Id` (a re-import replaces
//! the finding, as the service does), `active` answers every finding (as a local
//! Security Hub that ignores filters would), and failures handed out on request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Account, Asff, FailedFinding, FindingsPage, HubError, Imported, Pending, SecurityHub};

#[derive(Debug, Default)]
pub struct MemoryHub {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    findings: BTreeMap<String, Asff>,
    imports: usize,
    /// Ids refused at import (`FailedFindings`).
    refuse: Vec<String>,
    /// The next calls fail.
    down: usize,
}

impl MemoryHub {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn findings(&self) -> Vec<Asff> {
        self.lock().findings.values().cloned().collect()
    }

    /// `BatchImportFindings` calls made.
    pub fn imports(&self) -> usize {
        self.lock().imports
    }

    /// Refuses the finding `id` at every import.
    pub fn refuse(&self, id: &str) {
        self.lock().refuse.push(id.to_owned());
    }

    /// The next `n` calls fail (retryable).
    pub fn fail_next(&self, n: usize) {
        self.lock().down += n;
    }

    fn down(&self, operation: &'static str) -> Option<HubError> {
        let mut s = self.lock();
        (s.down > 0).then(|| {
            s.down -= 1;
            HubError {
                operation,
                message: "injected".to_owned(),
                retryable: true,
                request_id: None,
            }
        })
    }
}

impl SecurityHub for MemoryHub {
    fn import<'a>(&'a self, findings: &'a [Asff]) -> Pending<'a, Result<Imported, HubError>> {
        Box::pin(async move {
            if let Some(e) = self.down("BatchImportFindings") {
                return Err(e);
            }
            let mut s = self.lock();
            s.imports += 1;
            let mut done = Imported::default();
            for f in findings {
                if s.refuse.contains(&f.id) {
                    done.failed.push(FailedFinding {
                        id: f.id.clone(),
                        error_code: "InvalidInput".to_owned(),
                        error_message: "refused".to_owned(),
                    });
                } else {
                    s.findings.insert(f.id.clone(), f.clone());
                    done.success += 1;
                }
            }
            Ok(done)
        })
    }

    fn active<'a>(
        &'a self,
        _account: &'a Account,
        _before: &'a str,
        token: Option<&'a str>,
    ) -> Pending<'a, Result<FindingsPage, HubError>> {
        Box::pin(async move {
            if let Some(e) = self.down("GetFindings") {
                return Err(e);
            }
            // Pages of 2, to exercise the caller's paging.
            let all: Vec<Asff> = self.lock().findings.values().cloned().collect();
            let start = token.and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
            let end = (start + 2).min(all.len());
            Ok(FindingsPage {
                findings: all[start.min(end)..end].to_vec(),
                next_token: (end < all.len()).then(|| end.to_string()),
            })
        })
    }
}
