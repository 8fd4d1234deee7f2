//! IAM's evaluation of an identity policy, for the parts the project's policies use:
//! `Allow`/`Deny`, `Action`/`NotAction` and `Resource`/`NotResource` with `*` and `?`
//! wildcards (actions case-insensitive, resources case-sensitive), and the condition
//! operators `StringEquals`, `StringLike`, `ArnEquals`, `ArnLike` (and their `Not`
//! forms), against the request's context keys. An explicit deny wins; otherwise one
//! allow is needed. An operator it does not know denies, so a policy cannot pass
//! because it was misread.

use std::collections::BTreeMap;

use serde_json::Value;

/// One authorisation IAM makes for a call: an action on one resource (`"*"` for an
/// action with no resource type), with the request's context keys.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, String>,
}

pub fn allowed(policy: &Value, request: &Authorization) -> bool {
    let statements: Vec<&Value> = match &policy["Statement"] {
        Value::Array(s) => s.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    };
    let matching = |effect: &str| {
        statements
            .iter()
            .filter(|s| s["Effect"] == effect)
            .any(|s| applies(s, request))
    };
    !matching("Deny") && matching("Allow")
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn applies(statement: &Value, r: &Authorization) -> bool {
    let action = match (statement.get("Action"), statement.get("NotAction")) {
        (Some(a), None) => strings(a).iter().any(|p| wildcard(p, &r.action, true)),
        (None, Some(n)) => !strings(n).iter().any(|p| wildcard(p, &r.action, true)),
        _ => false,
    };
    let resource = match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(a), None) => strings(a).iter().any(|p| wildcard(p, &r.resource, false)),
        (None, Some(n)) => !strings(n).iter().any(|p| wildcard(p, &r.resource, false)),
        _ => false,
    };
    action && resource && conditions(statement.get("Condition"), &r.context)
}

fn conditions(block: Option<&Value>, context: &BTreeMap<String, String>) -> bool {
    let Some(block) = block else { return true };
    let Some(operators) = block.as_object() else {
        return false;
    };
    operators.iter().all(|(operator, keys)| {
        let Some(keys) = keys.as_object() else {
            return false;
        };
        keys.iter().all(|(key, wanted)| {
            let wanted = strings(wanted);
            let Some(got) = context.get(key) else {
                // A missing key matches no positive operator.
                return operator.starts_with("StringNot") || operator.starts_with("ArnNot");
            };
            let any = |f: &dyn Fn(&str) -> bool| wanted.iter().any(|w| f(w));
            match operator.as_str() {
                "StringEquals" | "ArnEquals" => any(&|w| w == got),
                "StringLike" | "ArnLike" => any(&|w| wildcard(w, got, false)),
                "StringNotEquals" | "ArnNotEquals" => !any(&|w| w == got),
                "StringNotLike" | "ArnNotLike" => !any(&|w| wildcard(w, got, false)),
                "StringEqualsIgnoreCase" => any(&|w| w.eq_ignore_ascii_case(got)),
                _ => false,
            }
        })
    })
}

/// IAM's `*` (any run, `/` included) and `?` (any one character).
pub fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    // Iterative glob matching with one backtrack point.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

#[test]
fn wildcards_conditions_and_denies() {
    assert!(wildcard(
        "arn:aws:transfer:*:*:user/s-1/*",
        "arn:aws:transfer:us-east-1:1:user/s-1/alice",
        false
    ));
    assert!(!wildcard("arn:aws:transfer:*:*:server/s-1", "*", false));
    assert!(wildcard("*", "*", false));
    assert!(wildcard(
        "Transfer:Describe*",
        "transfer:DescribeUser",
        true
    ));
    assert!(!wildcard(
        "transfer:Describe?",
        "transfer:DescribeUser",
        true
    ));
    let request = |action: &str, resource: &str| Authorization {
        action: action.into(),
        resource: resource.into(),
        context: BTreeMap::from([(
            "iam:PassedToService".into(),
            "transfer.amazonaws.com".into(),
        )]),
    };
    let policy = serde_json::json!({"Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/a",
         "Condition": {"StringEquals": {"iam:PassedToService": "transfer.amazonaws.com"}}},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::secret/*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
         "Condition": {"NumericLessThan": {"x": "1"}}}
    ]});
    assert!(allowed(
        &policy,
        &request("iam:PassRole", "arn:aws:iam::1:role/a")
    ));
    let mut elsewhere = request("iam:PassRole", "arn:aws:iam::1:role/a");
    elsewhere
        .context
        .insert("iam:PassedToService".into(), "ec2.amazonaws.com".into());
    assert!(!allowed(&policy, &elsewhere));
    assert!(allowed(
        &policy,
        &request("s3:GetObject", "arn:aws:s3:::b/k")
    ));
    assert!(!allowed(
        &policy,
        &request("s3:GetObject", "arn:aws:s3:::secret/k")
    ));
    assert!(
        !allowed(&policy, &request("sqs:SendMessage", "arn:aws:sqs:r:1:q")),
        "unknown operator"
    );
    assert!(!allowed(
        &policy,
        &request("s3:PutObject", "arn:aws:s3:::b/k")
    ));
}
