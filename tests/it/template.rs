//! `template.yaml` facts that need the Rust code: the function `Timeout` against the
//! SDK timeout constants, the variables `Config` reads wired from parameters (or, for
//! the command queue, from the template's own queue), the audit schedule's event read
//! by the function's own parser, and the template's own deployment facts the docs
//! promise (the contract's routes, the role's statements, server slots, sources,
//! alarms, outputs, runtime, architecture, the custom-resource example, and the
//! security settings checkov looks for: access logs, encryption, concurrency, tracing).
//!
//! The generic rules - no wildcard actions or `Resource: "*"`, Transfer and
//! `iam:PassRole` scoping, no policy that cannot be read, an explicit role, IAM
//! authorisation on every API route - are cfn-lint custom rules in
//! `template-rules/`, tested there against bad snippets and run with cfn-lint by
//! scripts/check-template.sh (template-rules/README.md).

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_yaml::Value;
use transfer_chroot::Config;
use transfer_chroot::transfer::sdk;

use crate::common::cfn::load;

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

/// The template string of a `Fn::Sub` (both the string and the [string, vars] form).
fn sub_template(v: &Value) -> Option<&str> {
    let sub = intrinsic(v, "Fn::Sub")?;
    sub.as_str().or_else(|| sub.get(0).and_then(Value::as_str))
}

/// Whether template parameter `param` accepts `value`: its AllowedPattern, else its
/// AllowedValues, else anything.
fn parameter_admits(t: &Value, param: &str, value: &str) -> bool {
    let p = at(t, &["Parameters", param]).unwrap_or_else(|| panic!("no parameter {param}"));
    if let Some(pattern) = str_at(p, &["AllowedPattern"]) {
        // CloudFormation anchors AllowedPattern at both ends.
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).expect("AllowedPattern");
        return re.is_match(value);
    }
    match at(p, &["AllowedValues"]).and_then(Value::as_sequence) {
        Some(allowed) => allowed.iter().any(|v| v.as_str() == Some(value)),
        None => true,
    }
}

// ---------------------------------------------------------------------------
// The function's role: what it grants and on what (the generic IAM rules are
// template-rules' E9101-E9106).
// ---------------------------------------------------------------------------

/// The Transfer operations the function calls (the last two: the fleet audit's
/// listings).
const TRANSFER_ACTIONS: [&str; 8] = [
    "transfer:DescribeUser",
    "transfer:UpdateUser",
    "transfer:DescribeAccess",
    "transfer:UpdateAccess",
    "transfer:DescribeServer",
    "transfer:ListUsers",
    "transfer:ListAccesses",
    "transfer:ListServers",
];

/// The statements of `TransferChrootRole`'s inline policies; a statement under
/// `Fn::If` counts once per branch.
fn role_statements(t: &Value) -> Vec<&Value> {
    let policies = at(
        t,
        &["Resources", "TransferChrootRole", "Properties", "Policies"],
    )
    .expect("TransferChrootRole Policies");
    elements(policies)
        .into_iter()
        .filter_map(|p| at(p, &["PolicyDocument", "Statement"]))
        .flat_map(elements)
        .collect()
}

fn statement<'a>(statements: &[&'a Value], sid: &str) -> &'a Value {
    statements
        .iter()
        .find(|s| str_at(s, &["Sid"]) == Some(sid))
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

#[test]
fn the_role_grants_what_the_function_calls() {
    // A role without these statements would pass the rules vacuously, and the
    // function would fail with AccessDenied.
    let t = template();
    let granted: BTreeSet<&str> = role_statements(&t)
        .into_iter()
        .filter(|s| str_at(s, &["Effect"]) == Some("Allow"))
        .flat_map(|s| s.get("Action").map(elements).unwrap_or_default())
        .filter_map(Value::as_str)
        .collect();
    // sqs:SendMessage: the audit's fixes and continuations (SendMessageBatch is
    // authorised by it), and the asynchronous sources' dead letters.
    for a in TRANSFER_ACTIONS.iter().chain(&[
        "iam:PassRole",
        "sqs:SendMessage",
        "securityhub:BatchImportFindings",
        "securityhub:GetFindings",
    ]) {
        assert!(granted.contains(a), "{a} is not granted: {granted:?}");
    }
}

#[test]
fn the_function_runs_with_the_templates_role_and_its_documented_statements() {
    let t = template();
    let role = at(&function(&t)["Properties"], &["Role"]).expect("Role");
    let name = intrinsic(role, "Fn::GetAtt")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str);
    assert_eq!(name, Some("TransferChrootRole"));
    let statements = role_statements(&t);
    let sids: BTreeSet<&str> = statements
        .iter()
        .filter_map(|s| str_at(s, &["Sid"]))
        .collect();
    assert_eq!(
        sids,
        BTreeSet::from([
            "WriteOwnLogGroup",
            "ConsumeCommandQueue",
            "ParkFailedAsyncInvocations",
            "QueueAuditFixesAndContinuations",
            "ChrootUsersOfAllowedServers",
            "ChrootAccessesOfAllowedServers",
            // UpdateAccess has no resource type: "*" (tests/it/permissions/).
            "ChrootAccesses",
            "AuditAllowedServers",
            "PassOnlyAllowedRolesToTransfer",
            "LookForHomeFolders",
            "TellMissingHomeFoldersFromForbidden",
            "CreateHomeFolders",
            "WriteTraces",
            "DecryptOwnEnvironment",
            "UseQueueKeyThroughSqs",
            // SERVER_TAG without a list: the account's servers (the function enforces
            // the tag), and the one listing that finds them.
            "ChrootUsersOfTaggedServers",
            "ChrootAccessesOfTaggedServers",
            "AuditTaggedServers",
            "FindTaggedServers",
            // SECURITY_HUB.
            "ImportFindingsToSecurityHub",
            "ReadOwnFindingsFromSecurityHub",
            // REPORT_BUCKET.
            "WriteAuditReports",
            "ListAuditReportParts",
            // IDENTITY_STORE_ID.
            "ReadDirectory",
        ])
    );
    // Logs and queues: the stack's own resources, by GetAtt.
    for (sid, target) in [
        ("WriteOwnLogGroup", "FunctionLogGroup"),
        ("ConsumeCommandQueue", "CommandQueue"),
        ("ParkFailedAsyncInvocations", "EventsDeadLetterQueue"),
        ("QueueAuditFixesAndContinuations", "CommandQueue"),
    ] {
        let s = statement(&statements, sid);
        let got = intrinsic(&s["Resource"], "Fn::GetAtt").and_then(|a| a.get(0));
        assert_eq!(got.and_then(Value::as_str), Some(target), "{sid}");
    }
    // The only sends: the dead letters, and the audit's fixes to the queue it consumes.
    for sid in [
        "ParkFailedAsyncInvocations",
        "QueueAuditFixesAndContinuations",
    ] {
        let s = statement(&statements, sid);
        assert_eq!(str_at(s, &["Action"]), Some("sqs:SendMessage"), "{sid}");
    }
    // The audit lists, and only lists: writes stay in the chroot statements.
    let audit: Vec<&str> = elements(&statement(&statements, "AuditAllowedServers")["Action"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(audit, ["transfer:ListUsers", "transfer:ListAccesses"]);
}

fn function(t: &Value) -> &Value {
    let functions = resources_of_type(t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 1, "one function");
    functions[0].1
}

// ---------------------------------------------------------------------------
// The API contract (that every route is IAM-authorised is template-rules' E9107).
// ---------------------------------------------------------------------------

/// An API route a function's `Api` or `HttpApi` event serves.
#[derive(Debug)]
struct Route {
    at: String,
    method: String,
    path: String,
}

fn api_routes(t: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    for (fname, f) in resources_of_type(t, "AWS::Serverless::Function") {
        let Some(events) = at(f, &["Properties", "Events"]).and_then(Value::as_mapping) else {
            continue;
        };
        for (ename, e) in events {
            if !matches!(str_at(e, &["Type"]), Some("Api" | "HttpApi")) {
                continue;
            }
            let props = e.get("Properties");
            routes.push(Route {
                at: format!("{fname}.Events.{}", ename.as_str().unwrap_or_default()),
                method: props
                    .and_then(|p| str_at(p, &["Method"]))
                    .unwrap_or("ANY")
                    .to_ascii_uppercase(),
                path: props
                    .and_then(|p| str_at(p, &["Path"]))
                    .unwrap_or("$default")
                    .to_owned(),
            });
        }
    }
    routes
}

#[test]
fn every_route_of_the_contract_is_served_and_nothing_else() {
    let t = template();
    let routes = api_routes(&t);
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

// ---------------------------------------------------------------------------
// Deployment facts.
// ---------------------------------------------------------------------------

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
        Some("bootstrap")
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

/// Variables the function reads that the template deliberately never sets.
const LOCAL_ONLY_VARIABLES: &[&str] = &["CFN_RESPONSE_ORIGINS"];

/// Variables wired from a resource of the template rather than a parameter: the
/// deployment's own queue, whose URL no one should have to type.
const FROM_RESOURCES: &[(&str, &str)] = &[("COMMAND_QUEUE_URL", "CommandQueue")];

/// The variables `Config::from_lookup` asks for, in the order it asks.
fn variables_the_config_reads() -> Vec<String> {
    let asked = RefCell::new(Vec::new());
    let _ = Config::from_lookup(|name| {
        asked.borrow_mut().push(name.to_owned());
        None
    });
    asked.into_inner()
}

#[test]
fn every_configuration_variable_is_wired_from_a_parameter_or_the_templates_queue() {
    let t = template();
    let vars = at(&function(&t)["Properties"], &["Environment", "Variables"]).expect("env");
    let mut read: BTreeSet<String> = variables_the_config_reads().into_iter().collect();
    // For local runs and tests only: a deployed function answers CloudFormation's own
    // ResponseURLs and nothing else, so the template must not be able to widen that.
    for local in LOCAL_ONLY_VARIABLES {
        assert!(read.remove(*local), "Config no longer reads {local}");
        assert!(
            vars.get(*local).is_none(),
            "{local} is for local runs only and must not be set by the template"
        );
    }
    // The list the docs (docs/deploy.md) describe; the code must read no other.
    let documented = [
        "ALLOWED_SERVER_IDS",
        "HOME_ROOTS",
        "HOME_TEMPLATE",
        "ALLOWED_ROLE_ARNS",
        "GROUP_PROFILES",
        "DEFAULT_SERVER_ID",
        "DRY_RUN",
        "SQS_MAX_CONCURRENCY",
        "AUDIT_CONCURRENCY",
        "AUDIT_MAX_RPS",
        "EXEMPT_USERS",
        "CHECK_HOME_FOLDERS",
        "CREATE_HOME_FOLDERS",
        "COMMAND_QUEUE_URL",
        "SERVER_TAG",
        "SERVER_TAG_REFRESH_SECONDS",
        "SECURITY_HUB",
        "REPORT_BUCKET",
        "IDENTITY_STORE_ID",
        "IDENTITY_STORE_MAX_RPS",
        "SERVER_FACTS_TTL_SECONDS",
    ];
    assert_eq!(
        read,
        documented.iter().map(|s| (*s).to_owned()).collect(),
        "Config reads other variables than the template wires"
    );
    // COMMAND_QUEUE_URL: `!Ref` of an SQS queue is its URL, and it must be the queue
    // the function consumes (the audit's fixes come back through the SQS source) and
    // the one its role may send to.
    for (name, queue) in FROM_RESOURCES {
        assert!(read.remove(*name), "Config no longer reads {name}");
        let v = vars.get(*name).unwrap_or_else(|| panic!("{name} not set"));
        assert_eq!(
            ref_name(v),
            Some(*queue),
            "{name} is the URL of {queue}: {v:?}"
        );
        let r = resource(&t, queue).unwrap_or_else(|| panic!("no resource {queue}"));
        assert_eq!(str_at(r, &["Type"]), Some("AWS::SQS::Queue"), "{queue}");
        let consumed = at(
            &function(&t)["Properties"],
            &["Events", "CommandQueue", "Properties", "Queue"],
        )
        .and_then(|q| intrinsic(q, "Fn::GetAtt"))
        .and_then(|a| a.get(0))
        .and_then(Value::as_str);
        assert_eq!(consumed, Some(*queue), "the SQS event consumes {queue}");
        let statements = role_statements(&t);
        let sent_to = intrinsic(
            &statement(&statements, "QueueAuditFixesAndContinuations")["Resource"],
            "Fn::GetAtt",
        )
        .and_then(|a| a.get(0))
        .and_then(Value::as_str);
        assert_eq!(sent_to, Some(*queue), "the role may send to {queue}");
    }
    for name in &read {
        let v = vars
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} not set"));
        let mut params: Vec<&str> = elements(v).into_iter().filter_map(ref_name).collect();
        // `!If [Condition, "true", "false"]`: wired through a condition on a parameter.
        if let Some(cond) = intrinsic(v, "Fn::If")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
        {
            params.extend(
                parameters_in(at(&t, &["Conditions", cond]).expect("the condition exists"))
                    .into_iter()
                    .filter(|p| at(&t, &["Parameters", p]).is_some()),
            );
        }
        assert!(
            !params.is_empty() && params.iter().all(|p| at(&t, &["Parameters", p]).is_some()),
            "{name} is not wired from a parameter: {v:?}"
        );
    }
}

/// Every `Ref` (and `${Name}` of an `Fn::Sub`) anywhere inside `v`.
fn parameters_in(v: &Value) -> Vec<&str> {
    let mut found = Vec::new();
    match v {
        Value::Mapping(m) => {
            for (k, inner) in m {
                match (k.as_str(), inner) {
                    (Some("Ref"), Value::String(name)) => found.push(name.as_str()),
                    (Some("Fn::Sub"), Value::String(s)) => {
                        found.extend(s.split("${").skip(1).filter_map(|r| r.split('}').next()))
                    }
                    _ => found.extend(parameters_in(inner)),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| found.extend(parameters_in(i))),
        _ => {}
    }
    found
}

#[test]
fn home_folder_permissions_are_derived_from_the_home_roots_and_follow_the_parameter() {
    let t = template();
    let statements = role_statements(&t);
    for (sid, action) in [
        ("LookForHomeFolders", "s3:GetObject"),
        ("TellMissingHomeFoldersFromForbidden", "s3:ListBucket"),
        ("CreateHomeFolders", "s3:PutObject"),
    ] {
        let s = statement(&statements, sid);
        assert_eq!(str_at(s, &["Action"]), Some(action), "{sid}");
        let refs = parameters_in(&s["Resource"]);
        assert!(refs.contains(&"HomeRoots"), "{sid}: {refs:?}");
        assert!(
            !refs.contains(&"AllowedServerIds"),
            "{sid} is about folders only"
        );
    }
    // Check (the default) looks; Create also writes; Off grants nothing on S3.
    let p = at(&t, &["Parameters", "HomeFolders"]).expect("HomeFolders");
    assert_eq!(str_at(p, &["Default"]), Some("Check"));
    for root in ["/acme-sftp/home", "/a/b,/c/d,/e/f,/g/h"] {
        assert!(parameter_admits(&t, "HomeRoots", root), "{root}");
    }
    // A wildcard would widen the S3 resources; a fifth root has no slot.
    for root in ["/acme-sftp/*", "/a?", "/a,/b,/c,/d,/e", "relative"] {
        assert!(!parameter_admits(&t, "HomeRoots", root), "{root}");
    }
}

#[test]
fn drift_events_come_from_cloudtrail_on_the_default_bus_with_the_same_safety_nets() {
    let t = template();
    let events = at(&function(&t)["Properties"], &["Events"]).expect("events");
    let rule = at(events, &["TransferApiCalls", "Properties"]).expect("the CloudTrail rule");
    assert!(rule.get("EventBusName").is_none(), "the default bus");
    let pattern = &rule["Pattern"];
    let list = |v: &Value| -> Vec<String> {
        elements(v)
            .into_iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(list(&pattern["source"]), ["aws.transfer"]);
    assert_eq!(
        list(&pattern["detail-type"]),
        [transfer_chroot::sources::cloudtrail::API_CALL]
    );
    // The calls that set a home, and UpdateServer (a server read again at once).
    let mut names: Vec<&str> = transfer_chroot::sources::cloudtrail::EVENT_NAMES.to_vec();
    names.push(transfer_chroot::sources::cloudtrail::UPDATE_SERVER);
    assert_eq!(list(&pattern["detail"]["eventName"]), names);
    let directory = at(events, &["DirectoryEvents", "Properties"]).expect("directory rule");
    assert_eq!(rule["RetryPolicy"], directory["RetryPolicy"]);
    assert_eq!(rule["DeadLetterConfig"], directory["DeadLetterConfig"]);
    // The dead-letter queue's policy lets both rules park events there.
    let policy = resource(&t, "EventsDeadLetterQueuePolicy").expect("queue policy");
    let text = serde_yaml::to_string(policy).unwrap();
    assert!(
        text.contains("TransferChrootFunctionTransferApiCalls"),
        "{text}"
    );
}

#[test]
fn the_audit_runs_on_a_schedule_daily_with_fix_from_its_parameter_off_by_default() {
    use transfer_chroot::audit::{Audit, Coverage};
    use transfer_chroot::input::AuditInput;
    use transfer_chroot::sources::{Shape, direct, shape};

    let t = template();
    let events = at(&function(&t)["Properties"], &["Events"])
        .and_then(Value::as_mapping)
        .expect("events");
    let schedules: Vec<(&str, &Value)> = events
        .iter()
        .filter(|(_, e)| matches!(str_at(e, &["Type"]), Some("Schedule" | "ScheduleV2")))
        .filter_map(|(name, e)| Some((name.as_str()?, e)))
        .collect();
    assert_eq!(schedules.len(), 1, "one schedule: {schedules:?}");
    let (name, event) = schedules[0];
    // An EventBridge rule (Schedule), so SAM adds only a Lambda permission: ScheduleV2
    // (EventBridge Scheduler) would need a role the template rules cannot see.
    assert_eq!(str_at(event, &["Type"]), Some("Schedule"));
    let p = &event["Properties"];

    // When: the AuditSchedule parameter, daily unless told otherwise.
    assert_eq!(ref_name(&p["Schedule"]), Some("AuditSchedule"));
    assert_eq!(
        str_at(&t, &["Parameters", "AuditSchedule", "Default"]),
        Some("rate(1 day)")
    );
    for ok in ["rate(1 day)", "rate(12 hours)", "cron(0 3 * * ? *)"] {
        assert!(parameter_admits(&t, "AuditSchedule", ok), "{ok}");
    }
    for bad in ["", "daily", "rate(1 day) ", "rate()"] {
        assert!(!parameter_admits(&t, "AuditSchedule", bad), "{bad:?}");
    }

    // What: {"Action": "Audit", "Fix": <AuditFix>}, report only by default, read by the
    // function's own router and parser as an audit of every allowed server.
    assert_eq!(
        str_at(&t, &["Parameters", "AuditFix", "Default"]),
        Some("false")
    );
    let input = sub_template(&p["Input"]).expect("Input is a Fn::Sub string");
    assert_eq!(
        parameters_in(&p["Input"]),
        ["AuditFix"],
        "the input depends on AuditFix only"
    );
    let config = Config::from_pairs(&[
        (
            "ALLOWED_SERVER_IDS",
            "s-0123456789abcdef0,s-0123456789abcdef1",
        ),
        ("HOME_ROOTS", "/acme-sftp/home"),
    ])
    .expect("config");
    let allowed = &config.guardrails.servers;
    for fix in ["false", "true"] {
        assert!(parameter_admits(&t, "AuditFix", fix), "{fix}");
        let rendered = input.replace("${AuditFix}", fix);
        let event: serde_json::Value = serde_json::from_str(&rendered)
            .unwrap_or_else(|e| panic!("AuditFix={fix}: {rendered} is not JSON: {e}"));
        assert_eq!(shape(&event), Shape::Direct, "{rendered}");
        assert!(direct::is_audit(&event), "{rendered}");
        let audit = Audit::parse(
            &AuditInput::read(event.as_object().unwrap(), false),
            &Coverage::of(&config, allowed.clone()),
        )
        .unwrap_or_else(|r| panic!("AuditFix={fix}: {rendered} refused: {r:?}"));
        assert_eq!(audit.fix, fix == "true", "{rendered}");
        assert!(!audit.dry_run && audit.resume.is_none());
        assert_eq!(&audit.servers, allowed, "every allowed server");
    }
    assert!(!parameter_admits(&t, "AuditFix", "yes"));

    // The same safety net as the other rules: EventBridge's retries, then the
    // dead-letter queue, whose policy lets this rule send too.
    let directory = at(events_of(&t), &["DirectoryEvents", "Properties"]).expect("directory rule");
    assert_eq!(p["RetryPolicy"], directory["RetryPolicy"]);
    assert_eq!(p["DeadLetterConfig"], directory["DeadLetterConfig"]);
    let policy = resource(&t, "EventsDeadLetterQueuePolicy").expect("queue policy");
    let rule = format!("TransferChrootFunction{name}");
    let text = serde_yaml::to_string(policy).unwrap();
    assert!(text.contains(&rule), "{rule} may not park events: {text}");
}

fn events_of(t: &Value) -> &Value {
    at(&function(t)["Properties"], &["Events"]).expect("events")
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
    // Empty: ServerTag decides, and the template's Rules refuse neither being set.
    assert!(parameter_admits(&t, "AllowedServerIds", ""));
    let rule =
        serde_yaml::to_string(at(&t, &["Rules", "ServersAreNamedOrTagged"]).expect("the rule"))
            .unwrap_or_default();
    assert!(
        rule.contains("AllowedServerIds")
            && rule.contains("ServerTag")
            && rule.contains("HomeRoots"),
        "{rule}"
    );
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
    let statements = role_statements(&t);
    for (sid, arn) in [
        ("ChrootUsersOfAllowedServers", ":user/${Id}/*"),
        ("ChrootAccessesOfAllowedServers", ":server/${Id}"),
        ("AuditAllowedServers", ":server/${Id}"),
    ] {
        let s = statement(&statements, sid);
        let raw = s["Resource"].as_sequence().expect("resource list");
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
            let text = intrinsic(value, "Fn::Sub")
                .and_then(|s| s.get(0))
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(
                text.ends_with(arn),
                "{sid} slot {i}: {text} is not a {arn} ARN"
            );
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
fn alarms_on_the_functions_own_metrics_name_metrics_it_writes_without_dimensions() {
    use transfer_chroot::metrics::{AUDIT_METRICS, INVOCATION_METRICS, NAMESPACE};
    let t = template();
    let written: Vec<&str> = INVOCATION_METRICS
        .iter()
        .chain(AUDIT_METRICS)
        .copied()
        .collect();
    let mut watched = Vec::new();
    for (name, a) in resources_of_type(&t, "AWS::CloudWatch::Alarm") {
        let p = &a["Properties"];
        // A plain alarm, or the metrics of a metric-math one.
        let mut metrics: Vec<&Value> = vec![p];
        if let Some(list) = p["Metrics"].as_sequence() {
            metrics.extend(
                list.iter()
                    .filter_map(|m| m.get("MetricStat")?.get("Metric")),
            );
        }
        for m in metrics {
            if str_at(m, &["Namespace"]) != Some(NAMESPACE) {
                continue;
            }
            let metric = str_at(m, &["MetricName"]).unwrap_or_default();
            assert!(
                written.contains(&metric),
                "{name}: {metric} is not a metric the function writes"
            );
            // The function writes these with no dimension (the `[]` set): an alarm
            // naming a dimension would watch another series, never fed.
            assert!(
                m.get("Dimensions").is_none(),
                "{name}: {metric} with dimensions"
            );
            watched.push(metric.to_owned());
        }
    }
    for m in [
        "Drifted",
        "NeedsAttention",
        "Failed",
        "Updated",
        "Unchanged",
    ] {
        assert!(watched.iter().any(|w| w == m), "no alarm watches {m}");
    }
}

// ---------------------------------------------------------------------------
// What a security scanner looks for (checkov, run by scripts/check-template.sh, only
// sees that a property is there; these check what it is).
// ---------------------------------------------------------------------------

/// `!If [cond, a, b]` as (cond, a, b).
fn if_args(v: &Value) -> Option<(&str, &Value, &Value)> {
    match intrinsic(v, "Fn::If")?.as_sequence()?.as_slice() {
        [c, a, b] => Some((c.as_str()?, a, b)),
        _ => None,
    }
}

/// `v` is `!If [cond, !Ref param, !Ref AWS::NoValue]` with `cond` testing that
/// `param`: set from the parameter when given, absent otherwise.
fn optional_from(t: &Value, v: Option<&Value>, param: &str) -> bool {
    let Some((cond, given, absent)) = v.and_then(if_args) else {
        return false;
    };
    let tested = at(t, &["Conditions", cond]).map(parameters_in);
    ref_name(given) == Some(param)
        && ref_name(absent) == Some("AWS::NoValue")
        && tested == Some(vec![param])
}

#[test]
fn reserved_concurrency_leaves_room_above_the_queue_and_may_be_left_out() {
    let t = template();
    let p = &function(&t)["Properties"];
    assert!(optional_from(
        &t,
        p.get("ReservedConcurrentExecutions"),
        "ReservedConcurrency"
    ));
    // The reservation caps every source at once; the SQS mapping's own cap must fit
    // below it with room for the API and the events, or the queue is throttled and
    // its messages move towards the dead-letter queue.
    let reserved = num(at(&t, &["Parameters", "ReservedConcurrency", "Default"]));
    let sqs = at(p, &["Events", "CommandQueue", "Properties"]).expect("SQS event");
    let queue = resolve_num(&t, at(sqs, &["ScalingConfig", "MaximumConcurrency"]));
    assert!(
        reserved >= 2 * queue,
        "ReservedConcurrency {reserved} leaves no room beside SqsMaximumConcurrency {queue}"
    );
    for (value, admitted) in [
        ("", true),
        ("10", true),
        ("1000", true),
        ("0", false),
        ("-1", false),
        ("ten", false),
    ] {
        assert_eq!(
            parameter_admits(&t, "ReservedConcurrency", value),
            admitted,
            "ReservedConcurrency {value:?}"
        );
    }
}

#[test]
fn every_queue_is_encrypted_by_sqs_or_by_the_given_key() {
    let t = template();
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    assert_eq!(queues.len(), 3, "command queue and two dead-letter queues");
    for (name, q) in queues {
        let p = &q["Properties"];
        assert!(
            optional_from(&t, p.get("KmsMasterKeyId"), "QueueKmsKeyArn"),
            "{name}: KmsMasterKeyId from QueueKmsKeyArn"
        );
        // SSE-SQS exactly when no key is given (SQS refuses both at once).
        let (cond, with_key, without) = p
            .get("SqsManagedSseEnabled")
            .and_then(if_args)
            .unwrap_or_else(|| panic!("{name}: SqsManagedSseEnabled follows the key"));
        assert_eq!(cond, "HasQueueKey", "{name}");
        assert_eq!(
            (with_key.as_bool(), without.as_bool()),
            (Some(false), Some(true)),
            "{name}"
        );
    }
    // The role may use the queue key, and only through SQS.
    let statements = role_statements(&t);
    let s = statement(&statements, "UseQueueKeyThroughSqs");
    assert_eq!(ref_name(&s["Resource"]), Some("QueueKmsKeyArn"));
    let via = at(s, &["Condition", "StringEquals", "kms:ViaService"]).and_then(sub_template);
    assert_eq!(via, Some("sqs.${AWS::Region}.amazonaws.com"));
}

#[test]
fn log_groups_keep_a_retention_and_take_the_optional_key() {
    let t = template();
    let groups = resources_of_type(&t, "AWS::Logs::LogGroup");
    assert_eq!(groups.len(), 2, "the function's and the API access log");
    for (name, g) in groups {
        let p = &g["Properties"];
        let days = p.get("RetentionInDays").and_then(ref_name);
        assert!(
            days.is_some_and(|d| at(&t, &["Parameters", d, "Default"]).is_some()),
            "{name}: RetentionInDays from a parameter"
        );
        assert!(
            optional_from(&t, p.get("KmsKeyId"), "LogsKmsKeyArn"),
            "{name}"
        );
    }
    let p = &function(&t)["Properties"];
    assert!(optional_from(
        &t,
        p.get("KmsKeyArn"),
        "EnvironmentKmsKeyArn"
    ));
    let statements = role_statements(&t);
    let s = statement(&statements, "DecryptOwnEnvironment");
    assert_eq!(str_at(s, &["Action"]), Some("kms:Decrypt"));
    assert_eq!(ref_name(&s["Resource"]), Some("EnvironmentKmsKeyArn"));
    // A key parameter names one key: no alias (IAM cannot scope to one) and no wildcard.
    let key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    for param in ["LogsKmsKeyArn", "EnvironmentKmsKeyArn", "QueueKmsKeyArn"] {
        // Empty by default: AWS managed encryption unless a key is given.
        assert_eq!(
            str_at(&t, &["Parameters", param, "Default"]),
            Some(""),
            "{param}"
        );
        assert!(parameter_admits(&t, param, ""), "{param}");
        assert!(parameter_admits(&t, param, key), "{param}");
        for refused in [
            "arn:aws:kms:eu-west-1:111122223333:key/*",
            "arn:aws:kms:eu-west-1:111122223333:alias/transfer-chroot",
            "*",
        ] {
            assert!(
                !parameter_admits(&t, param, refused),
                "{param} admits {refused}"
            );
        }
    }
}

#[test]
fn the_api_writes_a_json_access_log_naming_the_caller_route_status_and_invocation() {
    let t = template();
    let api = resource(&t, "ChrootApi").expect("ChrootApi");
    let setting = at(api, &["Properties", "AccessLogSetting"]).expect("AccessLogSetting");
    let dest = intrinsic(&setting["DestinationArn"], "Fn::GetAtt").and_then(|a| a.get(0));
    assert_eq!(dest.and_then(Value::as_str), Some("ApiAccessLogGroup"));
    let format = str_at(setting, &["Format"]).expect("Format");
    assert!(!format.contains('\n'), "one line per request");
    // Valid JSON once API Gateway has filled in its variables (it writes "-" for a
    // missing one, so every value is quoted).
    let filled = regex::Regex::new(r"\$context\.[A-Za-z.]+")
        .unwrap()
        .replace_all(format, "-");
    let line: serde_json::Value = serde_json::from_str(&filled).expect("the format is JSON");
    for (field, variable) in [
        ("requestId", "$context.requestId"),
        ("userArn", "$context.identity.userArn"),
        ("httpMethod", "$context.httpMethod"),
        ("resourcePath", "$context.resourcePath"),
        ("path", "$context.path"),
        ("status", "$context.status"),
        ("lambdaRequestId", "$context.integration.requestId"),
    ] {
        assert!(line.get(field).is_some(), "access log field {field}");
        assert!(
            format.contains(&format!("\"{field}\":\"{variable}\"")),
            "{field} = {variable}"
        );
    }
    // Nothing a caller controls beyond the path: no headers, body or user agent.
    for never in ["userAgent", "$input", "$context.requestOverride", "header"] {
        assert!(
            !format.contains(never),
            "the access log must not carry {never}"
        );
    }
    // Tracing: the function and the API stage follow the one parameter.
    let p = &function(&t)["Properties"];
    assert_eq!(p.get("Tracing").and_then(ref_name), Some("Tracing"));
    let (cond, on, off) = at(api, &["Properties", "TracingEnabled"])
        .and_then(if_args)
        .expect("TracingEnabled follows Tracing");
    assert_eq!(
        (cond, on.as_bool(), off.as_bool()),
        ("TracingActive", Some(true), Some(false))
    );
    let statements = role_statements(&t);
    let traces: Vec<&str> = elements(&statement(&statements, "WriteTraces")["Action"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        traces,
        ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    );
}

#[test]
fn every_checkov_skip_gives_a_reason() {
    // scripts/check-template.sh fails on an unskipped finding; a skip must say why.
    for file in ["template.yaml", "examples/custom-resource.yaml"] {
        let t = load(file);
        for (name, r) in resources(&t) {
            let Some(skips) = at(r, &["Metadata", "checkov", "skip"]) else {
                continue;
            };
            for skip in skips.as_sequence().expect("a list of skips") {
                let id = str_at(skip, &["id"]).unwrap_or_default();
                assert!(id.starts_with("CKV_"), "{file} {name}: skip id {id:?}");
                let reason = str_at(skip, &["comment"]).unwrap_or_default();
                assert!(reason.len() > 20, "{file} {name}: {id} without a reason");
            }
        }
    }
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

#[test]
fn a_stackset_can_deploy_it_to_any_account_and_region_as_it_is() {
    // A service-managed StackSet with automatic deployment creates the stack in every
    // new account of its OUs with the StackSet's parameters: every parameter must have
    // a default (or be left empty), and the template may name no account, region or
    // bucket of its own.
    let t = template();
    let params = at(&t, &["Parameters"])
        .and_then(Value::as_mapping)
        .expect("parameters");
    for (name, p) in params {
        assert!(p.get("Default").is_some(), "{name:?} has no Default");
    }
    // With the organization's parameters alone (the tag, Security Hub), every
    // parameter is admitted and the Rules hold.
    assert!(parameter_admits(&t, "ServerTag", "transfer-chroot=enforce"));
    assert!(parameter_admits(&t, "ServerTag", "transfer-chroot"));
    assert!(!parameter_admits(&t, "ServerTag", "a,b"));
    assert!(parameter_admits(&t, "SecurityHub", "true"));
    for (name, default) in [
        ("AllowedServerIds", ""),
        ("HomeRoots", ""),
        ("SecurityHub", "false"),
    ] {
        assert_eq!(
            str_at(&t, &["Parameters", name, "Default"]),
            Some(default),
            "{name}"
        );
    }
    let account = regex::Regex::new(r"\b[0-9]{12}\b").unwrap();
    let region =
        regex::Regex::new(r"\b(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov)?-[a-z]+-[0-9]\b").unwrap();
    let bucket = regex::Regex::new(r"arn:[a-z-]+:s3:::[a-z0-9]").unwrap();
    fn strings<'a>(v: &'a Value, key: Option<&str>, out: &mut Vec<(String, &'a str)>) {
        match v {
            Value::String(s) => out.push((key.unwrap_or_default().to_owned(), s)),
            Value::Mapping(m) => m.iter().for_each(|(k, v)| strings(v, k.as_str(), out)),
            Value::Sequence(items) => items.iter().for_each(|v| strings(v, key, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    strings(&t, None, &mut all);
    for (key, s) in all {
        // Patterns and prose may show an example; nothing the stack creates may.
        if matches!(
            key.as_str(),
            "AllowedPattern"
                | "ConstraintDescription"
                | "Description"
                | "AssertDescription"
                | "comment"
        ) {
            continue;
        }
        assert!(!account.is_match(s), "{key}: {s} names an account");
        assert!(!region.is_match(s), "{key}: {s} names a region");
        assert!(!bucket.is_match(s), "{key}: {s} names a bucket");
        assert!(
            !s.contains("arn:aws:"),
            "{key}: {s} names a partition (use ${{AWS::Partition}})"
        );
    }
    // What Security Hub needs, and nothing when it is off.
    let statements = role_statements(&t);
    for (sid, action, arn) in [
        (
            "ImportFindingsToSecurityHub",
            "securityhub:BatchImportFindings",
            ":product/${AWS::AccountId}/default",
        ),
        (
            "ReadOwnFindingsFromSecurityHub",
            "securityhub:GetFindings",
            ":hub/default",
        ),
    ] {
        let s = statement(&statements, sid);
        assert_eq!(str_at(s, &["Action"]), Some(action), "{sid}");
        assert!(
            sub_template(&s["Resource"])
                .unwrap_or_default()
                .ends_with(arn),
            "{sid}"
        );
    }
    let vars = at(&function(&t)["Properties"], &["Environment", "Variables"]).expect("env");
    assert_eq!(ref_name(&vars["SECURITY_HUB"]), Some("SecurityHub"));
}
