//! Session policies (an IAM policy document as a JSON string).

/// Compact JSON text of an IAM policy document, at most 2048 bytes.
///
/// The service model allows 2048 characters; counting bytes is the safe side of that
/// for any non-ASCII content. The value is kept in the form sent to Transfer, and
/// compared with the live policy semantically (as JSON), not as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    text: String,
    document: serde_json::Value,
}

pub const MAX_POLICY_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("must be at most 2048 bytes of JSON, got {0}")]
    TooLong(usize),
    #[error("must be a JSON policy document: {0}")]
    NotJson(String),
    #[error("must be a JSON object with a \"Statement\" (an IAM policy document)")]
    NotDocument,
}

impl SessionPolicy {
    /// Parses a policy given as JSON text.
    pub fn parse(raw: &str) -> Result<Self, PolicyViolation> {
        if raw.len() > MAX_POLICY_BYTES {
            return Err(PolicyViolation::TooLong(raw.len()));
        }
        let document: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| PolicyViolation::NotJson(e.to_string()))?;
        Self::from_document(raw.to_owned(), document)
    }

    /// Accepts a policy given as a JSON object (as CloudFormation and YAML users write it).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, PolicyViolation> {
        match value {
            serde_json::Value::String(s) => Self::parse(s),
            other => {
                let text = other.to_string();
                if text.len() > MAX_POLICY_BYTES {
                    return Err(PolicyViolation::TooLong(text.len()));
                }
                Self::from_document(text, other.clone())
            }
        }
    }

    fn from_document(text: String, document: serde_json::Value) -> Result<Self, PolicyViolation> {
        match &document {
            serde_json::Value::Object(map) if map.contains_key("Statement") => {
                Ok(Self { text, document })
            }
            _ => Err(PolicyViolation::NotDocument),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when `live` (the policy text Transfer holds) means the same document.
    pub fn same_as(&self, live: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(live).is_ok_and(|v| v == self.document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

    #[test]
    fn policy_rules() {
        assert!(SessionPolicy::parse(DOC).is_ok());
        assert!(matches!(
            SessionPolicy::parse("{not json"),
            Err(PolicyViolation::NotJson(_))
        ));
        assert_eq!(
            SessionPolicy::parse("[1,2]"),
            Err(PolicyViolation::NotDocument)
        );
        assert_eq!(
            SessionPolicy::parse(r#"{"Version":"2012-10-17"}"#),
            Err(PolicyViolation::NotDocument)
        );
        let long = format!(r#"{{"Statement":[],"Pad":"{}"}}"#, "x".repeat(2048));
        assert_eq!(
            SessionPolicy::parse(&long),
            Err(PolicyViolation::TooLong(long.len()))
        );
        // 2048 bytes exactly is accepted.
        let pad = 2048 - r#"{"Statement":[],"P":""}"#.len();
        let exact = format!(r#"{{"Statement":[],"P":"{}"}}"#, "x".repeat(pad));
        assert_eq!(exact.len(), 2048);
        assert!(SessionPolicy::parse(&exact).is_ok());
    }

    #[test]
    fn object_form_and_semantic_compare() {
        let v: serde_json::Value = serde_json::from_str(DOC).unwrap();
        let p = SessionPolicy::from_value(&v).unwrap();
        assert!(p.same_as(DOC));
        assert!(p.same_as(&serde_json::to_string_pretty(&v).unwrap()));
        assert!(!p.same_as(r#"{"Statement":[]}"#));
        assert!(!p.same_as("garbage"));
    }
}
