//! Every EMF document the function writes in the integration tests is parsed and checked
//! against CloudWatch's Embedded Metric Format specification as it is written
//! ([`checked`]): a document that breaks it fails the test that wrote it. The rules,
//! from "Specification: Embedded metric format" (Amazon CloudWatch User Guide):
//!
//! - the document is one JSON object on one line, at most 1 MB;
//! - `_aws` is an object with `Timestamp` (a number: milliseconds since the epoch) and
//!   `CloudWatchMetrics`, an array of metric directives;
//! - a directive has `Namespace` (a string of 1 to 255 characters, not only spaces),
//!   `Dimensions` (an array of dimension sets, each an array of at most 30 strings, each
//!   naming a member of the root whose value is a string of 1 to 1024 characters) and
//!   `Metrics` (at most 100 definitions, each a `Name` naming a member of the root, an
//!   optional `Unit` among CloudWatch's units, an optional `StorageResolution` 1 or 60);
//! - no other members in `_aws` objects;
//! - a metric's value is a number, an array of at most 100 numbers, or (the histogram
//!   form CloudWatch also takes, as metrique writes several observations) an object
//!   `{"Values": [...], "Counts": [...]}` of equal length, at most 100 each;
//! - metric names are unique within a directive and do not collide with dimensions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use transfer_chroot::metrics::{Emitter, NAMESPACE};

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Every way `doc` (one line, as written) breaks the specification.
pub fn violations(line: &[u8]) -> Vec<String> {
    let mut bad = Vec::new();
    if line.len() > 1024 * 1024 {
        bad.push(format!("{} bytes: over 1 MB", line.len()));
    }
    let text = String::from_utf8_lossy(line);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if body.contains('\n') {
        bad.push("more than one line".to_owned());
    }
    let doc: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let Some(root) = doc.as_object() else {
        return vec!["the root is not an object".to_owned()];
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no _aws object".to_owned()];
    };
    for k in aws.keys() {
        if k != "Timestamp" && k != "CloudWatchMetrics" {
            bad.push(format!("_aws has an unknown member {k}"));
        }
    }
    match aws.get("Timestamp") {
        Some(Value::Number(n)) if n.as_u64().is_some() => {}
        other => bad.push(format!(
            "_aws.Timestamp is not a whole number of ms: {other:?}"
        )),
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        bad.push("_aws.CloudWatchMetrics is not an array".to_owned());
        return bad;
    };
    for (i, d) in directives.iter().enumerate() {
        let at = format!("CloudWatchMetrics[{i}]");
        let Some(d) = d.as_object() else {
            bad.push(format!("{at} is not an object"));
            continue;
        };
        for k in d.keys() {
            if !["Namespace", "Dimensions", "Metrics"].contains(&k.as_str()) {
                bad.push(format!("{at} has an unknown member {k}"));
            }
        }
        match d.get("Namespace").and_then(Value::as_str) {
            Some(ns) if (1..=255).contains(&ns.chars().count()) && !ns.trim().is_empty() => {}
            other => bad.push(format!("{at}.Namespace is not 1-255 characters: {other:?}")),
        }
        let mut dimension_keys = BTreeSet::new();
        match d.get("Dimensions").and_then(Value::as_array) {
            None => bad.push(format!("{at}.Dimensions is not an array")),
            Some(sets) => {
                for (j, set) in sets.iter().enumerate() {
                    let Some(keys) = set.as_array() else {
                        bad.push(format!("{at}.Dimensions[{j}] is not an array"));
                        continue;
                    };
                    if keys.len() > 30 {
                        bad.push(format!(
                            "{at}.Dimensions[{j}] has {} keys (30 at most)",
                            keys.len()
                        ));
                    }
                    for key in keys {
                        let Some(key) = key.as_str() else {
                            bad.push(format!("{at}.Dimensions[{j}] holds a non-string {key}"));
                            continue;
                        };
                        dimension_keys.insert(key.to_owned());
                        match root.get(key).and_then(Value::as_str) {
                            Some(v) if (1..=1024).contains(&v.chars().count()) => {}
                            other => bad.push(format!(
                                "dimension {key} has no string value of 1-1024 characters: {other:?}"
                            )),
                        }
                    }
                }
            }
        }
        let Some(metrics) = d.get("Metrics").and_then(Value::as_array) else {
            bad.push(format!("{at}.Metrics is not an array"));
            continue;
        };
        if metrics.len() > 100 {
            bad.push(format!(
                "{at} declares {} metrics (100 at most)",
                metrics.len()
            ));
        }
        let mut names = BTreeSet::new();
        for m in metrics {
            let Some(m) = m.as_object() else {
                bad.push(format!("{at}: a metric definition is not an object"));
                continue;
            };
            for k in m.keys() {
                if !["Name", "Unit", "StorageResolution"].contains(&k.as_str()) {
                    bad.push(format!(
                        "{at}: a metric definition has an unknown member {k}"
                    ));
                }
            }
            let Some(name) = m.get("Name").and_then(Value::as_str) else {
                bad.push(format!("{at}: a metric without a Name"));
                continue;
            };
            if name.is_empty() || name.chars().count() > 1024 {
                bad.push(format!("metric name {name:?} is not 1-1024 characters"));
            }
            if !names.insert(name.to_owned()) {
                bad.push(format!("metric {name} declared twice"));
            }
            if dimension_keys.contains(name) {
                bad.push(format!("{name} is both a metric and a dimension"));
            }
            if let Some(unit) = m.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                bad.push(format!("metric {name}: unknown Unit {unit}"));
            }
            if let Some(r) = m.get("StorageResolution")
                && r.as_u64() != Some(1)
                && r.as_u64() != Some(60)
            {
                bad.push(format!(
                    "metric {name}: StorageResolution {r} is not 1 or 60"
                ));
            }
            if let Err(why) = metric_value(root.get(name)) {
                bad.push(format!("metric {name}: {why}"));
            }
        }
    }
    bad
}

fn metric_value(v: Option<&Value>) -> Result<(), String> {
    let numbers = |a: &Vec<Value>| a.len() <= 100 && a.iter().all(Value::is_number);
    match v {
        None => Err("declared but has no value in the document".to_owned()),
        Some(Value::Number(_)) => Ok(()),
        Some(Value::Array(a)) if numbers(a) => Ok(()),
        Some(Value::Object(o)) => match (o.get("Values"), o.get("Counts")) {
            (Some(Value::Array(v)), Some(Value::Array(c)))
                if numbers(v) && numbers(c) && v.len() == c.len() && !v.is_empty() =>
            {
                Ok(())
            }
            _ => Err(format!("not a valid Values/Counts histogram: {o:?}")),
        },
        Some(other) => Err(format!("not a number or an array of at most 100: {other}")),
    }
}

/// The documents an emitter wrote, parsed (after each passed [`violations`]).
#[derive(Clone, Default)]
pub struct Docs(Arc<Mutex<Vec<Value>>>);

impl Docs {
    pub fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    /// The documents that declare `metric`.
    pub fn declaring(&self, metric: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["Name"] == metric))
            })
            .collect()
    }
}

/// An emitter that checks every document against the specification as it is written
/// (a violation panics, failing the test) and keeps it for the test to look at.
pub fn checked() -> (Emitter, Docs) {
    let docs = Docs::default();
    let kept = docs.clone();
    let emitter = Emitter::to(move |line| {
        let bad = violations(line);
        assert!(
            bad.is_empty(),
            "EMF document breaks the specification: {bad:#?}\n{}",
            String::from_utf8_lossy(line)
        );
        let doc: Value = serde_json::from_slice(line).expect("checked above");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        kept.0.lock().unwrap().push(doc);
    });
    (emitter, docs)
}
