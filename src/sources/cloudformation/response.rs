//! The response document CloudFormation expects, and the rule that keeps it within
//! CloudFormation's 4096-byte limit.
//!
//! A body over the limit is rejected by CloudFormation and the stack then waits for its
//! own timeout (an hour by default), exactly like an answer that never came. So the
//! document is cut down deterministically before it is sent:
//! 1. the identifiers echoed from the request are capped at CloudFormation's own limits
//!    (a no-op for any real request; it is what makes the bound hold for every input);
//! 2. the human part of `Reason` is cut, keeping the pointer to the logs whole;
//! 3. if that is not enough, `Data` is dropped;
//! 4. last resort: the whole `Reason` is cut.
//!
//! The same draft always yields the same bytes, so a retried PUT or a replayed event
//! sends an identical answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// CloudFormation's limit on the response body, in bytes.
pub const MAX_BODY: usize = 4096;

/// Appended where `Reason` was cut; the full text is in the function's log.
pub const TRUNCATED: &str = "…[truncated]";

// Caps for the identifiers echoed back. PhysicalResourceId and LogicalResourceId are
// CloudFormation's documented limits (1 KB, 255 characters); a stack ARN and a request
// id (a UUID) are far shorter than their caps. Together they leave ~2 KB for Reason.
const MAX_PHYSICAL_ID: usize = 1024;
const MAX_LOGICAL_ID: usize = 256;
const MAX_STACK_ID: usize = 512;
const MAX_REQUEST_ID: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CfnStatus {
    Success,
    Failed,
}

impl CfnStatus {
    /// The wire name CloudFormation reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
        }
    }
}

/// The document PUT to the ResponseURL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CfnResponse {
    pub status: CfnStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// What `Fn::GetAtt` reads. Sorted keys: the same answer always has the same bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// A response before it is fitted: `Reason` still in its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub status: CfnStatus,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// What happened; cut first when the body is too large.
    pub detail: String,
    /// Where the logs are (failures only); kept whole whenever possible.
    pub pointer: String,
    pub data: BTreeMap<String, String>,
}

/// A response fitted to [`MAX_BODY`], with the exact bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub response: CfnResponse,
    pub body: Vec<u8>,
    /// Something was cut or dropped to fit.
    pub truncated: bool,
}

impl Draft {
    /// The full, uncut `Reason` (for the log when the sent one had to be cut).
    pub fn full_reason(&self) -> String {
        join(&self.detail, &self.pointer)
    }

    pub fn encode(&self) -> Encoded {
        let mut response = CfnResponse {
            status: self.status,
            reason: self.full_reason(),
            physical_resource_id: cap(&self.physical_resource_id, MAX_PHYSICAL_ID),
            stack_id: cap(&self.stack_id, MAX_STACK_ID),
            request_id: cap(&self.request_id, MAX_REQUEST_ID),
            logical_resource_id: cap(&self.logical_resource_id, MAX_LOGICAL_ID),
            data: self.data.clone(),
        };
        let ids_capped = response.physical_resource_id.len() != self.physical_resource_id.len()
            || response.stack_id.len() != self.stack_id.len()
            || response.request_id.len() != self.request_id.len()
            || response.logical_resource_id.len() != self.logical_resource_id.len();
        if let Some(body) = fitting(&response) {
            return Encoded {
                response,
                body,
                truncated: ids_capped,
            };
        }

        // Cut the detail, keep the log pointer; then the same without Data.
        let tail = join(TRUNCATED, &self.pointer);
        for drop_data in [false, true] {
            if drop_data {
                response.data.clear();
            }
            response.reason = tail.clone();
            if let Some(room) = MAX_BODY.checked_sub(size(&response)) {
                response.reason = format!("{}{tail}", prefix_within(&self.detail, room));
                if let Some(body) = fitting(&response) {
                    return Encoded {
                        response,
                        body,
                        truncated: true,
                    };
                }
            }
        }

        // Last resort: cut the whole Reason. The capped identifiers alone always fit.
        response.reason = TRUNCATED.to_owned();
        response.reason = match MAX_BODY.checked_sub(size(&response)) {
            Some(room) => format!("{}{TRUNCATED}", prefix_within(&self.full_reason(), room)),
            None => String::new(),
        };
        let body = serde_json::to_vec(&response).unwrap_or_default();
        Encoded {
            response,
            body,
            truncated: true,
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_owned(),
        (true, false) => b.to_owned(),
        (false, false) => format!("{a} {b}"),
    }
}

fn size(response: &CfnResponse) -> usize {
    serde_json::to_vec(response).map_or(usize::MAX, |b| b.len())
}

fn fitting(response: &CfnResponse) -> Option<Vec<u8>> {
    serde_json::to_vec(response)
        .ok()
        .filter(|b| b.len() <= MAX_BODY)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cap(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// How many bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{08}' | '\u{0C}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `s` whose JSON-escaped form takes at most `room` bytes.
fn prefix_within(s: &str, room: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_char_len(c);
        if used > room {
            return &s[..i];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn draft(detail: &str, pointer: &str) -> Draft {
        Draft {
            status: CfnStatus::Failed,
            physical_resource_id: "failed-create/ChrootAlice".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/sftp/16580499-7622-4a9c-b32f-4eba35da93da".into(),
            request_id: "82304eb2-bdda-469f-a33b-a3f1406d0a52".into(),
            logical_resource_id: "ChrootAlice".into(),
            detail: detail.into(),
            pointer: pointer.into(),
            data: BTreeMap::from([("ServerId".to_owned(), "s-0123456789abcdef0".to_owned())]),
        }
    }

    #[test]
    fn a_small_answer_is_sent_whole() {
        let e = draft("NotFound: Unknown user: nobody", "See logs.").encode();
        assert!(!e.truncated);
        assert_eq!(
            e.response.reason,
            "NotFound: Unknown user: nobody See logs."
        );
        assert_eq!(e.response.data.len(), 1);
        let parsed: CfnResponse = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(parsed, e.response);
        let raw: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(raw["Status"], "FAILED");
    }

    #[test]
    fn a_long_reason_is_cut_keeping_the_log_pointer_and_data() {
        let detail = "ValidationFailed: \"x\"\n".repeat(500);
        let e = draft(&detail, "See CloudWatch Logs stream S.").encode();
        assert!(e.truncated);
        assert!(e.body.len() <= MAX_BODY);
        assert!(
            e.body.len() > MAX_BODY - 8,
            "uses the room it has: {}",
            e.body.len()
        );
        assert!(e.response.reason.starts_with("ValidationFailed"));
        assert!(
            e.response
                .reason
                .ends_with(&format!("{TRUNCATED} See CloudWatch Logs stream S."))
        );
        assert_eq!(e.response.data.len(), 1, "Data kept");
        assert_eq!(draft(&detail, "See CloudWatch Logs stream S.").encode(), e);
    }

    #[test]
    fn a_huge_pointer_drops_data_then_cuts_everything() {
        let e = draft("detail", &"p".repeat(10_000)).encode();
        assert!(e.truncated);
        assert!(e.body.len() <= MAX_BODY);
        assert!(e.response.data.is_empty());
        assert!(e.response.reason.ends_with(TRUNCATED));
    }

    #[test]
    fn cuts_respect_multibyte_characters_and_escapes() {
        assert_eq!(prefix_within("aé\"b", 3), "aé");
        assert_eq!(prefix_within("aé\"b", 4), "aé");
        assert_eq!(prefix_within("aé\"b", 5), "aé\"");
        assert_eq!(prefix_within("\u{1}x", 6), "\u{1}");
        assert_eq!(cap("ééé", 3), "é");
    }

    proptest! {
        #[test]
        fn every_body_fits_and_is_valid_json(
            detail in ".{0,3000}",
            pointer in ".{0,600}",
            physical in ".{0,1500}",
            stack in ".{0,800}",
            logical in ".{0,400}",
            target in ".{0,1100}",
        ) {
            let mut d = draft(&detail, &pointer);
            d.physical_resource_id = physical;
            d.stack_id = stack;
            d.logical_resource_id = logical;
            d.data.insert("Target".into(), target);
            let e = d.encode();
            prop_assert!(e.body.len() <= MAX_BODY, "{} bytes", e.body.len());
            let parsed: CfnResponse = serde_json::from_slice(&e.body).unwrap();
            prop_assert_eq!(parsed, e.response);
        }
    }
}
