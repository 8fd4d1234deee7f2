//! Every AWS operation the code can send, found in the code itself, and what each
//! needs from IAM in a given deployment.
//!
//! [`code_operations`] reads `src/`: in a file that uses an SDK crate, a call of one of
//! that crate's operations (`.describe_user()`: the crate's own `src/operation/`
//! folders, in the version Cargo.lock holds); in a file that calls a service through
//! `SignedClient` (its own SigV4 requests), the names of its service's actions it
//! spells. [`INVENTORY`] says, for
//! each, which IAM authorisations it needs and on which ARN, given the deployment's
//! configuration, or that the configuration cannot reach it. An operation added to the
//! code without an entry here fails `every_operation_the_code_sends_is_in_the_inventory`;
//! an entry whose grant is missing from the template fails the per-configuration test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use transfer_chroot::Config;
use transfer_chroot::domain::{ChrootTarget, HomePath, HomeRoot, TargetKind};
use transfer_chroot::findings::Account;

/// One authorisation a call needs: `action` on `arn`, an ARN of `resource_type` in the
/// Service Authorization Reference, or on `"*"` when the action has none (`None`).
#[derive(Debug, Clone)]
pub struct Need {
    pub action: &'static str,
    pub resource_type: Option<&'static str>,
    pub arn: String,
    pub context: Vec<(&'static str, String)>,
}

impl Need {
    fn on(action: &'static str, resource_type: &'static str, arn: impl Into<String>) -> Self {
        Self {
            action,
            resource_type: Some(resource_type),
            arn: arn.into(),
            context: Vec::new(),
        }
    }

    /// An action with no resource type: IAM matches it against `"*"`.
    fn anywhere(action: &'static str) -> Self {
        Self {
            action,
            resource_type: None,
            arn: "*".into(),
            context: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.context.push((key, value.into()));
        self
    }
}

/// Who makes the calls, and what it is configured to reach.
pub struct Setup {
    pub config: Config,
    pub account: Account,
    /// Servers a call may name: the listed ones, or (the tag alone deciding) one found
    /// by its tag, which no deployment could have named.
    pub servers: Vec<String>,
    /// Chroot targets it may write: below `HOME_ROOTS`, and below a server's own
    /// `transfer-chroot:home-roots` tag when `SERVER_TAG` is set.
    pub homes: Vec<ChrootTarget>,
    pub caller: Caller,
    /// What Lambda itself does with the function's role (none for the CLI).
    pub platform: Option<Platform>,
    /// The account that owns the Identity Store (`IDENTITY_STORE_ID`'s), when not the
    /// function's own.
    pub store_account: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Function,
    /// `transfer-chroot audit` (and `check`): reads only.
    CliAudit,
    /// `transfer-chroot audit --fix` and `chroot`.
    CliFix,
}

/// The deployment's own resources Lambda uses with the function's role.
pub struct Platform {
    pub log_group: String,
    pub command_queue_arn: String,
    pub dead_letter_arn: String,
    pub environment_key: Option<String>,
    pub queue_key: Option<String>,
}

/// A home the code may write under a server's own roots (its tag).
pub const TAGGED_ROOT: &str = "/tagged-sftp/home";
/// A server found by its tag, named by no deployment.
pub const TAGGED_SERVER: &str = "s-00000000000000a9b";

impl Setup {
    fn arn(&self, service: &str, regional: bool, rest: &str) -> String {
        let a = &self.account;
        if regional {
            format!("arn:{}:{service}:{}:{}:{rest}", a.partition, a.region, a.id)
        } else {
            format!("arn:{}:{service}:::{rest}", a.partition)
        }
    }

    fn user_arns(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| self.arn("transfer", true, &format!("user/{s}/alice")))
            .collect()
    }

    fn server_arns(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| self.arn("transfer", true, &format!("server/{s}")))
            .collect()
    }

    fn writes(&self) -> bool {
        self.caller != Caller::CliAudit
    }

    /// `iam:PassRole` of every role a command may set (`ALLOWED_ROLE_ARNS`).
    fn pass_roles(&self) -> Vec<Need> {
        self.config
            .guardrails
            .roles
            .iter()
            .flatten()
            .map(|r| {
                Need::on("iam:PassRole", "role", r.as_str())
                    .with("iam:PassedToService", "transfer.amazonaws.com")
            })
            .collect()
    }

    /// The folder objects the home-folder check looks at (the code decides which).
    fn folders(&self) -> Vec<(String, String)> {
        self.homes
            .iter()
            .filter(|h| self.caller == Caller::Function && self.config.checks_folder_of(h))
            .map(|h| {
                (
                    transfer_chroot::domain::storage::first_segment(h).to_owned(),
                    transfer_chroot::domain::storage::folder_key(h),
                )
            })
            .collect()
    }

    /// The authorisations of one Identity Store `action` that involves the store and
    /// `also` (resource type, ARN): none without `IDENTITY_STORE_ID`.
    fn directory(&self, action: &'static str, also: &[(&'static str, &str)]) -> Vec<Need> {
        let Some(store) = &self.config.identity_store else {
            return Vec::new();
        };
        if self.caller != Caller::Function {
            return Vec::new();
        }
        let account = self.store_account.as_deref().unwrap_or(&self.account.id);
        let mut needs = vec![Need::on(
            action,
            "Identitystore",
            format!(
                "arn:{}:identitystore::{account}:identitystore/{store}",
                self.account.partition
            ),
        )];
        for (resource_type, rest) in also {
            needs.push(Need::on(
                action,
                resource_type,
                format!("arn:{}:identitystore:::{rest}", self.account.partition),
            ));
        }
        needs
    }

    fn reports(&self) -> Option<(String, String)> {
        let bucket = self.config.report_bucket.clone()?;
        (self.caller == Caller::Function).then(|| {
            (
                bucket,
                transfer_chroot::report::run_prefix("2026-12-07T03:00:00Z"),
            )
        })
    }

    fn queue_arn(&self) -> Option<String> {
        let url = self.config.command_queue_url.as_deref()?;
        // https://sqs.<region>.amazonaws.com/<account>/<name>
        let mut parts = url.trim_start_matches("https://").split('/');
        let host = parts.next()?;
        let account = parts.next()?;
        let name = parts.next()?;
        let region = host.split('.').nth(1)?;
        Some(format!(
            "arn:{}:sqs:{region}:{account}:{name}",
            self.account.partition
        ))
    }
}

/// A home `below` a root, as the code would admit it.
pub fn home(root: &str) -> ChrootTarget {
    let root = HomeRoot::parse(root).expect("a root");
    let path = HomePath::parse(&format!("{}/alice", root.as_str()), TargetKind::User).unwrap();
    ChrootTarget::admit(path, &[root]).unwrap()
}

/// One operation of one service and what it needs in a setup (nothing: unreachable).
pub struct Entry {
    pub service: &'static str,
    pub operation: &'static str,
    pub needs: fn(&Setup) -> Vec<Need>,
}

/// A directory user's and a group's resource (their ids as the samples have them).
const USER: &str = "user/9067a1b2c3-1a2b3c4d-0001-4e5f-8a9b-000000000001";
const GROUP: &str = "group/9067a1b2c3-5e6f7a8b-0001-4c2d-9e0f-000000000101";

/// Operations Lambda makes with the role on the function's behalf (not in `src/`).
pub const PLATFORM: &str = "lambda";

pub const INVENTORY: &[Entry] = &[
    // --- Transfer (src/transfer/sdk.rs) ----------------------------------------------
    Entry {
        service: "transfer",
        operation: "DescribeUser",
        needs: |s| {
            s.user_arns()
                .into_iter()
                .map(|a| Need::on("transfer:DescribeUser", "user", a))
                .collect()
        },
    },
    Entry {
        service: "transfer",
        operation: "UpdateUser",
        needs: |s| {
            if !s.writes() {
                return Vec::new();
            }
            let mut needs: Vec<Need> = s
                .user_arns()
                .into_iter()
                .map(|a| Need::on("transfer:UpdateUser", "user", a))
                .collect();
            needs.extend(s.pass_roles());
            needs
        },
    },
    Entry {
        service: "transfer",
        operation: "DescribeAccess",
        needs: |s| {
            s.server_arns()
                .into_iter()
                .map(|a| Need::on("transfer:DescribeAccess", "server", a))
                .collect()
        },
    },
    Entry {
        service: "transfer",
        operation: "UpdateAccess",
        needs: |s| {
            if !s.writes() {
                return Vec::new();
            }
            let mut needs = vec![Need::anywhere("transfer:UpdateAccess")];
            needs.extend(s.pass_roles());
            needs
        },
    },
    Entry {
        service: "transfer",
        operation: "DescribeServer",
        needs: |s| {
            s.server_arns()
                .into_iter()
                .map(|a| Need::on("transfer:DescribeServer", "server", a))
                .collect()
        },
    },
    Entry {
        service: "transfer",
        operation: "ListUsers",
        needs: |s| {
            s.server_arns()
                .into_iter()
                .map(|a| Need::on("transfer:ListUsers", "server", a))
                .collect()
        },
    },
    Entry {
        service: "transfer",
        operation: "ListAccesses",
        needs: |s| {
            s.server_arns()
                .into_iter()
                .map(|a| Need::on("transfer:ListAccesses", "server", a))
                .collect()
        },
    },
    Entry {
        service: "transfer",
        operation: "ListServers",
        // The function lists servers to find the tagged ones; the CLI also to audit
        // every server when given none.
        needs: |s| {
            if s.caller == Caller::Function && s.config.server_tag.is_none() {
                return Vec::new();
            }
            vec![Need::anywhere("transfer:ListServers")]
        },
    },
    // --- S3: home folders (src/folders/s3.rs) and reports (src/reports/s3.rs) --------
    Entry {
        service: "s3",
        operation: "HeadObject",
        // HeadObject is authorised by s3:GetObject; without s3:ListBucket on the bucket
        // a missing key answers 403, not 404 (S3 API reference, HeadObject).
        needs: |s| {
            s.folders()
                .into_iter()
                .flat_map(|(bucket, key)| {
                    [
                        Need::on(
                            "s3:GetObject",
                            "object",
                            s.arn("s3", false, &format!("{bucket}/{key}")),
                        ),
                        Need::on("s3:ListBucket", "bucket", s.arn("s3", false, &bucket)),
                    ]
                })
                .collect()
        },
    },
    Entry {
        service: "s3",
        operation: "PutObject",
        needs: |s| {
            let mut needs = Vec::new();
            if s.config.create_home_folders {
                for (bucket, key) in s.folders() {
                    needs.push(Need::on(
                        "s3:PutObject",
                        "object",
                        s.arn("s3", false, &format!("{bucket}/{key}")),
                    ));
                }
            }
            if let Some((bucket, prefix)) = s.reports() {
                for key in ["part-0001.json", "report.html", "findings.csv"] {
                    needs.push(Need::on(
                        "s3:PutObject",
                        "object",
                        s.arn("s3", false, &format!("{bucket}/{prefix}{key}")),
                    ));
                }
            }
            needs
        },
    },
    Entry {
        service: "s3",
        operation: "GetObject",
        needs: |s| match s.reports() {
            Some((bucket, prefix)) => vec![Need::on(
                "s3:GetObject",
                "object",
                s.arn("s3", false, &format!("{bucket}/{prefix}part-0001.json")),
            )],
            None => Vec::new(),
        },
    },
    Entry {
        service: "s3",
        operation: "ListObjectsV2",
        // Authorised by s3:ListBucket, with the request's prefix as s3:prefix.
        needs: |s| match s.reports() {
            Some((bucket, prefix)) => {
                vec![
                    Need::on("s3:ListBucket", "bucket", s.arn("s3", false, &bucket))
                        .with("s3:prefix", prefix),
                ]
            }
            None => Vec::new(),
        },
    },
    // --- SQS: the audit's fixes and continuations (src/queue/sqs.rs) ------------------
    Entry {
        service: "sqs",
        operation: "SendMessageBatch",
        // Authorised by sqs:SendMessage (SQS developer guide, batch actions).
        needs: |s| match (s.caller, s.queue_arn()) {
            (Caller::Function, Some(arn)) => vec![Need::on("sqs:SendMessage", "queue", arn)],
            _ => Vec::new(),
        },
    },
    // --- Security Hub (src/findings/hub.rs, signed with aws-sigv4) --------------------
    Entry {
        service: "securityhub",
        operation: "BatchImportFindings",
        needs: |s| {
            if s.caller != Caller::Function || !s.config.security_hub {
                return Vec::new();
            }
            vec![Need::on(
                "securityhub:BatchImportFindings",
                "product",
                s.account.product_arn(),
            )]
        },
    },
    Entry {
        service: "securityhub",
        operation: "GetFindings",
        needs: |s| {
            if s.caller != Caller::Function || !s.config.security_hub {
                return Vec::new();
            }
            vec![Need::on(
                "securityhub:GetFindings",
                "hub",
                s.arn("securityhub", true, "hub/default"),
            )]
        },
    },
    // --- The Identity Store (src/directory/store.rs, signed by hand) -------------------
    // Each involves the store and the resources the reference requires for it.
    Entry {
        service: "identitystore",
        operation: "GetUserId",
        needs: |s| s.directory("identitystore:GetUserId", &[("User", USER)]),
    },
    Entry {
        service: "identitystore",
        operation: "DescribeUser",
        needs: |s| s.directory("identitystore:DescribeUser", &[("User", USER)]),
    },
    Entry {
        service: "identitystore",
        operation: "GetGroupId",
        needs: |s| s.directory("identitystore:GetGroupId", &[("Group", GROUP)]),
    },
    Entry {
        service: "identitystore",
        operation: "ListGroups",
        needs: |s| s.directory("identitystore:ListGroups", &[("AllGroups", "group/*")]),
    },
    Entry {
        service: "identitystore",
        operation: "IsMemberInGroups",
        needs: |s| {
            s.directory(
                "identitystore:IsMemberInGroups",
                &[
                    ("User", USER),
                    ("Group", GROUP),
                    ("AllGroupMemberships", "membership/*"),
                ],
            )
        },
    },
    Entry {
        service: "identitystore",
        operation: "ListGroupMemberships",
        needs: |s| {
            s.directory(
                "identitystore:ListGroupMemberships",
                &[("Group", GROUP), ("AllGroupMemberships", "membership/*")],
            )
        },
    },
    Entry {
        service: "identitystore",
        operation: "ListUsers",
        needs: |s| s.directory("identitystore:ListUsers", &[("AllUsers", "user/*")]),
    },
    // --- STS (src/cli/main.rs): the account a CLI report is about ----------------------
    Entry {
        service: "sts",
        operation: "GetCallerIdentity",
        // "No permissions are required to perform this operation" (AWS STS API
        // reference, GetCallerIdentity): nothing to grant, even a deny does not stop it.
        needs: |_| Vec::new(),
    },
    // --- What Lambda does with the role -------------------------------------------------
    Entry {
        service: PLATFORM,
        operation: "logs",
        needs: |s| match &s.platform {
            Some(p) => {
                let stream = s.arn(
                    "logs",
                    true,
                    &format!(
                        "log-group:{}:log-stream:2026/12/07/[$LATEST]0123456789abcdef",
                        p.log_group
                    ),
                );
                vec![
                    Need::on("logs:CreateLogStream", "log-stream", stream.clone()),
                    Need::on("logs:PutLogEvents", "log-stream", stream),
                ]
            }
            None => Vec::new(),
        },
    },
    Entry {
        service: PLATFORM,
        operation: "SQS event source mapping",
        needs: |s| match &s.platform {
            Some(p) => [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ]
            .into_iter()
            .map(|a| Need::on(a, "queue", p.command_queue_arn.clone()))
            .collect(),
            None => Vec::new(),
        },
    },
    Entry {
        service: PLATFORM,
        operation: "EventInvokeConfig OnFailure",
        needs: |s| match &s.platform {
            Some(p) => vec![Need::on(
                "sqs:SendMessage",
                "queue",
                p.dead_letter_arn.clone(),
            )],
            None => Vec::new(),
        },
    },
    Entry {
        service: PLATFORM,
        operation: "X-Ray",
        needs: |s| match &s.platform {
            Some(_) => vec![
                Need::anywhere("xray:PutTraceSegments"),
                Need::anywhere("xray:PutTelemetryRecords"),
            ],
            None => Vec::new(),
        },
    },
    Entry {
        service: PLATFORM,
        operation: "KMS keys",
        needs: |s| {
            let Some(p) = &s.platform else {
                return Vec::new();
            };
            let mut needs = Vec::new();
            if let Some(k) = &p.environment_key {
                needs.push(Need::on("kms:Decrypt", "key", k.clone()));
            }
            if let Some(k) = &p.queue_key {
                let via = format!("sqs.{}.amazonaws.com", s.account.region);
                needs.push(
                    Need::on("kms:Decrypt", "key", k.clone()).with("kms:ViaService", via.clone()),
                );
                needs.push(
                    Need::on("kms:GenerateDataKey", "key", k.clone()).with("kms:ViaService", via),
                );
            }
            needs
        },
    },
];

// ---------------------------------------------------------------------------
// The operations in the code.
// ---------------------------------------------------------------------------

/// Files that call a service through `crate::signed::SignedClient` (no SDK crate), and
/// the service they call.
pub const SIGNED_BY_HAND: &[(&str, &str)] = &[
    ("src/findings/hub.rs", "securityhub"),
    ("src/directory/store.rs", "identitystore"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its comments (`//` to the end of a line, outside strings is
/// close enough here: no string in these files holds `//` before an operation name).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `describe_user` → `DescribeUser`, `list_objects_v2` → `ListObjectsV2`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The operations of SDK crate `name` (its `src/operation/` folders, snake case), in
/// the version Cargo.lock holds, from the registry's sources that built it.
fn crate_operations(name: &str) -> BTreeSet<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains(&format!("name = \"{name}\"\n")))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{name} is not in Cargo.lock"));
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let dir = std::fs::read_dir(home.join("registry/src"))
        .expect("the registry's sources")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(format!("{name}-{version}/src/operation")))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("{name}-{version}'s sources are not in the registry"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .filter_map(|e| {
            let e = e.ok()?;
            e.path()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Every (service, operation) the code in `src/` can send, with the files that send it.
pub fn code_operations(
    actions_of: impl Fn(&str) -> Vec<String>,
) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let uses = regex::Regex::new(r"aws_sdk_([a-z0-9]+)").unwrap();
    let call = regex::Regex::new(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)").unwrap();
    let literal = regex::Regex::new(r#""([A-Z][A-Za-z0-9]+)""#).unwrap();
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let signed: BTreeMap<&str, &str> = SIGNED_BY_HAND.iter().copied().collect();
    for path in files {
        let relative = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let code = code_of(&path);
        let services: BTreeSet<String> =
            uses.captures_iter(&code).map(|c| c[1].to_owned()).collect();
        for service in services {
            let operations = crate_operations(&format!("aws-sdk-{service}"));
            for c in call.captures_iter(&code) {
                if operations.contains(&c[1]) {
                    found
                        .entry((service.clone(), pascal(&c[1])))
                        .or_default()
                        .insert(relative.clone());
                }
            }
        }
        if code.contains("SignedClient") && relative != "src/signed.rs" {
            let service = signed.get(relative.as_str()).unwrap_or_else(|| {
                panic!("{relative} calls a service through SignedClient: name it in SIGNED_BY_HAND")
            });
            let actions = actions_of(service);
            for c in literal.captures_iter(&code) {
                if actions.iter().any(|a| a == &c[1]) {
                    found
                        .entry(((*service).to_owned(), c[1].to_owned()))
                        .or_default()
                        .insert(relative.clone());
                }
            }
        }
    }
    found
}

/// A home below each root of `roots`, plus the tagged servers' own when `tagged`.
pub fn homes_below(config: &Config, tagged: bool) -> Vec<ChrootTarget> {
    let mut homes: Vec<ChrootTarget> = config
        .guardrails
        .roots
        .iter()
        .map(|r| home(r.as_str()))
        .collect();
    if tagged {
        homes.push(home(TAGGED_ROOT));
    }
    homes
}
