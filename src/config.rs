//! Configuration from the environment, validated once at cold start.
//!
//! A bad value fails the cold start with a message naming the variable, so a broken
//! deployment never serves a single event.

use crate::command::Defaults;
use std::collections::BTreeSet;

use crate::domain::{
    ExternalId, Guardrails, HomeRoot, HomeTemplate, ResponseOrigins, RoleArn, ServerId, TargetKind,
    UserName,
};
use crate::profiles::GroupProfiles;

pub const DEFAULT_SQS_CONCURRENCY: usize = 10;
/// Items of an audit page looked at once (`AUDIT_CONCURRENCY`): chosen by measurement
/// (docs/PERFORMANCE.md, "The audit's pipeline").
pub const DEFAULT_AUDIT_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct Config {
    pub guardrails: Guardrails,
    /// `DEFAULT_SERVER_ID` and `HOME_TEMPLATE`.
    pub defaults: Defaults,
    pub group_profiles: Option<GroupProfiles>,
    /// `EXEMPT_USERS`: user names and external ids never written by a drift fix (an
    /// admin user with a deliberately wide home, say); each entry is a valid one.
    pub exempt: BTreeSet<String>,
    pub dry_run: bool,
    /// `CHECK_HOME_FOLDERS` (default true): on S3 servers without directory listing
    /// optimisation, look for the chroot's folder object before writing.
    pub check_home_folders: bool,
    /// `CREATE_HOME_FOLDERS` (default false): create a missing one instead of warning.
    pub create_home_folders: bool,
    /// How many SQS records run at once (`SQS_MAX_CONCURRENCY`). The default, 10, is SQS's
    /// default batch size, so a whole batch runs in one round (docs/PERFORMANCE.md).
    pub sqs_concurrency: usize,
    /// Where a CloudFormation `ResponseURL` may point besides CloudFormation's own
    /// (`CFN_RESPONSE_ORIGINS`, for local runs and tests; none when unset).
    pub response_origins: ResponseOrigins,
    /// `COMMAND_QUEUE_URL`: where an audit with `Fix` queues one `Reconcile` command per
    /// drifted target (and its own continuation); `None`: fixes in the invocation.
    pub command_queue_url: Option<String>,
    /// How many targets of an audit page are looked at (described, reconciled) at once
    /// (`AUDIT_CONCURRENCY`, 1 to 64).
    pub audit_concurrency: usize,
    /// `AUDIT_MAX_RPS`: the most Transfer requests a second this execution environment
    /// sends, for accounts where other tools share Transfer's limit; `None`: as many as
    /// Transfer accepts (paced from its throttling, [`crate::transfer::pace`]).
    pub audit_max_rps: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", .0.iter().map(|(v, m)| format!("{v}: {m}")).collect::<Vec<_>>().join("; "))]
pub struct ConfigError(pub Vec<(&'static str, String)>);

impl ConfigError {
    pub fn names(&self, variable: &str) -> bool {
        self.0.iter().any(|(v, _)| *v == variable)
    }
}

fn list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables from name/value pairs (tests, tools).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// Reads the variables through `var`, so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut errors: Vec<(&'static str, String)> = Vec::new();
        let mut fail = |v: &'static str, m: String| errors.push((v, m));

        let mut servers = Vec::new();
        match var("ALLOWED_SERVER_IDS") {
            None => fail(
                "ALLOWED_SERVER_IDS",
                "required (comma-separated server ids)".into(),
            ),
            Some(raw) => {
                for s in list(&raw) {
                    match ServerId::parse(s) {
                        Ok(id) => servers.push(id),
                        Err(e) => fail("ALLOWED_SERVER_IDS", format!("{s:?} {e}")),
                    }
                }
                if servers.is_empty() && list(&raw).next().is_none() {
                    fail(
                        "ALLOWED_SERVER_IDS",
                        "must list at least one server id".into(),
                    );
                }
            }
        }

        let mut roots = Vec::new();
        match var("HOME_ROOTS") {
            None => fail(
                "HOME_ROOTS",
                "required (comma-separated path prefixes)".into(),
            ),
            Some(raw) => {
                for r in list(&raw) {
                    match HomeRoot::parse(r) {
                        Ok(root) => roots.push(root),
                        Err(e) => fail("HOME_ROOTS", format!("{r:?} {e}")),
                    }
                }
                if roots.is_empty() && list(&raw).next().is_none() {
                    fail("HOME_ROOTS", "must list at least one root".into());
                }
            }
        }

        let roles = var("ALLOWED_ROLE_ARNS").map(|raw| {
            list(&raw)
                .filter_map(|r| match RoleArn::parse(r) {
                    Ok(role) => Some(role),
                    Err(e) => {
                        fail("ALLOWED_ROLE_ARNS", format!("{r:?} {e}"));
                        None
                    }
                })
                .collect::<Vec<_>>()
        });

        let default_server = var("DEFAULT_SERVER_ID")
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| match ServerId::parse(s.trim()) {
                Ok(id) if servers.contains(&id) => Some(id),
                Ok(id) => {
                    fail(
                        "DEFAULT_SERVER_ID",
                        format!("{id} is not in ALLOWED_SERVER_IDS"),
                    );
                    None
                }
                Err(e) => {
                    fail("DEFAULT_SERVER_ID", e.to_string());
                    None
                }
            });

        let mut exempt = BTreeSet::new();
        if let Some(raw) = var("EXEMPT_USERS") {
            for entry in list(&raw) {
                if UserName::parse(entry).is_ok() || ExternalId::parse(entry).is_ok() {
                    exempt.insert(entry.to_owned());
                } else {
                    fail(
                        "EXEMPT_USERS",
                        format!("{entry:?} is neither a user name nor an external id"),
                    );
                }
            }
        }

        let mut flag = |name: &'static str, default: bool| match var(name).as_deref().map(str::trim)
        {
            None | Some("") => default,
            Some("false") | Some("False") | Some("FALSE") | Some("0") => false,
            Some("true") | Some("True") | Some("TRUE") | Some("1") => true,
            Some(other) => {
                fail(name, format!("must be true or false, got {other:?}"));
                default
            }
        };
        let dry_run = flag("DRY_RUN", false);
        let check_home_folders = flag("CHECK_HOME_FOLDERS", true);
        let create_home_folders = flag("CREATE_HOME_FOLDERS", false);
        if create_home_folders && !check_home_folders {
            fail(
                "CREATE_HOME_FOLDERS",
                "needs CHECK_HOME_FOLDERS (a folder is created only where it was found missing)"
                    .into(),
            );
        }

        let sqs_concurrency = match var("SQS_MAX_CONCURRENCY") {
            None => DEFAULT_SQS_CONCURRENCY,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    fail(
                        "SQS_MAX_CONCURRENCY",
                        format!("must be 1 to 100, got {raw:?}"),
                    );
                    DEFAULT_SQS_CONCURRENCY
                }
            },
        };

        let audit_concurrency = match var("AUDIT_CONCURRENCY") {
            None => DEFAULT_AUDIT_CONCURRENCY,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    fail("AUDIT_CONCURRENCY", format!("must be 1 to 64, got {raw:?}"));
                    DEFAULT_AUDIT_CONCURRENCY
                }
            },
        };

        let audit_max_rps = var("AUDIT_MAX_RPS")
            .filter(|raw| !raw.trim().is_empty())
            .and_then(|raw| match raw.trim().parse::<f64>() {
                Ok(r) if r.is_finite() && (0.1..=100_000.0).contains(&r) => Some(r),
                _ => {
                    fail(
                        "AUDIT_MAX_RPS",
                        format!(
                            "must be a number of requests a second, 0.1 to 100000, got {raw:?}"
                        ),
                    );
                    None
                }
            });

        let response_origins = match var("CFN_RESPONSE_ORIGINS") {
            None => ResponseOrigins::none(),
            Some(raw) => ResponseOrigins::parse(&raw).unwrap_or_else(|bad| {
                for (entry, e) in bad {
                    fail(
                        "CFN_RESPONSE_ORIGINS",
                        format!("{entry:?} {e} (expected comma-separated scheme://host:port)"),
                    );
                }
                ResponseOrigins::none()
            }),
        };

        // An SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`, or a
        // local SQS's); the SDK sends to it, so only its shape is checked here.
        let command_queue_url = var("COMMAND_QUEUE_URL")
            .map(|raw| raw.trim().to_owned())
            .filter(|raw| !raw.is_empty())
            .and_then(|raw| match url::Url::parse(&raw) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Some(raw),
                _ => {
                    fail(
                        "COMMAND_QUEUE_URL",
                        format!("{raw:?} is not an http(s) queue URL"),
                    );
                    None
                }
            });

        let home_template = var("HOME_TEMPLATE")
            .filter(|s| !s.trim().is_empty())
            .and_then(|raw| {
                HomeTemplate::parse(
                    raw.trim(),
                    &["UserName"],
                    Some("UserName"),
                    TargetKind::User,
                    &roots,
                )
                .map_err(|e| fail("HOME_TEMPLATE", format!("{raw:?} {e}")))
                .ok()
            });

        let guardrails = Guardrails {
            servers,
            roots,
            roles,
        };

        let group_profiles = var("GROUP_PROFILES")
            .filter(|s| !s.trim().is_empty())
            .and_then(|raw| {
                GroupProfiles::parse(&raw, &guardrails)
                    .map_err(|e| fail("GROUP_PROFILES", e))
                    .ok()
            });

        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Self {
            guardrails,
            defaults: Defaults {
                server: default_server,
                home_template,
            },
            group_profiles,
            exempt,
            dry_run,
            check_home_folders,
            create_home_folders,
            sqs_concurrency,
            response_origins,
            command_queue_url,
            audit_concurrency,
            audit_max_rps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        (
            "ALLOWED_SERVER_IDS",
            "s-0123456789abcdef0, s-00000000000000000",
        ),
        ("HOME_ROOTS", "/acme-sftp/home,/acme-sftp/groups"),
    ];

    #[test]
    fn minimal_config() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.guardrails.servers.len(), 2);
        assert_eq!(c.guardrails.roots.len(), 2);
        assert!(c.guardrails.roles.is_none());
        assert!(!c.dry_run);
        assert_eq!(c.sqs_concurrency, DEFAULT_SQS_CONCURRENCY);
        assert_eq!(c.audit_concurrency, DEFAULT_AUDIT_CONCURRENCY);
        assert_eq!(c.audit_max_rps, None, "paced only by Transfer's throttling");
        assert!(
            c.response_origins.is_empty(),
            "only CloudFormation's own URLs"
        );
    }

    #[test]
    fn required_variables_are_named() {
        let e = config(&[]).unwrap_err();
        assert!(
            e.names("ALLOWED_SERVER_IDS") && e.names("HOME_ROOTS"),
            "{e}"
        );
        assert!(e.to_string().contains("ALLOWED_SERVER_IDS"));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases = [
            ("ALLOWED_SERVER_IDS", "s-123"),
            ("ALLOWED_SERVER_IDS", " , "),
            ("HOME_ROOTS", "relative/path"),
            ("HOME_ROOTS", "/"),
            ("HOME_ROOTS", "/a/../b"),
            ("ALLOWED_ROLE_ARNS", "arn:aws:iam::1:role/x"),
            ("DEFAULT_SERVER_ID", "s-11111111111111111"),
            ("DEFAULT_SERVER_ID", "nope"),
            ("DRY_RUN", "maybe"),
            ("EXEMPT_USERS", "admin,a b"),
            ("EXEMPT_USERS", "ok,x"),
            ("CREATE_HOME_FOLDERS", "yes"),
            ("COMMAND_QUEUE_URL", "not a url"),
            ("COMMAND_QUEUE_URL", "ftp://queue"),
            ("CHECK_HOME_FOLDERS", "1.0"),
            ("SQS_MAX_CONCURRENCY", "0"),
            ("AUDIT_CONCURRENCY", "0"),
            ("AUDIT_CONCURRENCY", "65"),
            ("AUDIT_MAX_RPS", "0"),
            ("AUDIT_MAX_RPS", "fast"),
            ("AUDIT_MAX_RPS", "NaN"),
            ("HOME_TEMPLATE", "/acme-sftp/home/shared"),
            ("HOME_TEMPLATE", "/elsewhere/${UserName}"),
            ("HOME_TEMPLATE", "/acme-sftp/home/${transfer:UserName}"),
            ("CFN_RESPONSE_ORIGINS", "127.0.0.1:9124"),
            ("CFN_RESPONSE_ORIGINS", "ftp://127.0.0.1:9124"),
            ("CFN_RESPONSE_ORIGINS", "http://127.0.0.1:9124/cfn-response"),
            ("CFN_RESPONSE_ORIGINS", "http://user:pw@127.0.0.1:9124"),
            ("CFN_RESPONSE_ORIGINS", "https://*.amazonaws.com"),
        ];
        for (var, value) in cases {
            let mut vars = BASE.to_vec();
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            let err = config(&vars).expect_err(&format!("{var}={value}"));
            assert!(err.names(var), "{var}={value}: {err}");
        }
    }

    #[test]
    fn optional_values() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("DEFAULT_SERVER_ID", "s-0123456789abcdef0"),
            ("DRY_RUN", "true"),
            ("HOME_TEMPLATE", "/acme-sftp/home/${UserName}"),
            (
                "ALLOWED_ROLE_ARNS",
                "arn:aws:iam::111122223333:role/sftp-user",
            ),
            ("AUDIT_CONCURRENCY", "16"),
            ("AUDIT_MAX_RPS", "250.5"),
        ]);
        let c = config(&vars).unwrap();
        assert_eq!(c.audit_concurrency, 16);
        assert_eq!(c.audit_max_rps, Some(250.5));
        assert!(c.dry_run);
        assert_eq!(c.defaults.server.unwrap().as_str(), "s-0123456789abcdef0");
        assert!(c.defaults.home_template.is_some());
        assert_eq!(c.guardrails.roles.unwrap().len(), 1);
    }

    #[test]
    fn response_origins_are_read_and_each_bad_one_is_named() {
        let mut vars = BASE.to_vec();
        vars.push((
            "CFN_RESPONSE_ORIGINS",
            "http://127.0.0.1:9124, https://localhost:8443",
        ));
        let c = config(&vars).unwrap();
        assert_eq!(
            c.response_origins
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["http://127.0.0.1:9124", "https://localhost:8443"]
        );

        let mut vars = BASE.to_vec();
        vars.push((
            "CFN_RESPONSE_ORIGINS",
            "http://127.0.0.1:9124,ftp://x,http://y:1/path",
        ));
        let err = config(&vars).unwrap_err();
        let named: Vec<&String> = err
            .0
            .iter()
            .filter(|(v, _)| *v == "CFN_RESPONSE_ORIGINS")
            .map(|(_, m)| m)
            .collect();
        assert_eq!(named.len(), 2, "{err}");
        assert!(
            named[0].starts_with("\"ftp://x\" must be http or https"),
            "{err}"
        );
        assert!(
            named[1].starts_with("\"http://y:1/path\" must be scheme://host:port"),
            "{err}"
        );
    }

    #[test]
    fn config_fails_cold_start_naming_group_profiles() {
        let vars = [
            ("ALLOWED_SERVER_IDS", "s-0123456789abcdef0"),
            ("HOME_ROOTS", "/acme-sftp/home"),
            (
                "GROUP_PROFILES",
                r#"{"Profiles":[{"Group":"a","Priority":1,"HomeDirectory":"/elsewhere/${UserName}"}]}"#,
            ),
        ];
        let err = Config::from_pairs(&vars).unwrap_err();
        assert!(err.names("GROUP_PROFILES"), "{err}");
        assert!(err.to_string().contains("Profiles[0] (a)"), "{err}");
    }
}
