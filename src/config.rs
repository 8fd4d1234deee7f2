//! Configuration from the environment, validated once at cold start.
//!
//! A bad value fails the cold start with a message naming the variable, so a broken
//! deployment never serves a single event.

use crate::command::Defaults;
use std::collections::BTreeSet;

use std::time::Duration;

use crate::domain::guardrails::NO_ROOTS;
use crate::domain::home::TRANSFER_USER_NAME;
use crate::domain::{
    ChrootTarget, ExternalId, Guardrails, HomeRoot, HomeTemplate, IdentityStoreId, ResponseOrigins,
    RoleArn, ServerId, ServerTag, TargetKind, UserName,
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
    /// `SERVER_TAG`: the servers that may be touched are those carrying it (and listed
    /// in `ALLOWED_SERVER_IDS`, when that is set too); [`crate::scope`].
    pub server_tag: Option<ServerTag>,
    /// `SERVER_TAG_REFRESH_SECONDS` (default 300): how long the tagged servers, and their
    /// tags, are taken as read.
    pub server_tag_refresh: Duration,
    /// `SECURITY_HUB` (default false): the audit's findings go to AWS Security Hub.
    pub security_hub: bool,
    /// `REPORT_BUCKET`: where a completed audit run writes its HTML report and CSV
    /// (`transfer-chroot/audits/<run>/`), each invocation its part on the way.
    pub report_bucket: Option<String>,
    /// `IDENTITY_STORE_ID`: group membership is read from this Identity Store (IAM
    /// Identity Center) when a profile is applied; `None`: from the event itself.
    pub identity_store: Option<IdentityStoreId>,
    /// `IDENTITY_STORE_MAX_RPS` (default 20, IAM Identity Center's collective limit):
    /// the Identity Store requests a second this execution environment sends.
    pub identity_store_max_rps: f64,
    /// `SERVER_FACTS_TTL_SECONDS` (default 300; 0 reads every time): how long what
    /// `DescribeServer` said of a server (its identity provider, storage, directory
    /// listing optimisation) is taken as true.
    pub server_facts_ttl: Duration,
}

impl Config {
    /// Whether the home-folder check looks for `chroot`'s folder object in S3:
    /// `CHECK_HOME_FOLDERS`, a concrete target (a per-user `${transfer:UserName}` one
    /// names no single object), and below one of `HOME_ROOTS`. Those are the roots the
    /// deployment's S3 permissions are scoped to (template.yaml, docs/deploy.md); a
    /// server's `transfer-chroot:home-roots` tag may name others, where the function has
    /// no S3 permission and looking would only be refused.
    pub fn checks_folder_of(&self, chroot: &ChrootTarget) -> bool {
        self.check_home_folders
            && !chroot.as_str().contains(TRANSFER_USER_NAME)
            && chroot.is_below(&self.guardrails.roots)
    }
}

/// The server tag naming a server's own home roots (space-separated: tag values allow
/// `/` but not `,`), in place of `HOME_ROOTS` on that server.
pub const HOME_ROOTS_TAG: &str = "transfer-chroot:home-roots";

/// `SERVER_TAG_REFRESH_SECONDS`'s default.
pub const DEFAULT_SERVER_TAG_REFRESH: Duration = Duration::from_secs(300);

/// `SERVER_FACTS_TTL_SECONDS`'s default.
pub const DEFAULT_SERVER_FACTS_TTL: Duration = Duration::from_secs(300);

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

        let server_tag = var("SERVER_TAG")
            .filter(|raw| !raw.trim().is_empty())
            .and_then(|raw| match ServerTag::parse(&raw) {
                Ok(tag) => Some(tag),
                Err(e) => {
                    fail("SERVER_TAG", format!("{raw:?} {e}"));
                    None
                }
            });
        let tagged = var("SERVER_TAG").is_some_and(|raw| !raw.trim().is_empty());
        let server_tag_refresh = match var("SERVER_TAG_REFRESH_SECONDS") {
            None => DEFAULT_SERVER_TAG_REFRESH,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n <= 86_400 => Duration::from_secs(n),
                _ => {
                    fail(
                        "SERVER_TAG_REFRESH_SECONDS",
                        format!("must be 0 to 86400 seconds, got {raw:?}"),
                    );
                    DEFAULT_SERVER_TAG_REFRESH
                }
            },
        };

        // With SERVER_TAG, the list and the roots are optional: the tag decides which
        // servers, each server's own tag its roots.
        let mut servers = Vec::new();
        match var("ALLOWED_SERVER_IDS").filter(|raw| !tagged || !raw.trim().is_empty()) {
            None if tagged => {}
            None => fail(
                "ALLOWED_SERVER_IDS",
                "required (comma-separated server ids), unless SERVER_TAG is set".into(),
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
        match var("HOME_ROOTS").filter(|raw| !tagged || !raw.trim().is_empty()) {
            None if tagged => {}
            None => fail(
                "HOME_ROOTS",
                "required (comma-separated path prefixes), unless SERVER_TAG is set".into(),
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
                // With SERVER_TAG alone, whether it carries the tag is known per request.
                Ok(id) if servers.contains(&id) || (tagged && servers.is_empty()) => Some(id),
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
        let security_hub = flag("SECURITY_HUB", false);
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

        // An S3 bucket name: where a completed audit run writes its HTML report and CSV.
        let report_bucket = var("REPORT_BUCKET")
            .map(|raw| raw.trim().to_owned())
            .filter(|raw| !raw.is_empty())
            .and_then(|raw| match crate::domain::storage::bucket_name(&raw) {
                Ok(()) => Some(raw),
                Err(e) => {
                    fail(
                        "REPORT_BUCKET",
                        format!("{raw:?} is not a bucket name: it {e}"),
                    );
                    None
                }
            });

        let identity_store = var("IDENTITY_STORE_ID")
            .map(|raw| raw.trim().to_owned())
            .filter(|raw| !raw.is_empty())
            .and_then(|raw| match IdentityStoreId::parse(&raw) {
                Ok(id) => Some(id),
                Err(e) => {
                    fail("IDENTITY_STORE_ID", format!("{raw:?} {e}"));
                    None
                }
            });
        let identity_store_max_rps = match var("IDENTITY_STORE_MAX_RPS")
            .filter(|raw| !raw.trim().is_empty())
        {
            None => crate::directory::store::DEFAULT_MAX_RPS,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(r) if r.is_finite() && (0.1..=1000.0).contains(&r) => r,
                _ => {
                    fail(
                        "IDENTITY_STORE_MAX_RPS",
                        format!("must be a number of requests a second, 0.1 to 1000, got {raw:?}"),
                    );
                    crate::directory::store::DEFAULT_MAX_RPS
                }
            },
        };
        let server_facts_ttl =
            match var("SERVER_FACTS_TTL_SECONDS").filter(|raw| !raw.trim().is_empty()) {
                None => DEFAULT_SERVER_FACTS_TTL,
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(n) if n <= 86_400 => Duration::from_secs(n),
                    _ => {
                        fail(
                            "SERVER_FACTS_TTL_SECONDS",
                            format!("must be a whole number of seconds, 0 to 86400, got {raw:?}"),
                        );
                        DEFAULT_SERVER_FACTS_TTL
                    }
                },
            };

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

        let unrooted = roots.is_empty().then(|| {
            format!("{NO_ROOTS} (it has no {HOME_ROOTS_TAG} tag, and HOME_ROOTS is not set)")
        });
        let guardrails = Guardrails {
            servers,
            roots,
            roles,
            unrooted,
        };

        let group_profiles = var("GROUP_PROFILES")
            .filter(|s| !s.trim().is_empty())
            .and_then(|raw| {
                GroupProfiles::parse(&raw, &guardrails)
                    .map_err(|e| fail("GROUP_PROFILES", e))
                    .ok()
            });

        if identity_store.is_some()
            && group_profiles.is_none()
            && var("GROUP_PROFILES").is_none_or(|g| g.trim().is_empty())
        {
            errors.push((
                "GROUP_PROFILES",
                "required with IDENTITY_STORE_ID: the directory says which groups a user is in, the profiles what each group gives".into(),
            ));
        }
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
            server_tag,
            server_tag_refresh,
            security_hub,
            report_bucket,
            identity_store,
            identity_store_max_rps,
            server_facts_ttl,
        })
    }

    /// Why `server` is refused by `ALLOWED_SERVER_IDS` (required without `SERVER_TAG`,
    /// optional with it): `None` when it is listed, or when no list is set beside a tag.
    pub fn unlisted(&self, server: &ServerId) -> Option<String> {
        let listed = &self.guardrails.servers;
        let required = self.server_tag.is_none() || !listed.is_empty();
        (required && !listed.contains(server))
            .then(|| format!("{server} is not in ALLOWED_SERVER_IDS"))
    }

    /// This configuration as it holds on `server`, a server carrying `SERVER_TAG` with
    /// `tags`: that server alone, and its `transfer-chroot:home-roots` tag's roots in
    /// place of `HOME_ROOTS` when it has the tag. The derived home there is
    /// `HOME_TEMPLATE` when it renders inside those roots, else `<first root>/<UserName>`.
    pub fn on_server(&self, server: &ServerId, tags: &[(String, String)]) -> Self {
        let mut on = self.clone();
        on.guardrails.servers = vec![server.clone()];
        let Some((_, raw)) = tags.iter().find(|(k, _)| k == HOME_ROOTS_TAG) else {
            return on;
        };
        let parsed: Result<Vec<HomeRoot>, String> = raw
            .split_whitespace()
            .map(|r| HomeRoot::parse(r).map_err(|e| format!("{r:?} {e}")))
            .collect();
        let (roots, unrooted) = match parsed {
            Ok(roots) if !roots.is_empty() => (roots, None),
            Ok(_) => (
                Vec::new(),
                Some(format!("{NO_ROOTS} (its {HOME_ROOTS_TAG} tag is empty)")),
            ),
            Err(why) => (
                Vec::new(),
                Some(format!(
                    "{NO_ROOTS} (its {HOME_ROOTS_TAG} tag holds {why}; roots are space-separated)"
                )),
            ),
        };
        let user_home = |raw: &str| {
            HomeTemplate::parse(
                raw,
                &["UserName"],
                Some("UserName"),
                TargetKind::User,
                &roots,
            )
            .ok()
        };
        on.defaults.home_template = match &self.defaults.home_template {
            Some(t) if !roots.is_empty() && user_home(t.as_str()).is_some() => Some(t.clone()),
            _ => roots
                .first()
                .and_then(|r| user_home(&format!("{}/${{UserName}}", r.as_str()))),
        };
        on.guardrails.roots = roots;
        on.guardrails.unrooted = unrooted;
        on
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

    #[test]
    fn with_server_tag_the_list_and_the_roots_are_optional() {
        let c = config(&[("SERVER_TAG", "transfer-chroot=enforce")]).unwrap();
        assert_eq!(
            c.server_tag.as_ref().unwrap().to_string(),
            "transfer-chroot=enforce"
        );
        assert!(c.guardrails.servers.is_empty() && c.guardrails.roots.is_empty());
        assert_eq!(c.server_tag_refresh, DEFAULT_SERVER_TAG_REFRESH);
        let e = config(&[]).unwrap_err();
        assert!(
            e.names("ALLOWED_SERVER_IDS") && e.names("HOME_ROOTS"),
            "{e}"
        );
        let e = config(&[
            ("SERVER_TAG", "=x"),
            ("SERVER_TAG_REFRESH_SECONDS", "soon"),
            ("SECURITY_HUB", "yes"),
            ("REPORT_BUCKET", "Not_A_Bucket"),
        ])
        .unwrap_err();
        for v in ["SERVER_TAG", "SERVER_TAG_REFRESH_SECONDS", "SECURITY_HUB"] {
            assert!(e.names(v), "{v}: {e}");
        }
        // A default server with the tag alone: whether it is tagged is known per request.
        let c = config(&[
            ("SERVER_TAG", "k"),
            ("DEFAULT_SERVER_ID", "s-0123456789abcdef0"),
            ("HOME_TEMPLATE", "/anywhere/${UserName}"),
        ])
        .unwrap();
        assert!(c.defaults.server.is_some() && c.defaults.home_template.is_some());
    }

    #[test]
    fn a_servers_roots_tag_replaces_home_roots_and_decides_the_derived_home() {
        let server = ServerId::parse("s-0123456789abcdef0").unwrap();
        let tags = |v: &str| vec![(HOME_ROOTS_TAG.to_owned(), v.to_owned())];
        let base = config(&[
            ("SERVER_TAG", "k"),
            ("HOME_ROOTS", "/acme-sftp/home"),
            ("HOME_TEMPLATE", "/acme-sftp/home/${UserName}"),
        ])
        .unwrap();
        // No roots tag: HOME_ROOTS and HOME_TEMPLATE as configured.
        let on = base.on_server(&server, &[]);
        assert_eq!(on.guardrails.servers, std::slice::from_ref(&server));
        assert_eq!(on.guardrails.roots[0].as_str(), "/acme-sftp/home");
        assert_eq!(on.defaults.home_template, base.defaults.home_template);
        // The template renders outside the tag's roots: the first root's home instead.
        let on = base.on_server(&server, &tags("/other-bucket/users /other-bucket/x"));
        let roots: Vec<&str> = on.guardrails.roots.iter().map(|r| r.as_str()).collect();
        assert_eq!(roots, ["/other-bucket/users", "/other-bucket/x"]);
        assert_eq!(
            on.defaults.home_template.as_ref().unwrap().as_str(),
            "/other-bucket/users/${UserName}"
        );
        // Inside them: kept.
        let on = base.on_server(&server, &tags("/acme-sftp/home"));
        assert_eq!(on.defaults.home_template, base.defaults.home_template);
        // Empty or invalid: no roots at all, and why.
        for (raw, says) in [("  ", "is empty"), ("/ok/a ../etc", "../etc")] {
            let on = base.on_server(&server, &tags(raw));
            assert!(on.guardrails.roots.is_empty(), "{raw}");
            assert!(on.defaults.home_template.is_none(), "{raw}");
            let why = on.guardrails.no_roots().unwrap();
            assert!(
                why.starts_with("no home roots for this server") && why.contains(says),
                "{why}"
            );
        }
    }

    #[test]
    fn the_folder_check_looks_only_below_home_roots_where_s3_is_granted() {
        use crate::domain::{ChrootTarget, HomePath};
        let target = |raw: &str, root: &str| {
            ChrootTarget::admit(
                HomePath::parse(raw, TargetKind::Access).unwrap(),
                &[HomeRoot::parse(root).unwrap()],
            )
            .unwrap()
        };
        let c = config(&[("SERVER_TAG", "k"), ("HOME_ROOTS", "/acme-sftp/home")]).unwrap();
        assert!(c.checks_folder_of(&target("/acme-sftp/home/alice", "/acme-sftp/home")));
        // A server's own roots (its tag): no S3 permission there.
        assert!(!c.checks_folder_of(&target("/other-bucket/users/alice", "/other-bucket/users")));
        // A per-user target names no single folder.
        assert!(!c.checks_folder_of(&target(
            "/acme-sftp/home/${transfer:UserName}",
            "/acme-sftp/home"
        )));
        let off = config(&[
            ("SERVER_TAG", "k"),
            ("HOME_ROOTS", "/acme-sftp/home"),
            ("CHECK_HOME_FOLDERS", "false"),
        ])
        .unwrap();
        assert!(!off.checks_folder_of(&target("/acme-sftp/home/alice", "/acme-sftp/home")));
    }
}
