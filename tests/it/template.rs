//! `template.yaml` checked mechanically: the IAM rules of least privilege, IAM
//! authorisation on every API route, and the deployment facts the docs promise
//! (runtime, architecture, timeout arithmetic, sources, alarms, outputs).
//!
//! The checkers are plain functions over the parsed template, and each is proven
//! able to fail by running it on small bad snippets (`mod checker_fails_on`).
//! cfn-lint and `sam validate` (scripts/check-template.sh) check the syntax; this
//! file checks the intent.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml::{Mapping, Value};
use transfer_chroot::transfer::sdk;

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

fn parse(yaml: &str) -> Value {
    long_form(serde_yaml::from_str(yaml).expect("template parses as YAML"))
}

fn load(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parse(&text)
}

fn template() -> Value {
    load("template.yaml")
}

// ---------------------------------------------------------------------------
// Small accessors.
// ---------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

fn resources(t: &Value) -> Vec<(String, &Value)> {
    at(t, &["Resources"])
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
                .collect()
        })
        .unwrap_or_default()
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| str_at(r, &["Type"]) == Some(ty))
        .collect()
}

fn resource<'a>(t: &'a Value, name: &str) -> Option<&'a Value> {
    at(t, &["Resources", name])
}

/// The one-key intrinsic `{"<key>": x}`, if `v` is one.
fn intrinsic<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let m = v.as_mapping()?;
    if m.len() == 1 { m.get(key) } else { None }
}

fn ref_name(v: &Value) -> Option<&str> {
    intrinsic(v, "Ref").and_then(Value::as_str)
}

/// Every value `v` can take: both branches of `Fn::If`, nothing for `AWS::NoValue`.
/// A check that holds for every branch holds whatever the parameters are.
fn branches(v: &Value) -> Vec<&Value> {
    if let Some(Value::Sequence(args)) = intrinsic(v, "Fn::If")
        && args.len() == 3
    {
        return args[1..].iter().flat_map(branches).collect();
    }
    if ref_name(v) == Some("AWS::NoValue") {
        return Vec::new();
    }
    vec![v]
}

/// A string or list-of-strings field (Action, Resource), element by element.
fn elements(v: &Value) -> Vec<&Value> {
    branches(v)
        .into_iter()
        .flat_map(|v| match v {
            Value::Sequence(items) => items.iter().flat_map(branches).collect(),
            other => vec![other],
        })
        .collect()
}

// ---------------------------------------------------------------------------
// IAM: collect every policy statement in the template, wherever it is written.
// ---------------------------------------------------------------------------

/// A policy statement and where it was found.
struct Statement<'a> {
    at: String,
    body: &'a Value,
}

/// The statements of one policy document; a statement under `Fn::If` counts once
/// per branch.
fn statements_of_document<'a>(at: &str, doc: &'a Value, out: &mut Vec<Statement<'a>>) {
    let listed = doc.get("Statement").map(elements).unwrap_or_default();
    for (i, body) in listed.into_iter().enumerate() {
        out.push(Statement {
            at: format!("{at} statement {i}"),
            body,
        });
    }
}

/// Every statement, plus a finding for each policy the checker cannot see into
/// (managed policies, SAM policy templates, roles defined elsewhere): an unchecked
/// policy is a failure, not a pass.
fn statements(t: &Value) -> (Vec<Statement<'_>>, Vec<String>) {
    let mut out = Vec::new();
    let mut findings = Vec::new();
    for (name, r) in resources(t) {
        let ty = str_at(r, &["Type"]).unwrap_or_default();
        let props = r.get("Properties");
        match ty {
            "AWS::Serverless::Function" => {
                if let Some(policies) = props.and_then(|p| p.get("Policies")) {
                    for (i, policy) in elements(policies).into_iter().enumerate() {
                        let at = format!("{name} Policies[{i}]");
                        if policy.get("Statement").is_some() {
                            statements_of_document(&at, policy, &mut out);
                        } else {
                            findings.push(format!(
                                "{at}: a managed policy or SAM policy template cannot be checked; write the statements inline"
                            ));
                        }
                    }
                }
                let role = props.and_then(|p| p.get("Role"));
                if role.is_none() {
                    // SAM then generates the role and attaches AWSLambdaBasicExecutionRole
                    // and, per event source, managed policies granting on "*".
                    findings.push(format!(
                        "{name}: no explicit Role, so SAM attaches managed policies on \"*\""
                    ));
                }
                if let Some(role) = role {
                    let local = intrinsic(role, "Fn::GetAtt")
                        .and_then(|a| a.get(0))
                        .and_then(Value::as_str)
                        .or_else(|| ref_name(role))
                        .and_then(|n| resource(t, n))
                        .is_some();
                    if !local {
                        findings.push(format!(
                            "{name}: Role is defined outside this template, its policies cannot be checked"
                        ));
                    }
                }
            }
            "AWS::IAM::Role" => {
                if let Some(policies) = props.and_then(|p| p.get("Policies")) {
                    for (i, p) in elements(policies).into_iter().enumerate() {
                        if let Some(doc) = p.get("PolicyDocument") {
                            statements_of_document(&format!("{name} Policies[{i}]"), doc, &mut out);
                        }
                    }
                }
                if props.and_then(|p| p.get("ManagedPolicyArns")).is_some() {
                    findings.push(format!(
                        "{name}: ManagedPolicyArns cannot be checked; write the statements inline"
                    ));
                }
            }
            "AWS::IAM::Policy"
            | "AWS::IAM::ManagedPolicy"
            | "AWS::IAM::RolePolicy"
            | "AWS::SQS::QueuePolicy"
            | "AWS::SNS::TopicPolicy"
            | "AWS::Events::EventBusPolicy" => {
                if let Some(doc) = props.and_then(|p| p.get("PolicyDocument")) {
                    statements_of_document(&name, doc, &mut out);
                }
            }
            _ => {}
        }
    }
    (out, findings)
}

fn is_allow(s: &Value) -> bool {
    str_at(s, &["Effect"]) == Some("Allow")
}

fn actions(s: &Value) -> Vec<&Value> {
    s.get("Action").map(elements).unwrap_or_default()
}

/// Allow statements grant no wildcard action (`*`, `transfer:*`, `iam:Pass*`) and
/// never use NotAction (an allow-list turned inside out).
fn check_no_wildcard_actions(t: &Value) -> Vec<String> {
    let (statements, mut findings) = statements(t);
    for s in statements.iter().filter(|s| is_allow(s.body)) {
        if s.body.get("NotAction").is_some() {
            findings.push(format!("{}: NotAction grants everything else", s.at));
        }
        if s.body.get("Action").is_none() && s.body.get("NotAction").is_none() {
            findings.push(format!("{}: no Action", s.at));
        }
        for a in actions(s.body) {
            match a.as_str() {
                Some(a) if a.contains('*') || a.contains('?') => {
                    findings.push(format!("{}: wildcard action {a:?}", s.at))
                }
                Some(_) => {}
                None => findings.push(format!("{}: action {a:?} is not a literal", s.at)),
            }
        }
    }
    findings
}

/// Allow statements name their resources: no `Resource: "*"`, no NotResource.
fn check_no_star_resources(t: &Value) -> Vec<String> {
    let (statements, mut findings) = statements(t);
    for s in statements.iter().filter(|s| is_allow(s.body)) {
        if s.body.get("NotResource").is_some() {
            findings.push(format!("{}: NotResource", s.at));
        }
        let Some(resource) = s.body.get("Resource") else {
            // Resource policies (queue, topic) may name the resource implicitly only
            // through Resource as well; a statement without one is malformed.
            findings.push(format!("{}: no Resource", s.at));
            continue;
        };
        for r in elements(resource) {
            let text = r
                .as_str()
                .map(str::to_owned)
                .or_else(|| sub_template(r).map(str::to_owned));
            if text.as_deref().is_some_and(|t| t.trim() == "*") {
                findings.push(format!("{}: Resource \"*\"", s.at));
            }
        }
    }
    findings
}

/// The template string of a `Fn::Sub` (both the string and the [string, vars] form).
fn sub_template(v: &Value) -> Option<&str> {
    let sub = intrinsic(v, "Fn::Sub")?;
    sub.as_str().or_else(|| sub.get(0).and_then(Value::as_str))
}

const TRANSFER_ACTIONS: [&str; 4] = [
    "transfer:DescribeUser",
    "transfer:UpdateUser",
    "transfer:DescribeAccess",
    "transfer:UpdateAccess",
];

/// Transfer permissions are exactly the four the function calls, each on the
/// resource type the Service Authorization Reference names for it (users on
/// `user/<server>/*`, accesses on `server/<server>`), with a server in the ARN.
fn check_transfer_scoped(t: &Value) -> Vec<String> {
    let (statements, mut findings) = statements(t);
    for s in statements.iter().filter(|s| is_allow(s.body)) {
        let transfer: Vec<&str> = actions(s.body)
            .into_iter()
            .filter_map(Value::as_str)
            .filter(|a| a.to_ascii_lowercase().starts_with("transfer:"))
            .collect();
        if transfer.is_empty() {
            continue;
        }
        for a in &transfer {
            if !TRANSFER_ACTIONS.iter().any(|ok| ok.eq_ignore_ascii_case(a)) {
                findings.push(format!("{}: {a} is not one of {TRANSFER_ACTIONS:?}", s.at));
            }
        }
        let wants_user = transfer.iter().any(|a| a.ends_with("User"));
        let wants_server = transfer.iter().any(|a| a.ends_with("Access"));
        if wants_user && wants_server {
            findings.push(format!(
                "{}: user and access actions share a statement, so both get both resource types",
                s.at
            ));
        }
        let resources = s.body.get("Resource").map(elements).unwrap_or_default();
        if resources.is_empty() {
            findings.push(format!("{}: transfer actions without Resource", s.at));
        }
        for r in resources {
            let Some(arn) = r.as_str().or_else(|| sub_template(r)) else {
                findings.push(format!(
                    "{}: resource {r:?} is not an ARN string or Fn::Sub",
                    s.at
                ));
                continue;
            };
            let Some((_, rest)) = arn.split_once(":transfer:") else {
                findings.push(format!("{}: {arn} is not a Transfer ARN", s.at));
                continue;
            };
            // rest = "<region>:<account>:<type>/<server>[/<user>]"; the region and
            // account may be ${AWS::Region} and ${AWS::AccountId}, colons and all.
            let tail = rest.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
            let mut parts = tail.split('/');
            let (kind, server) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let server_named = !server.is_empty() && !server.contains('*') && !server.contains('?');
            let ok = match kind {
                "user" => wants_user && server_named,
                "server" => wants_server && server_named && parts.next().is_none(),
                _ => false,
            };
            if !ok {
                findings.push(format!(
                    "{}: {arn} is not a {} ARN naming one server",
                    s.at,
                    if wants_user {
                        "user/<server>/*"
                    } else {
                        "server/<server>"
                    }
                ));
            }
        }
    }
    findings
}

/// Every statement allowing iam:PassRole is conditioned on
/// `StringEquals: {iam:PassedToService: transfer.amazonaws.com}` and names its roles.
fn check_pass_role(t: &Value) -> Vec<String> {
    let (statements, mut findings) = statements(t);
    for s in statements.iter().filter(|s| is_allow(s.body)) {
        let passes = actions(s.body)
            .into_iter()
            .filter_map(Value::as_str)
            .any(|a| a.eq_ignore_ascii_case("iam:PassRole"));
        if !passes {
            continue;
        }
        let service = s
            .body
            .get("Condition")
            .and_then(|c| c.get("StringEquals"))
            .and_then(Value::as_mapping)
            .and_then(|m| {
                m.iter().find(|(k, _)| {
                    k.as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("iam:PassedToService"))
                })
            })
            .map(|(_, v)| v);
        let only_transfer = match service {
            Some(Value::String(s)) => s == "transfer.amazonaws.com",
            Some(Value::Sequence(v)) => {
                !v.is_empty()
                    && v.iter()
                        .all(|s| s.as_str() == Some("transfer.amazonaws.com"))
            }
            _ => false,
        };
        if !only_transfer {
            findings.push(format!(
                "{}: iam:PassRole without Condition StringEquals iam:PassedToService = transfer.amazonaws.com",
                s.at
            ));
        }
        for r in s.body.get("Resource").map(elements).unwrap_or_default() {
            if let Some(text) = r.as_str().or_else(|| sub_template(r))
                && text.contains('*')
            {
                findings.push(format!("{}: iam:PassRole on {text:?}", s.at));
            }
            // Roles taken from a parameter: the parameter must refuse wildcards.
            if let Some(param) = parameter_behind(r)
                && parameter_admits(t, param, "arn:aws:iam::111122223333:role/*")
            {
                findings.push(format!(
                    "{}: iam:PassRole on parameter {param}, which accepts a wildcard role",
                    s.at
                ));
            }
        }
    }
    findings
}

/// `!Ref P` or `!Split [",", !Ref P]`: the parameter a resource list comes from.
fn parameter_behind(v: &Value) -> Option<&str> {
    ref_name(v).or_else(|| {
        intrinsic(v, "Fn::Split")
            .and_then(|a| a.get(1))
            .and_then(ref_name)
    })
}

fn parameter_admits(t: &Value, param: &str, value: &str) -> bool {
    let Some(p) = at(t, &["Parameters", param]) else {
        return false; // a resource's Ref, not a parameter
    };
    match str_at(p, &["AllowedPattern"]) {
        // CloudFormation anchors AllowedPattern at both ends.
        Some(pattern) => regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(|re| re.is_match(value))
            .unwrap_or(true),
        None => str_at(p, &["AllowedValues"]).is_none(),
    }
}

// ---------------------------------------------------------------------------
// API authorisation: every route any API in the template serves needs SigV4.
// ---------------------------------------------------------------------------

/// An API route the template declares and whether it is IAM-authorised.
#[derive(Debug)]
struct Route {
    at: String,
    method: String,
    path: String,
}

/// The routes of the template and a finding for each that is not IAM-authorised
/// (or whose authorisation cannot be established).
fn api_routes(t: &Value) -> (Vec<Route>, Vec<String>) {
    let mut routes = Vec::new();
    let mut findings = Vec::new();
    let globals_api_default = str_at(t, &["Globals", "Api", "Auth", "DefaultAuthorizer"]);
    let globals_http_default = str_at(t, &["Globals", "HttpApi", "Auth", "DefaultAuthorizer"]);

    for (name, api) in resources_of_type(t, "AWS::Serverless::Api")
        .into_iter()
        .chain(resources_of_type(t, "AWS::Serverless::HttpApi"))
    {
        let props = api.get("Properties");
        if props
            .is_some_and(|p| p.get("DefinitionBody").is_some() || p.get("DefinitionUri").is_some())
        {
            findings.push(format!(
                "{name}: an OpenAPI definition declares routes this checker cannot verify"
            ));
        }
    }

    for (fname, f) in resources_of_type(t, "AWS::Serverless::Function") {
        if let Some(url) = at(f, &["Properties", "FunctionUrlConfig"])
            && str_at(url, &["AuthType"]) != Some("AWS_IAM")
        {
            findings.push(format!("{fname}: function URL without AuthType AWS_IAM"));
        }
        let Some(events) = at(f, &["Properties", "Events"]).and_then(Value::as_mapping) else {
            continue;
        };
        for (ename, e) in events {
            let ename = ename.as_str().unwrap_or_default();
            let ty = str_at(e, &["Type"]).unwrap_or_default();
            if ty != "Api" && ty != "HttpApi" {
                continue;
            }
            let at = format!("{fname}.Events.{ename}");
            let props = e.get("Properties");
            let method = props
                .and_then(|p| str_at(p, &["Method"]))
                .unwrap_or("ANY")
                .to_ascii_uppercase();
            let path = props
                .and_then(|p| str_at(p, &["Path"]))
                .unwrap_or("$default")
                .to_owned();
            let own = props.and_then(|p| str_at(p, &["Auth", "Authorizer"]));
            let api_key = if ty == "Api" { "RestApiId" } else { "ApiId" };
            let api = props
                .and_then(|p| p.get(api_key))
                .and_then(ref_name)
                .and_then(|n| resource(t, n));
            let api_explicit = props.and_then(|p| p.get(api_key)).is_some();
            let default = match api {
                Some(api) => str_at(api, &["Properties", "Auth", "DefaultAuthorizer"]),
                None if api_explicit => {
                    findings.push(format!(
                        "{at}: {api_key} does not name an API in this template"
                    ));
                    None
                }
                // The implicit API SAM creates takes its Auth from Globals.
                None if ty == "Api" => globals_api_default,
                None => globals_http_default,
            };
            let authorizer = own.or(default);
            let mut ok = authorizer == Some("AWS_IAM");
            if ty == "HttpApi" && own.is_none() {
                // An HTTP API only accepts AWS_IAM as a default with EnableIamAuthorizer.
                ok &= api.is_some_and(|a| {
                    at_bool(a, &["Properties", "Auth", "EnableIamAuthorizer"]) == Some(true)
                });
            }
            if !ok {
                findings.push(format!(
                    "{at}: {method} {path} is not IAM-authorised (authorizer {authorizer:?})"
                ));
            }
            routes.push(Route { at, method, path });
        }
    }

    for (name, m) in resources_of_type(t, "AWS::ApiGateway::Method") {
        if str_at(m, &["Properties", "AuthorizationType"]) != Some("AWS_IAM") {
            findings.push(format!("{name}: AuthorizationType is not AWS_IAM"));
        }
    }
    for (name, r) in resources_of_type(t, "AWS::ApiGatewayV2::Route") {
        if str_at(r, &["Properties", "AuthorizationType"]) != Some("AWS_IAM") {
            findings.push(format!("{name}: AuthorizationType is not AWS_IAM"));
        }
    }
    for (name, u) in resources_of_type(t, "AWS::Lambda::Url") {
        if str_at(u, &["Properties", "AuthType"]) != Some("AWS_IAM") {
            findings.push(format!("{name}: function URL without AuthType AWS_IAM"));
        }
    }
    (routes, findings)
}

fn at_bool(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

fn check_api_authorized(t: &Value) -> Vec<String> {
    api_routes(t).1
}

fn all_findings(t: &Value) -> Vec<String> {
    let mut f = check_no_wildcard_actions(t);
    f.extend(check_no_star_resources(t));
    f.extend(check_transfer_scoped(t));
    f.extend(check_pass_role(t));
    f.extend(check_api_authorized(t));
    let unique: BTreeSet<String> = f.into_iter().collect();
    unique.into_iter().collect()
}

// ---------------------------------------------------------------------------
// The real template.
// ---------------------------------------------------------------------------

#[test]
fn template_passes_every_iam_and_api_check() {
    let findings = all_findings(&template());
    assert!(
        findings.is_empty(),
        "template.yaml:\n{}",
        findings.join("\n")
    );
}

#[test]
fn template_has_policies_to_check() {
    // A template with no statements would pass the checks vacuously.
    let t = template();
    let (statements, _) = statements(&t);
    let granted: BTreeSet<&str> = statements
        .iter()
        .filter(|s| is_allow(s.body))
        .flat_map(|s| actions(s.body))
        .filter_map(Value::as_str)
        .collect();
    for a in TRANSFER_ACTIONS.iter().chain(&["iam:PassRole"]) {
        assert!(granted.contains(a), "{a} is not granted: {granted:?}");
    }
}

#[test]
fn the_function_role_is_explicit_and_every_statement_names_its_resources() {
    let t = template();
    let role = at(&function(&t)["Properties"], &["Role"]).expect("Role");
    let name = intrinsic(role, "Fn::GetAtt")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str);
    assert_eq!(name, Some("TransferChrootRole"));
    let r = resource(&t, "TransferChrootRole").expect("role");
    assert!(at(r, &["Properties", "ManagedPolicyArns"]).is_none());
    let (statements, findings) = statements(&t);
    assert!(findings.is_empty(), "{findings:?}");
    let sids: BTreeSet<&str> = statements
        .iter()
        .filter(|s| s.at.starts_with("TransferChrootRole"))
        .filter_map(|s| str_at(s.body, &["Sid"]))
        .collect();
    assert_eq!(
        sids,
        BTreeSet::from([
            "WriteOwnLogGroup",
            "ConsumeCommandQueue",
            "ParkFailedAsyncInvocations",
            "ChrootUsersOfAllowedServers",
            "ChrootAccessesOfAllowedServers",
            "PassOnlyAllowedRolesToTransfer",
        ])
    );
    // Logs and queues: the stack's own resources, by GetAtt.
    for (sid, target) in [
        ("WriteOwnLogGroup", "FunctionLogGroup"),
        ("ConsumeCommandQueue", "CommandQueue"),
        ("ParkFailedAsyncInvocations", "EventsDeadLetterQueue"),
    ] {
        let s = statements
            .iter()
            .find(|s| str_at(s.body, &["Sid"]) == Some(sid))
            .unwrap_or_else(|| panic!("{sid}"));
        let got = intrinsic(&s.body["Resource"], "Fn::GetAtt").and_then(|a| a.get(0));
        assert_eq!(got.and_then(Value::as_str), Some(target), "{sid}");
    }
}

fn function(t: &Value) -> &Value {
    let functions = resources_of_type(t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 1, "one function");
    functions[0].1
}

#[test]
fn every_route_of_the_contract_is_served_and_iam_authorised() {
    let t = template();
    let (routes, findings) = api_routes(&t);
    assert!(findings.is_empty(), "{findings:?}");
    for path in [
        "/servers/{ServerId}/users/{UserName}",
        "/servers/{ServerId}/accesses/{ExternalId}",
    ] {
        for method in ["PUT", "GET"] {
            assert!(
                routes.iter().any(|r| r.method == method && r.path == path),
                "{method} {path} missing from {routes:?}"
            );
        }
    }
    assert_eq!(routes.len(), 4, "no routes beyond the contract: {routes:?}");
    let api = resource(&t, "ChrootApi").expect("ChrootApi");
    assert_eq!(
        str_at(api, &["Properties", "Auth", "DefaultAuthorizer"]),
        Some("AWS_IAM")
    );
    // SAM's default for AWS_IAM (CALLER_CREDENTIALS) would invoke the function with
    // the caller's credentials, making every caller need lambda:InvokeFunction.
    assert_eq!(
        str_at(api, &["Properties", "Auth", "InvokeRole"]),
        Some("NONE")
    );
    assert!(
        routes
            .iter()
            .all(|r| r.at.starts_with("TransferChrootFunction."))
    );
}

fn num(v: Option<&Value>) -> u64 {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v:?}"))
}

/// A `!Ref Parameter`'s default, or the literal.
fn resolve_num(t: &Value, v: Option<&Value>) -> u64 {
    match v.and_then(ref_name) {
        Some(p) => num(at(t, &["Parameters", p, "Default"])),
        None => num(v),
    }
}

#[test]
fn function_is_arm64_rust_on_al2023_with_json_logs() {
    let t = template();
    let f = function(&t);
    let p = &f["Properties"];
    assert_eq!(str_at(p, &["Runtime"]), Some("provided.al2023"));
    assert_eq!(str_at(p, &["Handler"]), Some("bootstrap"));
    assert_eq!(
        at(p, &["Architectures"]),
        Some(&Value::Sequence(vec!["arm64".into()]))
    );
    assert_eq!(
        str_at(f, &["Metadata", "BuildMethod"]),
        Some("rust-cargolambda")
    );
    assert_eq!(
        str_at(f, &["Metadata", "BuildProperties", "Binary"]),
        Some("transfer-chroot")
    );
    assert_eq!(str_at(p, &["LoggingConfig", "LogFormat"]), Some("JSON"));
    let level = at(p, &["LoggingConfig", "ApplicationLogLevel"]).and_then(ref_name);
    assert!(
        level.is_some_and(|l| at(&t, &["Parameters", l]).is_some()),
        "ApplicationLogLevel comes from a parameter"
    );
}

#[test]
fn timeout_covers_the_sdk_retry_budget_and_the_queue_covers_six_timeouts() {
    let t = template();
    let p = &function(&t)["Properties"];
    let timeout = num(p.get("Timeout"));
    let operation = sdk::OPERATION_TIMEOUT.as_secs();
    let attempt = sdk::ATTEMPT_TIMEOUT.as_secs();
    // One operation is capped by its operation timeout, which must leave room for
    // the default 3 attempts to matter at all.
    assert!(
        operation >= attempt,
        "operation {operation} < attempt {attempt}"
    );
    // A command is a Describe followed by an Update, and the source must still be
    // answered (CloudFormation response, SQS report) after a worst-case command.
    let reserve = 5;
    assert!(
        timeout >= 2 * operation + reserve,
        "Timeout {timeout} s < 2 x {operation} s + {reserve} s"
    );
    assert_eq!(
        str_at(p, &["Environment", "Variables", "AWS_MAX_ATTEMPTS"]),
        Some("3")
    );

    let queue = resource(&t, "CommandQueue").expect("CommandQueue");
    let visibility = num(at(queue, &["Properties", "VisibilityTimeout"]));
    let sqs = at(p, &["Events", "CommandQueue", "Properties"]).expect("SQS event");
    let window_param = sqs
        .get("MaximumBatchingWindowInSeconds")
        .and_then(ref_name)
        .expect("batching window is a parameter");
    let window_max = num(at(&t, &["Parameters", window_param, "MaxValue"]));
    assert!(
        visibility >= 6 * timeout + window_max,
        "VisibilityTimeout {visibility} < 6 x {timeout} + {window_max}"
    );
}

#[test]
fn every_configuration_variable_is_wired_from_a_parameter() {
    let t = template();
    let vars = at(&function(&t)["Properties"], &["Environment", "Variables"]).expect("env");
    for name in [
        "ALLOWED_SERVER_IDS",
        "HOME_ROOTS",
        "HOME_TEMPLATE",
        "ALLOWED_ROLE_ARNS",
        "GROUP_PROFILES",
        "DEFAULT_SERVER_ID",
        "DRY_RUN",
        "SQS_MAX_CONCURRENCY",
    ] {
        let v = vars.get(name).unwrap_or_else(|| panic!("{name} not set"));
        let params: Vec<&str> = elements(v).into_iter().filter_map(ref_name).collect();
        assert!(
            !params.is_empty() && params.iter().all(|p| at(&t, &["Parameters", p]).is_some()),
            "{name} is not wired from a parameter: {v:?}"
        );
    }
}

#[test]
fn the_allowed_servers_parameter_refuses_what_the_policy_cannot_scope() {
    let t = template();
    assert!(parameter_admits(
        &t,
        "AllowedServerIds",
        "s-0123456789abcdef0"
    ));
    assert!(parameter_admits(
        &t,
        "AllowedServerIds",
        "s-0123456789abcdef0,s-00000000000000000"
    ));
    // Six slots in the policy: a seventh server would be allowed by the function
    // but not by IAM, so the parameter refuses it.
    let seven = ["s-0123456789abcdef0"; 7].join(",");
    assert!(!parameter_admits(&t, "AllowedServerIds", &seven));
    assert!(!parameter_admits(&t, "AllowedServerIds", "*"));
    assert!(!parameter_admits(&t, "AllowedServerIds", "s-*"));
    assert!(!parameter_admits(&t, "AllowedServerIds", ""));
    assert!(!parameter_admits(&t, "AllowedRoleArns", "*"));
    assert!(parameter_admits(&t, "AllowedRoleArns", ""));
    assert!(parameter_admits(
        &t,
        "AllowedRoleArns",
        "arn:aws:iam::111122223333:role/sftp-user,arn:aws:iam::111122223333:role/sftp-finance"
    ));
}

#[test]
fn every_server_slot_of_the_policy_is_conditioned_and_distinct() {
    // Slot i of the user and access statements reads element i of the list, and
    // slots 2..6 exist only when the list has that many ids.
    let t = template();
    let (statements, _) = statements(&t);
    for sid in [
        "ChrootUsersOfAllowedServers",
        "ChrootAccessesOfAllowedServers",
    ] {
        let s = statements
            .iter()
            .find(|s| str_at(s.body, &["Sid"]) == Some(sid))
            .unwrap_or_else(|| panic!("{sid}"));
        let raw = s.body["Resource"].as_sequence().expect("resource list");
        assert_eq!(raw.len(), 6, "{sid}: six slots");
        for (i, slot) in raw.iter().enumerate() {
            let (value, condition) = match intrinsic(slot, "Fn::If") {
                Some(args) => (&args[1], args[0].as_str()),
                None => (slot, None),
            };
            let expected_condition = (i > 0).then(|| format!("HasServer{}", i + 1));
            assert_eq!(
                condition.map(str::to_owned),
                expected_condition,
                "{sid} slot {i}"
            );
            let index = intrinsic(value, "Fn::Sub")
                .and_then(|s| s.get(1))
                .and_then(|vars| vars.get("Id"))
                .and_then(|id| intrinsic(id, "Fn::Select"))
                .and_then(|sel| sel.get(0))
                .and_then(Value::as_u64);
            assert_eq!(index, Some(i as u64), "{sid} slot {i} selects id {i}");
            if let Some(c) = condition {
                let cond = at(&t, &["Conditions", c]).unwrap_or_else(|| panic!("{c}"));
                let text = serde_yaml::to_string(cond).unwrap_or_default();
                assert!(
                    text.contains(&format!("- {i}\n")),
                    "{c} tests element {i}: {text}"
                );
            }
        }
    }
}

#[test]
fn sources_are_wired_as_documented() {
    let t = template();
    let events = &function(&t)["Properties"]["Events"];

    let sqs = &events["CommandQueue"];
    assert_eq!(str_at(sqs, &["Type"]), Some("SQS"));
    let p = &sqs["Properties"];
    assert_eq!(
        at(p, &["FunctionResponseTypes"]),
        Some(&Value::Sequence(vec!["ReportBatchItemFailures".into()]))
    );
    assert!(resolve_num(&t, at(p, &["ScalingConfig", "MaximumConcurrency"])) >= 2);
    assert!((1..=10).contains(&resolve_num(&t, p.get("BatchSize"))));
    let queue = resource(&t, "CommandQueue").expect("queue");
    let redrive = at(queue, &["Properties", "RedrivePolicy"]).expect("RedrivePolicy");
    assert!(num(redrive.get("maxReceiveCount")) >= 1);
    let dlq = intrinsic(&redrive["deadLetterTargetArn"], "Fn::GetAtt").expect("DLQ GetAtt");
    assert_eq!(dlq[0].as_str(), Some("CommandDeadLetterQueue"));

    let eb = &events["DirectoryEvents"];
    assert_eq!(str_at(eb, &["Type"]), Some("EventBridgeRule"));
    let p = &eb["Properties"];
    assert_eq!(ref_name(&p["EventBusName"]), Some("EventBusName"));
    let sources = p["Pattern"]["source"].as_sequence().expect("source list");
    assert_eq!(sources.len(), 1);
    assert_eq!(ref_name(&sources[0]), Some("EventSource"));
    let types: BTreeSet<&str> = p["Pattern"]["detail-type"]
        .as_sequence()
        .expect("detail-type list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "Directory Group Membership Changed",
            "Directory Group Changed"
        ])
    );
    assert!(p.get("RetryPolicy").is_some() && p.get("DeadLetterConfig").is_some());
    let dlq = intrinsic(&p["DeadLetterConfig"]["Arn"], "Fn::GetAtt").expect("DLQ GetAtt");
    assert_eq!(dlq[0].as_str(), Some("EventsDeadLetterQueue"));
    // EventBridge may only park this rule's events in that queue.
    let policy = resources_of_type(&t, "AWS::SQS::QueuePolicy");
    assert!(policy.iter().any(|(_, q)| {
        let text = serde_yaml::to_string(q).unwrap_or_default();
        text.contains("EventsDeadLetterQueue")
            && text.contains("aws:SourceArn")
            && text.contains("TransferChrootFunctionDirectoryEvents")
    }));
}

#[test]
fn alarms_watch_both_dead_letter_queues_and_function_errors() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let watches = |metric: &str, dimension_ref: &str| {
        alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            let dims = serde_yaml::to_string(&p["Dimensions"]).unwrap_or_default();
            str_at(p, &["MetricName"]) == Some(metric)
                && dims.contains(dimension_ref)
                && str_at(p, &["ComparisonOperator"]) == Some("GreaterThanThreshold")
                && num(p.get("Threshold")) == 0
        })
    };
    assert!(watches(
        "ApproximateNumberOfMessagesVisible",
        "CommandDeadLetterQueue"
    ));
    assert!(watches(
        "ApproximateNumberOfMessagesVisible",
        "EventsDeadLetterQueue"
    ));
    assert!(watches("Errors", "TransferChrootFunction"));
}

#[test]
fn outputs_name_the_api_url_queue_url_and_function_arn() {
    let t = template();
    for key in ["ApiUrl", "QueueUrl", "FunctionArn"] {
        assert!(at(&t, &["Outputs", key, "Value"]).is_some(), "output {key}");
    }
    let api_url = sub_template(&t["Outputs"]["ApiUrl"]["Value"]).expect("Sub");
    assert!(api_url.contains("${ChrootApi}") && api_url.ends_with("/v1"));
    assert_eq!(
        sub_template(&t["Outputs"]["FunctionArn"]["Export"]["Name"]),
        Some("${AWS::StackName}-FunctionArn")
    );
}

#[test]
fn custom_resource_example_uses_the_function_as_service_token() {
    let t = load("examples/custom-resource.yaml");
    let customs = resources_of_type(&t, "Custom::TransferChroot");
    assert!(customs.len() >= 2, "a user and an access");
    let mut kinds = BTreeSet::new();
    for (name, r) in customs {
        let p = &r["Properties"];
        let token = serde_yaml::to_string(&p["ServiceToken"]).unwrap_or_default();
        assert!(
            token.contains("-FunctionArn") && token.contains("ChrootFunctionArn"),
            "{name}: ServiceToken is the exported function ARN or the parameter: {token}"
        );
        assert!(p.get("ServerId").is_some(), "{name}");
        for forbidden in ["HomeDirectoryType", "HomeDirectoryMappings"] {
            assert!(
                p.get(forbidden).is_none(),
                "{name}: {forbidden} is refused by the function"
            );
        }
        kinds.insert(if p.get("UserName").is_some() {
            "user"
        } else {
            "access"
        });
    }
    assert_eq!(kinds, BTreeSet::from(["access", "user"]));
    // The export the example imports is the one template.yaml publishes.
    let main = template();
    assert_eq!(
        sub_template(&main["Outputs"]["FunctionArn"]["Export"]["Name"]),
        Some("${AWS::StackName}-FunctionArn")
    );
}

// ---------------------------------------------------------------------------
// The checkers fail on bad templates: each snippet breaks exactly one rule.
// ---------------------------------------------------------------------------

mod checker_fails_on {
    use super::*;

    /// A function with its own role whose one policy holds `statement`.
    fn function_with_policy(statement: &str) -> Value {
        parse(&format!(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt Role.Arn
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
{}
"#,
            indent(statement, 14)
        ))
    }

    fn indent(text: &str, by: usize) -> String {
        text.trim_matches('\n')
            .lines()
            .map(|l| format!("{}{l}\n", " ".repeat(by)))
            .collect()
    }

    const GOOD_USERS: &str = r#"
- Effect: Allow
  Action: [transfer:DescribeUser, transfer:UpdateUser]
  Resource: !Sub arn:${AWS::Partition}:transfer:${AWS::Region}:${AWS::AccountId}:user/s-0123456789abcdef0/*
"#;

    const GOOD_PASS_ROLE: &str = r#"
- Effect: Allow
  Action: iam:PassRole
  Resource: arn:aws:iam::111122223333:role/sftp-user
  Condition:
    StringEquals:
      iam:PassedToService: transfer.amazonaws.com
"#;

    #[test]
    fn nothing_when_the_snippet_is_good() {
        // The baseline: the snippets below differ from this by one rule.
        let t = function_with_policy(&format!("{GOOD_USERS}{GOOD_PASS_ROLE}"));
        assert_eq!(all_findings(&t), Vec::<String>::new());
    }

    #[test]
    fn a_wildcard_action() {
        for action in [
            "\"*\"",
            "transfer:*",
            "transfer:Update*",
            "iam:Pass*",
            "[transfer:DescribeUser, \"s3:*\"]",
        ] {
            let t = function_with_policy(&format!(
                "- Effect: Allow\n  Action: {action}\n  Resource: arn:aws:s3:::bucket\n"
            ));
            let f = check_no_wildcard_actions(&t);
            assert!(
                f.iter().any(|f| f.contains("wildcard action")),
                "{action}: {f:?}"
            );
        }
    }

    #[test]
    fn a_wildcard_action_hidden_in_a_condition_branch() {
        let t = function_with_policy(
            r#"
- !If
  - SomeCondition
  - Effect: Allow
    Action: transfer:DescribeUser
    Resource: arn:aws:transfer:us-east-1:111122223333:user/s-0123456789abcdef0/*
  - Effect: Allow
    Action: "transfer:*"
    Resource: arn:aws:transfer:us-east-1:111122223333:user/s-0123456789abcdef0/*
"#,
        );
        assert!(!check_no_wildcard_actions(&t).is_empty());
    }

    #[test]
    fn not_action() {
        let t = function_with_policy(
            "- Effect: Allow\n  NotAction: iam:*\n  Resource: arn:aws:s3:::bucket\n",
        );
        assert!(
            check_no_wildcard_actions(&t)
                .iter()
                .any(|f| f.contains("NotAction"))
        );
    }

    #[test]
    fn a_wildcard_action_in_a_role_or_standalone_policy() {
        let t = parse(
            r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - { Effect: Allow, Action: "*", Resource: arn:aws:s3:::b }
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      PolicyDocument:
        Statement:
          - { Effect: Allow, Action: "sqs:*", Resource: arn:aws:sqs:us-east-1:1:q }
"#,
        );
        assert_eq!(check_no_wildcard_actions(&t).len(), 2);
    }

    #[test]
    fn a_policy_it_cannot_see_into() {
        for policy in [
            "AdministratorAccess",
            "{ SQSPollerPolicy: { QueueName: q } }",
        ] {
            let t = parse(&format!(
                "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies:\n        - {policy}\n"
            ));
            let f = check_no_wildcard_actions(&t);
            assert!(
                f.iter().any(|f| f.contains("cannot be checked")),
                "{policy}: {f:?}"
            );
        }
        let t = parse(
            r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole]
  Fn:
    Type: AWS::Serverless::Function
    Properties: { Role: arn:aws:iam::111122223333:role/elsewhere }
"#,
        );
        assert_eq!(
            check_no_wildcard_actions(&t).len(),
            2,
            "{:?}",
            check_no_wildcard_actions(&t)
        );
    }

    #[test]
    fn a_function_left_with_the_sam_generated_role() {
        // Inline statements are fine, but SAM adds managed policies next to them.
        let t = parse(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: transfer:DescribeUser
              Resource: arn:aws:transfer:us-east-1:111122223333:user/s-0123456789abcdef0/*
      Events:
        Q: { Type: SQS, Properties: { Queue: arn:aws:sqs:us-east-1:111122223333:q } }
"#,
        );
        let f = check_no_wildcard_actions(&t);
        assert!(f.iter().any(|f| f.contains("no explicit Role")), "{f:?}");
    }

    #[test]
    fn a_wildcard_action_in_sam_function_policies() {
        let t = parse(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt Role.Arn
      Policies:
        - Statement:
            - { Effect: Allow, Action: "transfer:*", Resource: arn:aws:transfer:us-east-1:1:user/s-0123456789abcdef0/* }
  Role: { Type: AWS::IAM::Role, Properties: {} }
"#,
        );
        assert!(
            check_no_wildcard_actions(&t)
                .iter()
                .any(|f| f.contains("wildcard action"))
        );
    }

    #[test]
    fn a_star_resource() {
        let t = function_with_policy(
            "- Effect: Allow\n  Action: transfer:DescribeUser\n  Resource: \"*\"\n",
        );
        assert!(
            check_no_star_resources(&t)
                .iter()
                .any(|f| f.contains("Resource \"*\""))
        );
        assert!(!check_transfer_scoped(&t).is_empty());
    }

    #[test]
    fn transfer_permissions_on_every_server() {
        for arn in [
            "arn:aws:transfer:us-east-1:111122223333:user/*",
            "arn:aws:transfer:us-east-1:111122223333:user/*/*",
            "arn:aws:transfer:us-east-1:111122223333:*",
            "arn:aws:transfer:us-east-1:111122223333:server/s-0123456789abcdef0",
        ] {
            let t = function_with_policy(&format!(
                "- Effect: Allow\n  Action: transfer:UpdateUser\n  Resource: {arn}\n"
            ));
            assert!(!check_transfer_scoped(&t).is_empty(), "{arn}");
        }
    }

    #[test]
    fn transfer_actions_beyond_the_four() {
        let t = function_with_policy(
            "- Effect: Allow\n  Action: [transfer:DeleteUser]\n  Resource: arn:aws:transfer:us-east-1:1:user/s-0123456789abcdef0/*\n",
        );
        assert!(
            check_transfer_scoped(&t)
                .iter()
                .any(|f| f.contains("DeleteUser"))
        );
    }

    #[test]
    fn pass_role_without_the_passed_to_service_condition() {
        let conditions = [
            "",
            "  Condition: {}\n",
            "  Condition:\n    StringLike:\n      iam:PassedToService: transfer.amazonaws.com\n",
            "  Condition:\n    StringEquals:\n      iam:PassedToService: lambda.amazonaws.com\n",
            "  Condition:\n    StringEquals:\n      iam:PassedToService: [transfer.amazonaws.com, ec2.amazonaws.com]\n",
            "  Condition:\n    StringEquals:\n      aws:RequestedRegion: us-east-1\n",
        ];
        for condition in conditions {
            let t = function_with_policy(&format!(
                "- Effect: Allow\n  Action: [iam:PassRole]\n  Resource: arn:aws:iam::111122223333:role/sftp-user\n{condition}"
            ));
            let f = check_pass_role(&t);
            assert!(
                f.iter().any(|f| f.contains("PassedToService")),
                "{condition:?}: {f:?}"
            );
        }
    }

    #[test]
    fn pass_role_on_any_role() {
        let t = function_with_policy(&GOOD_PASS_ROLE.replace("role/sftp-user", "role/*"));
        assert!(!check_pass_role(&t).is_empty());
        let t = parse(
            r#"
Parameters:
  Roles: { Type: String }
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: iam:PassRole
              Resource: !Split [",", !Ref Roles]
              Condition: { StringEquals: { iam:PassedToService: transfer.amazonaws.com } }
"#,
        );
        assert!(
            check_pass_role(&t)
                .iter()
                .any(|f| f.contains("wildcard role"))
        );
    }

    fn api_template(api_auth: &str, event_auth: &str) -> Value {
        parse(&format!(
            r#"
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
{api_auth}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        PutUser:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /servers/{{ServerId}}/users/{{UserName}}
            Method: PUT
{event_auth}
"#
        ))
    }

    const IAM_DEFAULT: &str = "      Auth:\n        DefaultAuthorizer: AWS_IAM";

    #[test]
    fn nothing_when_the_route_is_iam_authorised() {
        assert!(check_api_authorized(&api_template(IAM_DEFAULT, "")).is_empty());
        let own = "            Auth: { Authorizer: AWS_IAM }";
        assert!(check_api_authorized(&api_template("", own)).is_empty());
    }

    #[test]
    fn a_route_without_iam_authorisation() {
        let cases = [
            ("", ""),
            ("      Auth:\n        DefaultAuthorizer: MyCognito", ""),
            (IAM_DEFAULT, "            Auth: { Authorizer: NONE }"),
        ];
        for (api, event) in cases {
            let f = check_api_authorized(&api_template(api, event));
            assert!(
                f.iter().any(|f| f.contains("not IAM-authorised")),
                "{api:?} {event:?}: {f:?}"
            );
        }
    }

    #[test]
    fn a_route_on_the_implicit_api() {
        let t = parse(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: { Type: Api, Properties: { Path: /x, Method: GET } }
"#,
        );
        assert!(!check_api_authorized(&t).is_empty());
        let with_globals = parse(
            r#"
Globals:
  Api: { Auth: { DefaultAuthorizer: AWS_IAM } }
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: { Type: Api, Properties: { Path: /x, Method: GET } }
"#,
        );
        assert!(check_api_authorized(&with_globals).is_empty());
    }

    #[test]
    fn an_http_api_route_without_the_iam_authorizer() {
        let t = parse(
            r#"
Resources:
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth: { DefaultAuthorizer: AWS_IAM }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: { Type: HttpApi, Properties: { ApiId: !Ref Http, Path: /x, Method: GET } }
"#,
        );
        assert!(
            !check_api_authorized(&t).is_empty(),
            "needs EnableIamAuthorizer"
        );
        let fixed = parse(
            r#"
Resources:
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth: { DefaultAuthorizer: AWS_IAM, EnableIamAuthorizer: true }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: { Type: HttpApi, Properties: { ApiId: !Ref Http, Path: /x, Method: GET } }
"#,
        );
        assert!(check_api_authorized(&fixed).is_empty());
    }

    #[test]
    fn raw_api_gateway_resources_and_function_urls_without_iam() {
        let t = parse(
            r#"
Resources:
  M: { Type: AWS::ApiGateway::Method, Properties: { HttpMethod: PUT, AuthorizationType: NONE } }
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { RouteKey: "GET /x" } }
  U: { Type: AWS::Lambda::Url, Properties: { AuthType: NONE } }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      FunctionUrlConfig: { AuthType: NONE }
  Api:
    Type: AWS::Serverless::Api
    Properties: { StageName: v1, DefinitionBody: { paths: {} } }
"#,
        );
        assert_eq!(
            check_api_authorized(&t).len(),
            5,
            "{:?}",
            check_api_authorized(&t)
        );
    }
}
