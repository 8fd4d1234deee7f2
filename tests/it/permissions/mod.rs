//! What a real account grants: every AWS call the code can make, in every
//! configuration of the template, held against the role the template deploys and
//! against AWS's Service Authorization Reference (docs/deploy.md, "Least privilege").
//!
//! For each configuration: the template is evaluated as CloudFormation would
//! (`common::cfn`), its function's environment is read by the function's own
//! `Config`, and each operation of [`calls::INVENTORY`] that configuration can reach
//! must be allowed by the resolved role policy (`policy::allowed`) on the ARN the code
//! calls it with, an ARN of a resource type the reference names for the action (or
//! `"*"`, for an action with none). The operations are found in the code
//! (`calls::code_operations`): one added without an entry fails.
//!
//! The resolved policies of four configurations are kept in `docs/iam/` (parliament
//! lints them in scripts/check-template.sh); `UPDATE_IAM_POLICIES=1 cargo test --test
//! it permissions::` rewrites them. The CLI's policies there are checked the same way.

mod calls;
mod policy;
mod reference;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use transfer_chroot::Config;
use transfer_chroot::findings::Account;

use crate::common::cfn::{self, Stack};
use calls::{Caller, INVENTORY, Need, PLATFORM, Platform, Setup};
use policy::Authorization;
use reference::Reference;

const FUNCTION: &str = "TransferChrootFunction";
const ROLE: &str = "TransferChrootRole";

const TWO_SERVERS: &str = "s-0123456789abcdef0,s-0123456789abcdef1";
const SIX_SERVERS: &str = "s-0123456789abcdef0,s-0123456789abcdef1,s-0123456789abcdef2,\
s-0123456789abcdef3,s-0123456789abcdef4,s-0123456789abcdef5";
const ROLES: &str =
    "arn:aws:iam::111122223333:role/sftp-user,arn:aws:iam::111122223333:role/sftp/partners";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/0123abcd-12ab-34cd-56ef-1234567890ab";

/// The configurations held against the template: each documented way to deploy it.
const CONFIGURATIONS: &[(&str, &[(&str, &str)])] = &[
    // The README's: a server list and roots, the home-folder check on (its default).
    (
        "servers",
        &[
            ("AllowedServerIds", TWO_SERVERS),
            ("HomeRoots", "/acme-sftp/home,/acme-sftp/groups"),
        ],
    ),
    // Six servers, four roots, folders created, roles passed.
    (
        "six-servers",
        &[
            ("AllowedServerIds", SIX_SERVERS),
            (
                "HomeRoots",
                "/acme-sftp/home,/acme-sftp/groups,/other-bucket/home,/fs-0123456789abcdef0/home",
            ),
            ("HomeFolders", "Create"),
            ("AllowedRoleArns", ROLES),
        ],
    ),
    // An organization's StackSet: the tag alone, each server's roots from its own tag.
    ("tag-only", &[("ServerTag", "transfer-chroot=enforce")]),
    // Both a list and a tag, with roots.
    (
        "servers-and-tag",
        &[
            ("AllowedServerIds", TWO_SERVERS),
            ("ServerTag", "transfer-chroot"),
            ("HomeRoots", "/acme-sftp/home"),
        ],
    ),
    // Nothing optional: no folders, no tracing.
    (
        "minimal",
        &[
            ("AllowedServerIds", "s-0123456789abcdef0"),
            ("HomeRoots", "/acme-sftp/home"),
            ("HomeFolders", "Off"),
            ("Tracing", "PassThrough"),
            ("ReservedConcurrency", ""),
        ],
    ),
    // Everything on.
    (
        "everything",
        &[
            ("AllowedServerIds", TWO_SERVERS),
            ("ServerTag", "transfer-chroot=enforce"),
            ("HomeRoots", "/acme-sftp/home,/acme-sftp/groups"),
            ("HomeFolders", "Create"),
            ("AllowedRoleArns", ROLES),
            ("ReportBucket", "acme-audit-reports"),
            ("SecurityHub", "true"),
            ("EnvironmentKmsKeyArn", KEY),
            ("QueueKmsKeyArn", KEY),
            ("LogsKmsKeyArn", KEY),
            ("IdentityStoreId", "d-9067a1b2c3"),
            ("GroupProfiles", r#"{"Default": {}}"#),
            (
                "OktaEventBusName",
                "aws.partner/okta.com/acme/transfer-chroot",
            ),
        ],
    ),
    // The directory in an organization's Identity Center (another account's store).
    (
        "directory",
        &[
            ("ServerTag", "transfer-chroot=enforce"),
            ("IdentityStoreId", "d-9067a1b2c3"),
            ("IdentityStoreAccountId", "444455556666"),
            ("GroupProfiles", r#"{"Default": {}}"#),
        ],
    ),
];

/// The configurations whose resolved policy is kept in docs/iam/.
const DOCUMENTED: &[&str] = &["servers", "tag-only", "everything", "directory"];

fn reference() -> &'static Reference {
    static R: std::sync::OnceLock<Reference> = std::sync::OnceLock::new();
    R.get_or_init(Reference::load)
}

/// What the function runs with when `template` is deployed with `parameters`.
fn function_setup(stack: &Stack) -> Setup {
    let env = stack.environment(FUNCTION);
    let config = Config::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("the template's environment is refused: {e}"));
    let function_arn = format!(
        "arn:{}:lambda:{}:{}:function:{}-{FUNCTION}",
        cfn::PARTITION,
        cfn::REGION,
        cfn::ACCOUNT,
        cfn::STACK
    );
    let account = Account::from_function_arn(&function_arn).unwrap();
    let tag_only = config.server_tag.is_some() && config.guardrails.servers.is_empty();
    let tagged = config.server_tag.is_some();
    let mut servers: Vec<String> = config
        .guardrails
        .servers
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    if tag_only {
        servers.push(calls::TAGGED_SERVER.to_owned());
    }
    let properties = stack.properties(FUNCTION);
    let arn_of = |v: &Value| v.as_str().map(str::to_owned);
    let platform = Platform {
        log_group: properties["LoggingConfig"]["LogGroup"]
            .as_str()
            .expect("the function's log group")
            .to_owned(),
        command_queue_arn: arn_of(&properties["Events"]["CommandQueue"]["Properties"]["Queue"])
            .expect("the SQS event source's queue"),
        dead_letter_arn: arn_of(
            &properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"],
        )
        .expect("the OnFailure destination"),
        environment_key: arn_of(&properties["KmsKeyArn"]),
        queue_key: stack
            .condition("HasQueueKey")
            .then(|| stack.parameter("QueueKmsKeyArn").to_owned()),
    };
    Setup {
        homes: calls::homes_below(&config, tagged),
        config,
        account,
        servers,
        caller: Caller::Function,
        platform: Some(platform),
        store_account: Some(stack.parameter("IdentityStoreAccountId"))
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
    }
}

/// Why each need of `setup` is not met by `policy`: a denial, or an ARN the reference
/// does not know for the action.
fn unmet(setup: &Setup, policy: &Value) -> Vec<String> {
    let reference = reference();
    let mut problems = Vec::new();
    for entry in INVENTORY {
        let needs = (entry.needs)(setup);
        let mut by_action: BTreeMap<&str, Vec<&Need>> = BTreeMap::new();
        for need in &needs {
            by_action.entry(need.action).or_default().push(need);
        }
        for need in &needs {
            let Some(action) = reference.action(need.action) else {
                problems.push(format!("{}: not in the reference", need.action));
                continue;
            };
            let types = reference.resources(action);
            match need.resource_type {
                None if !types.is_empty() => problems.push(format!(
                    "{action} has resource types {:?}: the inventory must name one",
                    types.iter().map(|t| &t.name).collect::<Vec<_>>()
                )),
                Some(t) if types.is_empty() => problems.push(format!(
                    "{action} has no resource type in the reference: it is matched against \"*\", not a {t} ARN"
                )),
                Some(t) if !types.iter().any(|r| r.name == t) => problems.push(format!(
                    "{action} is not authorised on {t} (the reference: {:?})",
                    types.iter().map(|t| &t.name).collect::<Vec<_>>()
                )),
                Some(t) if !reference.fits(action, t, &need.arn) => problems.push(format!(
                    "{action}: {} is not an ARN of {t}",
                    need.arn
                )),
                _ => {}
            }
            let request = Authorization {
                action: action.to_owned(),
                resource: need.arn.clone(),
                context: need
                    .context
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            };
            if !policy::allowed(policy, &request) {
                problems.push(format!(
                    "{} {}: {action} on {} is denied",
                    entry.service, entry.operation, need.arn
                ));
            }
        }
        // Every resource type the reference requires for an action is authorised.
        for (action, needs) in by_action {
            let Some(spelled) = reference.action(action) else {
                continue;
            };
            for required in reference.resources(spelled).iter().filter(|r| r.required) {
                if !needs
                    .iter()
                    .any(|n| n.resource_type == Some(required.name.as_str()))
                {
                    problems.push(format!(
                        "{action} also needs its {} resource authorised",
                        required.name
                    ));
                }
            }
        }
    }
    problems
}

/// The actions `setup` needs at all.
fn needed_actions(setup: &Setup) -> BTreeSet<String> {
    INVENTORY
        .iter()
        .flat_map(|e| (e.needs)(setup))
        .map(|n| n.action.to_lowercase())
        .collect()
}

fn granted_actions(policy: &Value) -> BTreeSet<String> {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.to_lowercase()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn check(template: &serde_yaml::Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, parameters) in CONFIGURATIONS {
        let stack = Stack::deploy(template, parameters);
        let setup = function_setup(&stack);
        let policy = stack.role_policy(ROLE);
        problems.extend(
            unmet(&setup, &policy)
                .into_iter()
                .map(|p| format!("[{name}] {p}")),
        );
        // And nothing more: every action granted is one a call of this configuration needs.
        let needed = needed_actions(&setup);
        for action in granted_actions(&policy).difference(&needed) {
            problems.push(format!(
                "[{name}] {action} is granted but no call of this configuration needs it"
            ));
        }
    }
    problems
}

#[test]
fn every_call_is_granted_in_every_configuration_and_nothing_else() {
    let problems = check(&cfn::load("template.yaml"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn update_access_on_server_arns_is_denied_as_aws_would() {
    // The mutation the Service Authorization Reference caught: UpdateAccess back on the
    // server ARNs (as it was), its own "*" statement gone.
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml"))
        .unwrap();
    let own = "              - Sid: ChrootAccesses\n                Effect: Allow\n                Action: transfer:UpdateAccess\n                Resource: \"*\"\n";
    assert!(
        text.contains(own),
        "the ChrootAccesses statement moved: update this test"
    );
    let mutated = text.replace(own, "").replace(
        "                    - transfer:DescribeAccess\n                    - transfer:DescribeServer\n",
        "                    - transfer:DescribeAccess\n                    - transfer:UpdateAccess\n                    - transfer:DescribeServer\n",
    );
    assert_ne!(mutated, text);
    let problems = check(&cfn::parse(&mutated));
    let denied: Vec<&String> = problems
        .iter()
        .filter(|p| p.contains("transfer:UpdateAccess on * is denied"))
        .collect();
    assert_eq!(denied.len(), CONFIGURATIONS.len(), "{problems:#?}");
}

#[test]
fn a_call_added_without_its_grant_is_denied() {
    // The per-configuration check reads the policy, not the inventory: without a
    // statement, an operation is denied.
    let template = cfn::load("template.yaml");
    let stack = Stack::deploy(&template, CONFIGURATIONS[0].1);
    let setup = function_setup(&stack);
    let mut policy = stack.role_policy(ROLE);
    let statements = policy["Statement"].as_array_mut().unwrap();
    statements.retain(|s| s["Sid"] != "QueueAuditFixesAndContinuations");
    let problems = unmet(&setup, &policy);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("sqs SendMessageBatch: sqs:SendMessage")),
        "{problems:#?}"
    );
}

#[test]
fn every_operation_the_code_sends_is_in_the_inventory() {
    let reference = reference();
    let found = calls::code_operations(|service| {
        reference
            .actions_of(service)
            .into_iter()
            .map(str::to_owned)
            .collect()
    });
    assert!(
        found.contains_key(&("transfer".into(), "UpdateAccess".into())),
        "the scan finds the SDK's calls: {found:?}"
    );
    let listed: BTreeSet<(String, String)> = INVENTORY
        .iter()
        .filter(|e| e.service != PLATFORM)
        .map(|e| (e.service.to_owned(), e.operation.to_owned()))
        .collect();
    let sent: BTreeSet<(String, String)> = found.keys().cloned().collect();
    let missing: Vec<_> = sent
        .difference(&listed)
        .map(|k| format!("{}:{} (sent by {:?})", k.0, k.1, found[k]))
        .collect();
    assert!(
        missing.is_empty(),
        "operations the code sends that calls::INVENTORY does not list (say what each needs): {missing:#?}"
    );
    let stale: Vec<_> = listed.difference(&sent).collect();
    assert!(
        stale.is_empty(),
        "listed but not sent by the code: {stale:?}"
    );
}

fn docs_iam(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/iam")
        .join(name)
}

#[test]
fn the_resolved_policies_in_docs_are_the_templates() {
    let template = cfn::load("template.yaml");
    let mut stale = Vec::new();
    for (name, parameters) in CONFIGURATIONS
        .iter()
        .filter(|(n, _)| DOCUMENTED.contains(n))
    {
        let stack = Stack::deploy(&template, parameters);
        let policy = stack.role_policy(ROLE);
        let text = serde_json::to_string_pretty(&policy).unwrap() + "\n";
        let path = docs_iam(&format!("function-role.{name}.json"));
        if std::env::var_os("UPDATE_IAM_POLICIES").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the template's role: UPDATE_IAM_POLICIES=1 cargo test --test it permissions::"
    );
}

/// The CLI with its own credentials: any server of the account, read-only or fixing.
fn cli_setup(caller: Caller) -> Setup {
    let config = Config::from_pairs(&[
        ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
        ("HOME_ROOTS", "/acme-sftp/home"),
    ])
    .unwrap();
    Setup {
        homes: calls::homes_below(&config, false),
        config,
        account: Account {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            id: "444455556666".into(),
        },
        servers: vec!["s-0123456789abcdef0".into()],
        caller,
        platform: None,
        store_account: None,
    }
}

#[test]
fn the_cli_policies_grant_what_each_mode_calls_and_nothing_more() {
    for (file, caller) in [
        ("cli-audit.json", Caller::CliAudit),
        ("cli-fix.json", Caller::CliFix),
    ] {
        let path = docs_iam(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let policy: Value = serde_json::from_str(&text).unwrap();
        let setup = cli_setup(caller);
        let problems = unmet(&setup, &policy);
        assert!(problems.is_empty(), "{file}: {}", problems.join("\n"));
        let needed = needed_actions(&setup);
        let extra: Vec<_> = granted_actions(&policy)
            .difference(&needed)
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "{file} grants what the CLI never calls: {extra:?}"
        );
    }
    // The audit's policy writes nothing.
    let audit: Value =
        serde_json::from_str(&std::fs::read_to_string(docs_iam("cli-audit.json")).unwrap())
            .unwrap();
    for write in [
        "transfer:updateuser",
        "transfer:updateaccess",
        "iam:passrole",
    ] {
        assert!(!granted_actions(&audit).contains(write), "{write}");
    }
}
