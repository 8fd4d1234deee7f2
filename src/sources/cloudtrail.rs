//! Drift corrected as it happens: Transfer Family API calls recorded by CloudTrail,
//! delivered by EventBridge (`"detail-type": "AWS API Call via CloudTrail"`,
//! `"source": "aws.transfer"`; management events reach the default bus without a
//! trail of one's own).
//!
//! For `CreateUser`, `UpdateUser`, `CreateAccess` and `UpdateAccess`, the one target
//! named in `detail.requestParameters` (`serverId`, `userName` / `externalId`, camelCase
//! as CloudTrail writes them) is read and classified as the fleet audit does
//! ([`crate::drift`]); a drifted one is chrooted at once, with nothing else changed.
//! A failed call (`detail.errorCode`) and any other eventName are `Skipped` with no AWS
//! call. The function's own updates come back as events too and end `Unchanged` (one
//! Describe, no write): no loop, and nothing is skipped by who the caller was, which a
//! caller could imitate.

use serde_json::{Map, Value};

use crate::apply::Chroot;
use crate::domain::{
    Action, ExternalId, ServerId, Subject, Target, TargetKind, UserName, Violations,
};
use crate::drift;
use crate::input::Fields;
use crate::outcome::{Identity, Outcome, Rejection, echo};
use crate::transfer::Transfer;

pub const API_CALL: &str = "AWS API Call via CloudTrail";
pub const SOURCE: &str = "aws.transfer";

/// The calls that set a home; each names its target in `requestParameters`.
pub const EVENT_NAMES: [&str; 4] = ["CreateUser", "UpdateUser", "CreateAccess", "UpdateAccess"];

fn kind_of(event_name: &str) -> Option<TargetKind> {
    match event_name {
        "CreateUser" | "UpdateUser" => Some(TargetKind::User),
        "CreateAccess" | "UpdateAccess" => Some(TargetKind::Access),
        _ => None,
    }
}

/// A server changed: read again at once (its identity provider may have switched).
pub const UPDATE_SERVER: &str = "UpdateServer";

/// `UpdateServer` of a covered server: what `DescribeServer` says now is what every
/// command meets from here on (not what was kept for up to `SERVER_FACTS_TTL_SECONDS`),
/// and a switch to a custom identity provider is a HIGH finding at once; a switch back
/// archives it. The result names the provider after the change.
async fn server_changed<T: Transfer>(chroot: &Chroot<T>, f: &Fields<'_>) -> Outcome {
    if let Some(code) = f.value("errorCode") {
        let code = code.as_str().map_or_else(|| code.to_string(), echo);
        return Outcome::skipped(
            Identity::default(),
            format!("the UpdateServer call failed ({code}): it changed nothing"),
        );
    }
    let raw = f
        .value("requestParameters")
        .and_then(Value::as_object)
        .and_then(|p| p.get("serverId"))
        .and_then(Value::as_str);
    let server = match raw.map(ServerId::parse) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return Outcome::rejected(Rejection::invalid(
                Identity::default(),
                vec![crate::domain::FieldError::new(
                    "requestParameters.serverId",
                    e,
                )],
            ));
        }
        None => {
            return Outcome::rejected(Rejection::invalid(
                Identity::default(),
                vec![crate::domain::FieldError::new(
                    "requestParameters.serverId",
                    "required",
                )],
            ));
        }
    };
    let identity = Identity {
        server_id: Some(server.to_string()),
        ..Identity::default()
    };
    match chroot.scope(&server).await {
        Ok(crate::scope::Scope::Allowed(_)) => {}
        Ok(crate::scope::Scope::Refused(why)) => {
            return Outcome::skipped(identity, format!("{why}: left as it is"));
        }
        Err(e) => {
            let mut o = Outcome::failed(identity, (&e).into());
            o.request_id = e.request_id.clone();
            return o;
        }
    }
    let before = chroot.env.servers.known(&server);
    let after = match chroot
        .env
        .servers
        .read_again(&chroot.ports.transfer, &server)
        .await
    {
        Ok(facts) => facts,
        Err(e) => {
            let mut o = Outcome::failed(identity, (&e).into());
            o.request_id = e.request_id.clone();
            return o;
        }
    };
    let finding = crate::servers::chroots_no_one(&after);
    let was_custom = before
        .as_ref()
        .is_some_and(|b| crate::servers::chroots_no_one(b).is_some());
    match &finding {
        Some(reason) => chroot.server_finding(&server, &after, reason, true).await,
        None if was_custom => {
            chroot
                .server_finding(
                    &server,
                    &after,
                    "back on a provider whose users are chrooted",
                    false,
                )
                .await
        }
        None => {}
    }
    let provider = after.identity_provider.as_str().to_owned();
    let previous = before.map(|b| b.identity_provider.as_str().to_owned());
    let mut outcome = Outcome::new(crate::outcome::Status::Unchanged, identity);
    outcome.reason = Some(match (&previous, &finding) {
        (Some(p), _) if *p != provider => {
            format!("server read again: its identity provider is now {provider} (was {p})")
        }
        _ => format!("server read again: its identity provider is {provider}"),
    });
    outcome.server = Some(crate::outcome::ServerNote {
        server_id: server.to_string(),
        identity_provider_type: provider,
        previous_identity_provider_type: previous,
        finding,
    });
    outcome
}

/// One CloudTrail record (`detail`) to one outcome. `source` is the event's.
pub async fn run<T: Transfer>(
    chroot: &Chroot<T>,
    source: Option<&str>,
    detail: &Map<String, Value>,
) -> Outcome {
    let f = Fields::new(detail, false);
    let name = f
        .value("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name == UPDATE_SERVER && source == Some(SOURCE) {
        return server_changed(chroot, &f).await;
    }
    let Some(kind) = kind_of(name) else {
        return Outcome::skipped(
            Identity::default(),
            format!(
                "eventName {:?} does not set a home (only {} do)",
                echo(name),
                EVENT_NAMES.join(", ")
            ),
        );
    };
    if source != Some(SOURCE) {
        return Outcome::skipped(
            Identity::default(),
            format!(
                "source {:?} is not {SOURCE}: not a Transfer Family API call",
                echo(source.unwrap_or_default())
            ),
        );
    }
    let params = f
        .value("requestParameters")
        .and_then(Value::as_object)
        .map(|p| Fields::new(p, false));
    let identity = identity(params.as_ref(), kind);
    if let Some(code) = f.value("errorCode") {
        let code = code.as_str().map_or_else(|| code.to_string(), echo);
        return Outcome::skipped(
            identity,
            format!("the {name} call failed ({code}): it changed nothing"),
        );
    }
    let target = match read_target(params.as_ref(), kind) {
        Ok(target) => target,
        Err(errs) => return Outcome::rejected(Rejection::invalid(identity, errs.into_vec())),
    };
    let identity = Identity::of(&target);
    // Not covered (ALLOWED_SERVER_IDS, SERVER_TAG): left alone, and no read of it.
    if let Some(why) = chroot.config.unlisted(&target.server) {
        return Outcome::skipped(identity, format!("{why}: left as it is"));
    }
    if drift::is_exempt(&target, &chroot.config) {
        return Outcome::skipped(identity, "exempt (EXEMPT_USERS): left as it is");
    }
    // A reconcile: the record says something changed, the live state says what is
    // true now (a record older than the state it describes is read as the state).
    let outcome = crate::reconcile::reconcile(chroot, &target, false)
        .await
        .outcome;
    chroot
        .resolved(&target, &outcome, crate::reconcile::BY_A_RECONCILE, None)
        .await;
    outcome
}

/// The target `requestParameters` names, every bad field listed
/// (`requestParameters.serverId`, ...).
fn read_target(params: Option<&Fields<'_>>, kind: TargetKind) -> Result<Target, Violations> {
    let mut errs = Violations::default();
    let Some(p) = params else {
        errs.push(
            "requestParameters",
            "required: the call's parameters (an object)",
        );
        return Err(errs);
    };
    let server = match p.string("serverId") {
        None => {
            errs.push("requestParameters.serverId", "required");
            None
        }
        Some(given) => errs.check(
            "requestParameters.serverId",
            given.and_then(|s| ServerId::parse(&s).map_err(|e| e.to_string())),
        ),
    };
    let (key, path) = match kind {
        TargetKind::User => ("userName", "requestParameters.userName"),
        TargetKind::Access => ("externalId", "requestParameters.externalId"),
    };
    let subject = match p.string(key) {
        None => {
            errs.push(path, "required");
            None
        }
        Some(given) => errs.check(
            path,
            given.and_then(|s| match kind {
                TargetKind::User => UserName::parse(&s)
                    .map(Subject::User)
                    .map_err(|e| e.to_string()),
                TargetKind::Access => ExternalId::parse(&s)
                    .map(Subject::Access)
                    .map_err(|e| e.to_string()),
            }),
        ),
    };
    match (server, subject) {
        (Some(server), Some(subject)) if errs.is_empty() => Ok(Target::new(server, subject)),
        _ => Err(errs),
    }
}

fn identity(params: Option<&Fields<'_>>, kind: TargetKind) -> Identity {
    let text = |k: &str| {
        params
            .and_then(|p| p.value(k))
            .and_then(Value::as_str)
            .map(echo)
    };
    Identity {
        action: Some(Action::for_kind(kind)),
        server_id: text("serverId"),
        user_name: (kind == TargetKind::User)
            .then(|| text("userName"))
            .flatten(),
        external_id: (kind == TargetKind::Access)
            .then(|| text("externalId"))
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::outcome::Status;
    use crate::transfer::memory::MemoryTransfer;
    use crate::transfer::{
        HomeDirectoryType, IdentityProvider, LiveHome, Mapping, ServerFacts, StorageDomain,
    };
    use serde_json::json;

    const SERVER: &str = "s-0123456789abcdef0";

    fn chroot() -> Chroot<MemoryTransfer> {
        let config = Config::from_pairs(&[
            (
                "ALLOWED_SERVER_IDS",
                "s-0123456789abcdef0,s-0123456789abcdef1",
            ),
            ("HOME_ROOTS", "/acme-sftp/home,/acme-sftp/groups"),
            ("HOME_TEMPLATE", "/acme-sftp/home/${UserName}"),
            ("EXEMPT_USERS", "admin"),
        ])
        .unwrap();
        let user = |name: &str| -> Target { format!("{SERVER}/users/{name}").parse().unwrap() };
        let path = |home: &str| LiveHome {
            home_directory: Some(home.into()),
            home_directory_type: Some(HomeDirectoryType::Path),
            ..LiveHome::default()
        };
        let transfer = MemoryTransfer::new()
            .with(user("alice"), path("/acme-sftp/home/alice"))
            .with(user("carol"), path("/acme-sftp"))
            .with(user("admin"), path("/acme-sftp"))
            .with(
                user("bob"),
                LiveHome {
                    home_directory: Some("/".into()),
                    home_directory_type: Some(HomeDirectoryType::Logical),
                    home_directory_mappings: vec![Mapping::directory("/", "/acme-sftp/home/bob")],
                    ..LiveHome::default()
                },
            )
            .with(
                "s-0123456789abcdef1/accesses/S-1-5-21-1".parse().unwrap(),
                path("/acme-sftp/groups/finance"),
            )
            .with_server(
                ServerId::parse("s-0123456789abcdef1").unwrap(),
                ServerFacts {
                    identity_provider: IdentityProvider::AwsDirectoryService,
                    domain: StorageDomain::S3,
                    directory_listing_optimization: true,
                    tags: Vec::new(),
                },
            );
        Chroot::new(config, transfer)
    }

    fn detail(name: &str, params: Value) -> Map<String, Value> {
        json!({"eventSource": "transfer.amazonaws.com", "eventName": name,
               "requestParameters": params, "responseElements": null})
        .as_object()
        .unwrap()
        .clone()
    }

    async fn run_on(c: &Chroot<MemoryTransfer>, name: &str, params: Value) -> Outcome {
        run(c, Some(SOURCE), &detail(name, params)).await
    }

    fn ops(c: &Chroot<MemoryTransfer>) -> Vec<&'static str> {
        c.ports
            .transfer
            .calls()
            .iter()
            .map(|c| c.operation)
            .collect()
    }

    #[tokio::test]
    async fn a_drifted_user_is_chrooted_and_the_echo_of_that_write_is_unchanged() {
        let c = chroot();
        let o = run_on(
            &c,
            "UpdateUser",
            json!({"serverId": SERVER, "userName": "alice"}),
        )
        .await;
        assert_eq!(o.status, Status::Updated, "{o:?}");
        assert_eq!(
            o.request.as_ref().unwrap()["HomeDirectoryMappings"][0]["Target"],
            "/acme-sftp/home/alice"
        );
        assert_eq!(ops(&c), ["DescribeUser", "UpdateUser"]);
        // The function's own UpdateUser comes back as an event: one Describe, no write.
        let o = run_on(
            &c,
            "UpdateUser",
            json!({"serverId": SERVER, "userName": "alice"}),
        )
        .await;
        assert_eq!(o.status, Status::Unchanged);
        assert_eq!(ops(&c), ["DescribeUser", "UpdateUser", "DescribeUser"]);
    }

    #[tokio::test]
    async fn create_and_access_calls_and_an_already_chrooted_user() {
        let c = chroot();
        let o = run_on(
            &c,
            "CreateUser",
            json!({"serverId": SERVER, "userName": "bob"}),
        )
        .await;
        assert_eq!(o.status, Status::Unchanged);
        let o = run_on(
            &c,
            "UpdateAccess",
            json!({"serverId": "s-0123456789abcdef1", "externalId": "S-1-5-21-1"}),
        )
        .await;
        assert_eq!(o.status, Status::Updated, "{o:?}");
        assert_eq!(o.identity.external_id.as_deref(), Some("S-1-5-21-1"));
    }

    #[tokio::test]
    async fn skipped_without_any_call() {
        let c = chroot();
        let failed = run(
            &c,
            Some(SOURCE),
            &json!({"eventName": "UpdateUser", "errorCode": "AccessDenied",
                    "requestParameters": {"serverId": SERVER, "userName": "alice"}})
            .as_object()
            .unwrap()
            .clone(),
        )
        .await;
        for (o, why) in [
            (failed, "AccessDenied"),
            (
                run_on(
                    &c,
                    "DeleteUser",
                    json!({"serverId": SERVER, "userName": "alice"}),
                )
                .await,
                "DeleteUser",
            ),
            (
                run_on(
                    &c,
                    "UpdateUser",
                    json!({"serverId": "s-11111111111111111", "userName": "alice"}),
                )
                .await,
                "ALLOWED_SERVER_IDS",
            ),
            (
                run_on(
                    &c,
                    "UpdateUser",
                    json!({"serverId": SERVER, "userName": "admin"}),
                )
                .await,
                "exempt",
            ),
            (
                run(
                    &c,
                    Some("acme.directory"),
                    &detail(
                        "UpdateUser",
                        json!({"serverId": SERVER, "userName": "alice"}),
                    ),
                )
                .await,
                "aws.transfer",
            ),
        ] {
            assert_eq!(o.status, Status::Skipped, "{o:?}");
            assert!(o.reason.as_deref().unwrap().contains(why), "{o:?}");
        }
        assert!(c.ports.transfer.calls().is_empty());
        assert!(c.ports.transfer.server_calls().is_empty());
    }

    #[tokio::test]
    async fn needs_attention_is_skipped_after_one_describe() {
        let c = chroot();
        let o = run_on(
            &c,
            "UpdateUser",
            json!({"serverId": SERVER, "userName": "carol"}),
        )
        .await;
        assert_eq!(o.status, Status::Skipped);
        assert!(o.reason.unwrap().starts_with("needs attention"));
        assert_eq!(ops(&c), ["DescribeUser"]);
    }

    #[tokio::test]
    async fn bad_parameters_are_listed_and_a_missing_user_is_not_found() {
        let c = chroot();
        let o = run_on(
            &c,
            "UpdateUser",
            json!({"serverId": "s-1", "userName": "é"}),
        )
        .await;
        let fields: Vec<String> = o
            .error
            .unwrap()
            .fields
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(
            fields,
            ["requestParameters.serverId", "requestParameters.userName"]
        );
        let o = run(
            &c,
            Some(SOURCE),
            &json!({"eventName": "CreateAccess"})
                .as_object()
                .unwrap()
                .clone(),
        )
        .await;
        assert_eq!(o.error.unwrap().fields[0].field, "requestParameters");
        assert!(c.ports.transfer.calls().is_empty());
        let o = run_on(
            &c,
            "UpdateUser",
            json!({"serverId": SERVER, "userName": "nobody"}),
        )
        .await;
        assert_eq!(o.error_code(), Some(crate::outcome::ErrorCode::NotFound));
    }
}
