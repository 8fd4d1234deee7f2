//! CloudFormation templates as the tests read them: loaded in the long form, and
//! evaluated for one set of parameters the way CloudFormation would (conditions,
//! `Ref`, `Fn::Sub`, `Fn::If`, `Fn::Select`, `Fn::Split`, `Fn::Join`, `Fn::GetAtt`,
//! `AWS::NoValue`), so that what a deployment would hold can be checked.
//!
//! Only what the project's templates use is evaluated; anything else panics with its
//! name, so a template that grows a new intrinsic fails loudly instead of being read
//! wrong.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value as Json, json};
use serde_yaml::{Mapping, Value};

// ---------------------------------------------------------------------------
// Loading: CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...) arrive from
// serde_yaml as `Value::Tagged`; rewrite them into the long form ({"Ref": x},
// {"Fn::Sub": x}, ...) so every check deals with one shape.
// ---------------------------------------------------------------------------

fn long_form(v: Value) -> Value {
    match v {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, value) = match name {
                "Ref" => ("Ref".to_owned(), inner),
                "Condition" => ("Condition".to_owned(), inner),
                // !GetAtt Resource.Attribute is the string form of [Resource, Attribute].
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap_or((s.as_str(), ""));
                        (
                            "Fn::GetAtt".to_owned(),
                            Value::Sequence(vec![res.into(), attr.into()]),
                        )
                    }
                    other => ("Fn::GetAtt".to_owned(), other),
                },
                other => (format!("Fn::{other}"), inner),
            };
            let mut m = Mapping::new();
            m.insert(Value::String(key), value);
            Value::Mapping(m)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(long_form).collect()),
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| (long_form(k), long_form(v)))
                .collect(),
        ),
        other => other,
    }
}

pub fn parse(yaml: &str) -> Value {
    long_form(serde_yaml::from_str(yaml).expect("template parses as YAML"))
}

pub fn load(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parse(&text)
}

// ---------------------------------------------------------------------------
// Evaluation.
// ---------------------------------------------------------------------------

/// Where a stack is deployed (the pseudo parameters).
pub const PARTITION: &str = "aws";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "111122223333";
pub const STACK: &str = "chroot";

/// One deployment of a template: its parameters (given, else their defaults), and
/// everything evaluated against them.
pub struct Stack {
    template: Json,
    parameters: BTreeMap<String, String>,
}

impl Stack {
    /// `template` deployed with `given` parameters; every other parameter takes its
    /// default. Panics on a parameter the template does not declare, or a value its
    /// `AllowedPattern`/`AllowedValues` refuses (CloudFormation would refuse the stack).
    pub fn deploy(template: &Value, given: &[(&str, &str)]) -> Self {
        let template = serde_json::to_value(template).expect("a template is JSON too");
        let declared = template["Parameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut parameters = BTreeMap::new();
        for (name, p) in &declared {
            if let Some(d) = p.get("Default") {
                parameters.insert(name.clone(), scalar(d));
            }
        }
        for (name, value) in given {
            let p = declared
                .get(*name)
                .unwrap_or_else(|| panic!("the template has no parameter {name}"));
            if let Some(pattern) = p.get("AllowedPattern").and_then(Json::as_str) {
                let re = regex::Regex::new(&format!("^(?:{pattern})$")).expect("AllowedPattern");
                assert!(re.is_match(value), "{name}={value:?} refused by {pattern}");
            }
            if let Some(allowed) = p.get("AllowedValues").and_then(Json::as_array) {
                assert!(
                    allowed.iter().any(|a| scalar(a) == *value),
                    "{name}={value:?} not one of {allowed:?}"
                );
            }
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        for name in declared.keys() {
            assert!(parameters.contains_key(name), "{name} has no value");
        }
        let stack = Self {
            template,
            parameters,
        };
        stack.assert_rules();
        stack
    }

    /// The template's `Rules` hold for these parameters (CloudFormation refuses the
    /// stack otherwise).
    fn assert_rules(&self) {
        let Some(rules) = self.template.get("Rules").and_then(Json::as_object) else {
            return;
        };
        for (name, rule) in rules {
            if let Some(when) = rule.get("RuleCondition")
                && !self.truth(when)
            {
                continue;
            }
            for a in rule["Assertions"].as_array().into_iter().flatten() {
                assert!(
                    self.truth(&a["Assert"]),
                    "rule {name}: {} ({:?})",
                    a["AssertDescription"],
                    self.parameters
                );
            }
        }
    }

    pub fn parameter(&self, name: &str) -> &str {
        &self.parameters[name]
    }

    pub fn condition(&self, name: &str) -> bool {
        let c = self
            .template
            .pointer(&format!("/Conditions/{name}"))
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.truth(c)
    }

    fn truth(&self, v: &Json) -> bool {
        let (key, arg) = one_key(v).unwrap_or_else(|| panic!("not a condition: {v}"));
        match key {
            "Condition" => self.condition(arg.as_str().expect("a condition name")),
            "Fn::Equals" => {
                let a = self.string(&arg[0]);
                let b = self.string(&arg[1]);
                a == b
            }
            "Fn::Not" => !self.truth(&arg[0]),
            "Fn::And" => arg.as_array().unwrap().iter().all(|c| self.truth(c)),
            "Fn::Or" => arg.as_array().unwrap().iter().any(|c| self.truth(c)),
            other => panic!("condition function {other} is not evaluated here"),
        }
    }

    fn string(&self, v: &Json) -> String {
        match self.eval(v) {
            Some(Json::String(s)) => s,
            Some(other) => scalar(&other),
            None => panic!("{v} has no value"),
        }
    }

    /// What `Ref name` is: a parameter, a pseudo parameter, or a resource's own
    /// reference (a queue's URL, a log group's name, else its logical id).
    fn reference(&self, name: &str) -> Json {
        if let Some(p) = self.parameters.get(name) {
            let ty = self.template.pointer(&format!("/Parameters/{name}/Type"));
            return match ty.and_then(Json::as_str) {
                Some("Number") => p.parse::<f64>().map(|n| json!(n)).unwrap_or(json!(p)),
                Some(t) if t.starts_with("List<") || t == "CommaDelimitedList" => {
                    json!(p.split(',').collect::<Vec<_>>())
                }
                _ => json!(p),
            };
        }
        match name {
            "AWS::Partition" => json!(PARTITION),
            "AWS::Region" => json!(REGION),
            "AWS::AccountId" => json!(ACCOUNT),
            "AWS::StackName" => json!(STACK),
            "AWS::URLSuffix" => json!("amazonaws.com"),
            _ => {
                let ty = self.resource_type(name);
                match ty.as_str() {
                    "AWS::SQS::Queue" => json!(format!(
                        "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                        physical(name)
                    )),
                    "AWS::Logs::LogGroup" => json!(self.log_group_name(name)),
                    _ => json!(physical(name)),
                }
            }
        }
    }

    fn resource_type(&self, name: &str) -> String {
        // SAM's implicit resources (a function's EventBridge rules) are named after
        // the function and the event.
        self.template
            .pointer(&format!("/Resources/{name}/Type"))
            .and_then(Json::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| "AWS::Events::Rule".to_owned())
    }

    fn log_group_name(&self, name: &str) -> String {
        match self
            .template
            .pointer(&format!("/Resources/{name}/Properties/LogGroupName"))
        {
            Some(v) => self.string(v),
            None => physical(name),
        }
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Json {
        let ty = self.resource_type(resource);
        let arn = match ty.as_str() {
            "AWS::SQS::Queue" => format!(
                "arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{}",
                physical(resource)
            ),
            "AWS::Logs::LogGroup" => format!(
                "arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{}:*",
                self.log_group_name(resource)
            ),
            "AWS::IAM::Role" => {
                format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{}", physical(resource))
            }
            "AWS::Events::Rule" => format!(
                "arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{}",
                physical(resource)
            ),
            "AWS::Serverless::Function" => format!(
                "arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{}",
                physical(resource)
            ),
            other => format!(
                "arn:{PARTITION}:{other}:{REGION}:{ACCOUNT}:{}",
                physical(resource)
            ),
        };
        match attribute {
            "Arn" => json!(arn),
            "QueueName" => json!(physical(resource)),
            other => panic!("Fn::GetAtt {resource}.{other} is not evaluated here"),
        }
    }

    /// `v` evaluated; `None` is `AWS::NoValue` (the property or element is left out).
    pub fn eval(&self, v: &Json) -> Option<Json> {
        if let Some((key, arg)) = one_key(v) {
            match key {
                "Ref" => {
                    let name = arg.as_str().expect("Ref takes a name");
                    return (name != "AWS::NoValue").then(|| self.reference(name));
                }
                "Fn::If" => {
                    let cond = arg[0].as_str().expect("Fn::If names a condition");
                    let branch = if self.condition(cond) {
                        &arg[1]
                    } else {
                        &arg[2]
                    };
                    return self.eval(branch);
                }
                "Fn::Sub" => return Some(json!(self.sub(arg))),
                "Fn::Select" => {
                    let i = self.string(&arg[0]).parse::<usize>().expect("an index");
                    let list = self.eval(&arg[1]).expect("Fn::Select of a value");
                    let item = list.as_array().expect("Fn::Select of a list")[i].clone();
                    return Some(item);
                }
                "Fn::Split" => {
                    let sep = self.string(&arg[0]);
                    let s = self.string(&arg[1]);
                    return Some(json!(s.split(sep.as_str()).collect::<Vec<_>>()));
                }
                "Fn::Join" => {
                    let sep = self.string(&arg[0]);
                    let list = self.eval(&arg[1]).expect("Fn::Join of a value");
                    let parts: Vec<String> = list
                        .as_array()
                        .expect("Fn::Join of a list")
                        .iter()
                        .map(scalar)
                        .collect();
                    return Some(json!(parts.join(&sep)));
                }
                "Fn::GetAtt" => {
                    let r = arg[0].as_str().expect("a resource");
                    let a = arg[1].as_str().expect("an attribute");
                    return Some(self.attribute(r, a));
                }
                k if k.starts_with("Fn::") => panic!("{k} is not evaluated here"),
                _ => {}
            }
        }
        Some(match v {
            Json::Array(items) => Json::Array(items.iter().filter_map(|i| self.eval(i)).collect()),
            Json::Object(m) => Json::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.eval(v)?)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        })
    }

    fn sub(&self, arg: &Json) -> String {
        let (text, vars) = match arg {
            Json::String(s) => (s.as_str(), Map::new()),
            Json::Array(a) => (
                a[0].as_str().expect("Fn::Sub's string"),
                a[1].as_object().cloned().unwrap_or_default(),
            ),
            other => panic!("Fn::Sub of {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').expect("an unclosed ${ in Fn::Sub");
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(&self.string(v));
            } else if let Some((r, a)) = name.split_once('.') {
                out.push_str(&scalar(&self.attribute(r, a)));
            } else {
                out.push_str(&scalar(&self.reference(name)));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A resource's `Properties`, evaluated.
    pub fn properties(&self, resource: &str) -> Json {
        let p = self
            .template
            .pointer(&format!("/Resources/{resource}/Properties"))
            .unwrap_or_else(|| panic!("no resource {resource}"));
        self.eval(p).unwrap_or(Json::Null)
    }

    /// The inline policies of role `role`, as one IAM policy document (their
    /// statements one after the other, in order).
    pub fn role_policy(&self, role: &str) -> Json {
        let properties = self.properties(role);
        let statements: Vec<Json> = properties["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| {
                p["PolicyDocument"]["Statement"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    /// A function's environment variables, evaluated (a variable under
    /// `AWS::NoValue` is absent).
    pub fn environment(&self, function: &str) -> BTreeMap<String, String> {
        let properties = self.properties(function);
        properties["Environment"]["Variables"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), scalar(v)))
            .collect()
    }
}

/// The physical name CloudFormation would give a resource of this stack.
fn physical(logical: &str) -> String {
    format!("{STACK}-{logical}-1A2B3C4D5E6F")
}

fn one_key(v: &Json) -> Option<(&str, &Json)> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let (k, arg) = m.iter().next()?;
    (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then_some((k.as_str(), arg))
}

/// A scalar as CloudFormation turns it into a string.
fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => panic!("{other} is not a scalar"),
    }
}
