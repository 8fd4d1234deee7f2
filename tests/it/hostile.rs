//! Hostile input, as property tests: arbitrary JSON and hostile strings in every field
//! of a direct command, and as whole events, through `App::dispatch` with the real
//! SDK and the stand-in. Whatever comes in: no panic, always a structured result, and
//! no Transfer call for invalid input. Then the domain validators against the service
//! model's own patterns (exported by the stand-in).
//!
//! The other sources (EventBridge, SQS, API Gateway, CloudFormation) get their hostile
//! cases in `tests/hostile_sources.rs`.

use crate::common::blocking::{Harness, run};
use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use transfer_chroot::Status;
use transfer_chroot::domain::{ExternalId, HomePath, RoleArn, ServerId, TargetKind, UserName};
use transfer_chroot::input::COMMAND_FIELDS;
use transfer_chroot::outcome::{ErrorCode, Outcome};
use transfer_standin::Recorded;

/// Dispatches `event` as Lambda would; returns the reply and what Transfer saw.
fn invoke(h: &Harness, event: Value) -> Result<(Value, Vec<Recorded>), TestCaseError> {
    let d = h.dispatch(event);
    let reply = d
        .reply
        .map_err(|e| TestCaseError::fail(format!("handler failed the invocation: {e}")))?;
    Ok((reply, d.requests))
}

fn outcome(reply: &Value) -> Result<Outcome, TestCaseError> {
    serde_json::from_value(reply.clone())
        .map_err(|e| TestCaseError::fail(format!("not a structured Outcome ({e}): {reply}")))
}

/// Failed with ValidationFailed/NotAllowed naming `field` (or a member of it), and no
/// Transfer call at all.
fn assert_refused(
    reply: &Value,
    requests: &[Recorded],
    field: &str,
) -> Result<Outcome, TestCaseError> {
    let out = outcome(reply)?;
    prop_assert_eq!(out.status, Status::Failed, "{}", reply);
    let err = out
        .error
        .as_ref()
        .ok_or_else(|| TestCaseError::fail(format!("Failed without an Error: {reply}")))?;
    prop_assert!(
        matches!(
            err.code,
            ErrorCode::ValidationFailed | ErrorCode::NotAllowed
        ),
        "{}",
        reply
    );
    prop_assert!(!err.message.is_empty());
    prop_assert!(
        err.fields.iter().any(|f| f.field == field
            || f.field.starts_with(&format!("{field}."))
            || f.field.starts_with(&format!("{field}["))),
        "{} not named in {}",
        field,
        reply
    );
    prop_assert!(
        requests.is_empty(),
        "Transfer was called for invalid input: {:?}",
        requests
    );
    Ok(out)
}

/// Any answer at all must be consistent: refusals call nothing, NotFound read once,
/// and anything sent was accepted by the service model (we never send what Transfer
/// would reject as invalid).
fn assert_consistent(reply: &Value, requests: &[Recorded]) -> Result<Outcome, TestCaseError> {
    let out = outcome(reply)?;
    let reads = requests
        .iter()
        .filter(|r| r.operation.starts_with("Describe"))
        .count();
    let writes = requests
        .iter()
        .filter(|r| r.operation.starts_with("Update"))
        .count();
    for r in requests {
        // NotFound is an answer about the data; these two are about what we sent.
        prop_assert!(
            !matches!(
                r.error.as_deref(),
                Some("InvalidRequestException" | "SerializationException")
            ),
            "the service model rejected what was sent: {:?}",
            r
        );
    }
    match (out.status, out.error_code()) {
        (Status::Failed, Some(ErrorCode::ValidationFailed | ErrorCode::NotAllowed)) => {
            prop_assert!(requests.is_empty(), "called for invalid input: {}", reply)
        }
        (Status::Failed, Some(ErrorCode::NotFound)) => {
            prop_assert_eq!((reads, writes), (1, 0), "{}", reply)
        }
        (Status::Failed, code) => {
            return Err(TestCaseError::fail(format!(
                "unexpected failure {code:?} with a healthy stand-in: {reply}"
            )));
        }
        (Status::Updated, _) => prop_assert_eq!((reads, writes), (1, 1), "{}", reply),
        (Status::Unchanged | Status::Planned, _) => {
            prop_assert_eq!((reads, writes), (1, 0), "{}", reply)
        }
        (Status::Skipped, _) => prop_assert!(requests.is_empty()),
        (Status::Queued, _) => {
            return Err(TestCaseError::fail(format!(
                "a direct command is never queued: {reply}"
            )));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- generators

/// Fragments that are never valid inside a chroot path, a user name, a SID or a server
/// id: traversal, encodings, separators, control characters, Unicode look-alikes.
const PATH_POISON: &[&str] = &[
    "/..",
    "/../..",
    "/./",
    "//",
    "%2e%2e",
    "%2F",
    "%00",
    "\\",
    "\\..\\",
    "\0",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\u{FF0E}\u{FF0E}", // fullwidth full stops
    "\u{2215}",         // division slash
    "\u{2044}",         // fraction slash
    "\u{FF0F}",         // fullwidth solidus
    "\u{2024}\u{2024}", // one dot leaders
    "\u{FE52}",         // small full stop
    "\u{202E}",         // right-to-left override
    "\u{200B}",         // zero width space
    "é",
    "ålice",
    "🙂",
    "?",
    "#",
    "$",
    ";",
    "\"",
    "<>",
    "|",
    ":",
];

/// Any of the poison fragments; each holds a character outside every identifier's set.
fn poison() -> impl Strategy<Value = String> {
    prop::sample::select(PATH_POISON).prop_map(str::to_owned)
}

/// Fragments that change a path's structure without a forbidden character; only
/// harmful at a segment boundary (`/a/..b` is a fine segment, `/a/../b` is not).
const STRUCTURE_POISON: &[&str] = &["/..", "/../..", "/.", "/./..", "/", "//"];

fn char_poisoned(base: &'static str) -> impl Strategy<Value = String> {
    let chars = prop::sample::select(
        PATH_POISON
            .iter()
            .copied()
            .filter(|p| !STRUCTURE_POISON.contains(p) && *p != "/./")
            .collect::<Vec<_>>(),
    );
    (chars, any::<usize>()).prop_map(move |(p, at)| insert(base, p, at))
}

/// `base` with a structural fragment inserted before one of its `/` or at its end.
fn structure_poisoned(base: &'static str) -> impl Strategy<Value = String> {
    let boundaries: Vec<usize> = base
        .match_indices('/')
        .map(|(i, _)| i)
        .skip(1)
        .chain([base.len()])
        .collect();
    (
        prop::sample::select(STRUCTURE_POISON),
        prop::sample::select(boundaries),
    )
        .prop_map(move |(p, at)| format!("{}{}{}", &base[..at], p, &base[at..]))
}

/// `base` with `fragment` inserted at a character boundary chosen by `at`.
fn insert(base: &str, fragment: &str, at: usize) -> String {
    let cut = base
        .char_indices()
        .map(|(i, _)| i)
        .chain([base.len()])
        .nth(at % (base.chars().count() + 1))
        .unwrap_or(base.len());
    format!("{}{}{}", &base[..cut], fragment, &base[cut..])
}

fn poisoned(base: &'static str) -> impl Strategy<Value = String> {
    (poison(), any::<usize>()).prop_map(move |(p, at)| insert(base, &p, at))
}

/// A JSON value of any shape, with this file's poison among its leaves.
fn any_json() -> impl Strategy<Value = Value> {
    crate::common::blocking::any_json(poison().boxed())
}

/// A JSON value that is not a string.
fn non_string_json() -> impl Strategy<Value = Value> {
    any_json().prop_filter("not a string", |v| !v.is_string())
}

fn user_base() -> Map<String, Value> {
    event("direct-update-user.json")
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn access_base() -> Map<String, Value> {
    event("direct-update-access.json")
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn with(mut base: Map<String, Value>, field: &str, value: Value) -> Value {
    base.insert(field.to_owned(), value);
    Value::Object(base)
}

/// Hostile values for each string field of a command, each invalid by construction.
fn hostile_string_field() -> impl Strategy<Value = (&'static str, bool, String)> {
    // (field, is_access, value)
    let over = |c: char, min: usize, max: usize| {
        (min..max).prop_map(move |n| std::iter::repeat_n(c, n).collect::<String>())
    };
    prop_oneof![
        poisoned("s-0123456789abcdef0").prop_map(|v| ("ServerId", false, v)),
        "s-[0-9A-F]{17}"
            .prop_filter("upper-case hex", |v| v
                .chars()
                .any(|c| c.is_ascii_uppercase()))
            .prop_map(|v| ("ServerId", false, v)),
        poisoned("alice")
            .prop_filter("needs a character outside the model", |v| !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_@.-".contains(c)))
            .prop_map(|v| ("UserName", false, v)),
        over('a', 101, 5000).prop_map(|v| ("UserName", false, v)),
        "[a-z]{0,2}".prop_map(|v| ("UserName", false, v)),
        poisoned("S-1-5-21-1004336348-1177238915-682003330-1105").prop_map(|v| (
            "ExternalId",
            true,
            v
        )),
        over('1', 253, 3000)
            .prop_map(|v| ("ExternalId", true, format!("S-1-{v}")))
            .prop_filter("over 256", |(_, _, v)| v.len() > 256),
        // A character no chroot path may hold, anywhere (independent of the validator:
        // every fragment here has one).
        char_poisoned("/acme-sftp/home/alice").prop_map(|v| ("HomeDirectory", false, v)),
        char_poisoned("/acme-sftp/groups/finance/${transfer:UserName}").prop_map(|v| (
            "HomeDirectory",
            true,
            v
        )),
        // Traversal and empty segments, at a segment boundary.
        structure_poisoned("/acme-sftp/home/alice").prop_map(|v| ("HomeDirectory", false, v)),
        structure_poisoned("/acme-sftp/groups/finance/${transfer:UserName}").prop_map(|v| (
            "HomeDirectory",
            true,
            v
        )),
        prop::sample::select(vec![
            "/acme-sftp/home",
            "/acme-sftp/home/",
            "/acme-sftp/home2/alice",
            "/acme-sftp",
            "/",
            "",
            "/etc/passwd",
            "acme-sftp/home/alice",
            "/acme-sftp/home/alice/",
            "/acme-sftp/home/${transfer:UserName}",
            "/acme-sftp/home/${UserName}",
            "/acme-sftp/home/%2e%2e/%2e%2e/etc",
            "/acme-sftp/home/\u{FF0E}\u{FF0E}\u{2215}etc",
            "/acme-sftp/home/..\\..\\etc",
        ])
        .prop_map(|v| ("HomeDirectory", false, v.to_owned())),
        over('a', 1020, 4000).prop_map(|v| (
            "HomeDirectory",
            false,
            format!("/acme-sftp/home/{v}")
        )),
        poisoned("arn:aws:iam::111122223333:role/sftp-user").prop_map(|v| ("Role", false, v)),
        over('r', 65, 3000).prop_map(|v| (
            "Role",
            false,
            format!("arn:aws:iam::111122223333:role/{v}")
        )),
        "[ -~]{0,40}"
            .prop_filter("not an action", |v| v != "UpdateUser"
                && v != "UpdateAccess")
            .prop_map(|v| ("Action", false, v)),
        "[ -~]{0,40}"
            .prop_filter("not a policy document", |v| {
                transfer_chroot::domain::SessionPolicy::parse(v).is_err()
            })
            .prop_map(|v| ("Policy", false, v)),
        over(' ', 2049, 4000).prop_map(|v| (
            "Policy",
            false,
            format!("{{\"Version\":\"2012-10-17\",\"Statement\":[]{v}}}")
        )),
        prop::sample::select(vec!["true", "false", "yes", "1", ""]).prop_map(|v| (
            "DryRun",
            false,
            v.to_owned()
        )),
    ]
}

// ---------------------------------------------------------------- properties

#[test]
fn hostile_strings_in_each_field_are_refused_without_any_call() {
    let h = Harness::new();
    run(256, hostile_string_field(), |(field, access, value)| {
        let base = if access { access_base() } else { user_base() };
        let (reply, requests) = invoke(&h, with(base, field, Value::String(value)))?;
        assert_refused(&reply, &requests, field).map(drop)
    });
}

#[test]
fn wrong_types_in_each_field_are_refused_without_any_call() {
    let fields = prop::sample::select(vec![
        ("Action", false),
        ("ServerId", false),
        ("UserName", false),
        ("ExternalId", true),
        ("HomeDirectory", false),
        ("HomeDirectory", true),
        ("Role", false),
        ("DryRun", false),
    ]);
    let h = Harness::new();
    run(
        192,
        (fields, non_string_json()),
        |((field, access), value)| {
            // DryRun's only valid values are the booleans.
            prop_assume!(!(field == "DryRun" && value.is_boolean()));
            let base = if access { access_base() } else { user_base() };
            let (reply, requests) = invoke(&h, with(base, field, value))?;
            assert_refused(&reply, &requests, field).map(drop)
        },
    );
}

#[test]
fn hostile_posix_profiles_are_refused_without_any_call() {
    let bad_id = prop_oneof![
        (i64::MIN..0).prop_map(Value::from),
        (4_294_967_296u64..=u64::MAX).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite, not whole", |f| f.is_finite() && f.fract() != 0.0)
            .prop_map(Value::from),
        "[0-9]{1,5}".prop_map(Value::String),
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(json!([1001])),
        Just(json!({"Uid": 1})),
    ];
    let profile = prop_oneof![
        bad_id.clone().prop_map(|u| json!({"Uid": u, "Gid": 1001})),
        bad_id.clone().prop_map(|g| json!({"Uid": 1001, "Gid": g})),
        (bad_id, 0usize..16).prop_map(|(g, at)| {
            let mut gids = vec![json!(5); at];
            gids.push(g);
            json!({"Uid": 1, "Gid": 1, "SecondaryGids": gids})
        }),
        (17usize..5000).prop_map(|n| json!({"Uid": 1, "Gid": 1, "SecondaryGids": vec![2001; n]})),
        any::<String>().prop_map(|k| json!({"Uid": 1, "Gid": 1, format!("X{k}"): 1})),
        Just(json!({"Gid": 1})),
        Just(json!({})),
        non_string_json().prop_filter("not an object", |v| !v.is_object()),
    ];
    let h = Harness::new();
    run(128, profile, |p| {
        let (reply, requests) = invoke(&h, with(user_base(), "PosixProfile", p))?;
        assert_refused(&reply, &requests, "PosixProfile").map(drop)
    });
}

#[test]
fn hostile_policies_are_refused_without_any_call() {
    let policy = prop_oneof![
        // Anything that is not a JSON object with a Statement.
        any_json().prop_filter("not a policy document", |v| !v
            .as_object()
            .is_some_and(|o| o.contains_key("Statement"))),
        any::<String>()
            .prop_filter("not a policy document", |s| {
                transfer_chroot::domain::SessionPolicy::parse(s).is_err()
            })
            .prop_map(Value::String),
        // Too big, as an object or as text.
        (2049usize..8000).prop_map(|n| json!({"Statement": [], "Pad": "x".repeat(n)})),
        (2049usize..8000).prop_map(|n| Value::String(format!(
            "{{\"Statement\":[],\"Pad\":\"{}\"}}",
            "x".repeat(n)
        ))),
    ];
    let h = Harness::new();
    run(128, policy, |p| {
        let (reply, requests) = invoke(&h, with(user_base(), "Policy", p))?;
        assert_refused(&reply, &requests, "Policy").map(drop)
    });
}

#[test]
fn chroot_fields_and_unknown_fields_are_refused_without_any_call() {
    let field = prop_oneof![
        Just("HomeDirectoryType".to_owned()),
        Just("HomeDirectoryMappings".to_owned()),
        any::<String>().prop_filter("unknown", |k| !COMMAND_FIELDS.contains(&k.as_str())),
    ];
    let h = Harness::new();
    run(128, (field, any_json()), |(field, value)| {
        let (reply, requests) = invoke(&h, with(user_base(), &field, value))?;
        let echoed = transfer_chroot::outcome::echo(&field);
        assert_refused(&reply, &requests, &echoed).map(drop)
    });
}

/// A field of a direct command and a value for it: half arbitrary JSON, half close to
/// valid (so that many cases reach Transfer, and the model judges what we send).
fn field_and_value() -> impl Strategy<Value = (&'static str, Value)> {
    let near = prop_oneof![
        prop::sample::select(vec!["UpdateUser", "UpdateAccess", "updateuser", "Update"])
            .prop_map(|v| ("Action", json!(v))),
        id_like("s-[0-9a-f]{17}").prop_map(|v| ("ServerId", json!(v))),
        prop::sample::select(vec!["s-0123456789abcdef0", "s-00000000000000000"])
            .prop_map(|v| ("ServerId", json!(v))),
        id_like("[A-Za-z0-9_@.\\-]{0,12}").prop_map(|v| ("UserName", json!(v))),
        prop::sample::select(vec!["alice", "bob", "carol", "dave@example.com"])
            .prop_map(|v| ("UserName", json!(v))),
        id_like("S-1-[0-9\\-]{1,40}").prop_map(|v| ("ExternalId", json!(v))),
        (
            prop::sample::select(vec!["/acme-sftp/home", "/acme-sftp/groups", "/elsewhere"]),
            well_formed_path()
        )
            .prop_map(|(root, p)| ("HomeDirectory", json!(format!("{root}{p}")))),
        prop::sample::select(vec![
            "arn:aws:iam::111122223333:role/sftp-user",
            "arn:aws:iam::111122223333:role/sftp-finance",
            "arn:aws:iam::111122223333:role/admin",
        ])
        .prop_map(|v| ("Role", json!(v))),
        any_json().prop_map(|s| ("Policy", json!({"Version": "2012-10-17", "Statement": [s]}))),
        (
            any::<u32>(),
            any::<i64>(),
            prop::collection::vec(any::<u32>(), 0..20)
        )
            .prop_map(|(u, g, sec)| (
                "PosixProfile",
                json!({"Uid": u, "Gid": g, "SecondaryGids": sec})
            )),
        any::<bool>().prop_map(|b| ("DryRun", json!(b))),
    ];
    let any_field = (prop::sample::select(COMMAND_FIELDS), any_json());
    prop_oneof![near, any_field]
}

#[test]
fn arbitrary_json_in_any_field_never_panics_and_never_sends_what_the_model_rejects() {
    // No oracle for validity here: any answer is fine as long as it is structured and
    // consistent with the calls made.
    let h = Harness::new();
    let tally = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    run(
        384,
        (any::<bool>(), field_and_value()),
        |(access, (field, value))| {
            let base = if access { access_base() } else { user_base() };
            let (reply, requests) = invoke(&h, with(base, field, value))?;
            let out = assert_consistent(&reply, &requests)?;
            let key = format!("{:?}/{:?}", out.status, out.error_code());
            *tally
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default() += 1;
            Ok(())
        },
    );
    // For docs/RELIABILITY.md (`cargo test --test hostile -- --nocapture`).
    eprintln!("arbitrary JSON per field, outcomes: {tally:?}");
}

#[test]
fn arbitrary_whole_events_get_a_structured_failure_and_no_call() {
    // Top-level values of any type, and objects with an Action among arbitrary keys:
    // never a valid command, whatever the router makes of them.
    let event = prop_oneof![
        any_json(),
        (
            any_json(),
            prop::collection::btree_map(any::<String>(), any_json(), 0..8)
        )
            .prop_map(|(action, rest)| {
                let mut m: Map<String, Value> = rest.into_iter().collect();
                m.insert("Action".into(), action);
                Value::Object(m)
            }),
    ];
    let h = Harness::new();
    run(256, event, |event| {
        let (reply, requests) = invoke(&h, event)?;
        let out = outcome(&reply)?;
        prop_assert_eq!(out.status, Status::Failed, "{}", reply);
        prop_assert!(out.error.is_some_and(|e| !e.message.is_empty()));
        prop_assert!(requests.is_empty(), "called: {:?}", requests);
        Ok(())
    });
}

/// Huge inputs, once each: they must be refused quickly, without a call, and the reply
/// must not grow with the input (identities are echoed truncated).
#[test]
fn huge_fields_and_bodies_are_refused_with_a_bounded_reply() {
    let h = Harness::new();
    let mib = "a".repeat(1 << 20);
    let cases = [
        ("UserName", with(user_base(), "UserName", json!(mib))),
        (
            "HomeDirectory",
            with(
                user_base(),
                "HomeDirectory",
                json!(format!("/acme-sftp/home/{mib}")),
            ),
        ),
        (
            "ExternalId",
            with(
                access_base(),
                "ExternalId",
                json!(format!("S-1-{}", "1".repeat(1 << 20))),
            ),
        ),
        (
            "PosixProfile",
            with(
                user_base(),
                "PosixProfile",
                json!({"Uid": 1, "Gid": 1, "SecondaryGids": vec![1; 100_000]}),
            ),
        ),
        (
            "Policy",
            with(user_base(), "Policy", json!({"Statement": [mib]})),
        ),
    ];
    for (field, event) in cases {
        let (reply, requests) = invoke(&h, event).expect("answers");
        assert_refused(&reply, &requests, field).unwrap_or_else(|e| panic!("{field}: {e}"));
        let size = reply.to_string().len();
        assert!(size < 8 * 1024, "{field}: reply of {size} bytes");
    }

    // Many unknown keys: the reply lists the first ones and counts the rest, so it
    // stays small (unbounded, it was twice the event: past Lambda's 6 MB reply limit).
    let mut event = user_base();
    for i in 0..10_000 {
        event.insert(format!("Unknown{i}-{}", "k".repeat(300)), json!(i));
    }
    let event = Value::Object(event);
    let input = event.to_string().len();
    let (reply, requests) = invoke(&h, event).expect("answers");
    assert!(requests.is_empty(), "no call for invalid input");
    let out = outcome(&reply).expect("an Outcome");
    assert_eq!(out.status, Status::Failed);
    let err = out.error.expect("error");
    assert_eq!(err.code, ErrorCode::ValidationFailed);
    assert!(err.fields[0].field.starts_with("Unknown0-k"));
    assert!(
        err.message.starts_with("10000 invalid fields"),
        "{}",
        err.message
    );
    assert!(err.message.ends_with("and 9950 more not listed"));
    assert_eq!(
        err.fields.len(),
        transfer_chroot::command::MAX_REPORTED_FIELDS
    );
    let size = reply.to_string().len();
    assert!(
        size < 64 * 1024,
        "reply {size} bytes for an event of {input}"
    );
    eprintln!("10 000 unknown keys: event {input} bytes, reply {size} bytes");
}

// ----------------------------------------------- validators vs the service model

/// Strings near and far from each identifier's shape.
fn id_like(shape: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => shape,
        1 => any::<String>(),
        1 => (shape, poison(), any::<usize>()).prop_map(|(s, p, at)| insert(&s, &p, at)),
    ]
}

#[test]
fn server_id_agrees_exactly_with_the_service_model() {
    run(512, id_like("s-[0-9a-fA-Fs-]{14,20}"), |s| {
        prop_assert_eq!(
            ServerId::parse(&s).is_ok(),
            transfer_standin::SERVER_ID.is_match(&s),
            "{:?}",
            s
        );
        Ok(())
    });
}

#[test]
fn user_name_agrees_exactly_with_the_service_model() {
    let shape = prop_oneof![
        id_like("[A-Za-z0-9_@.\\-]{0,8}"),
        id_like("[A-Za-z0-9_@.\\-]{95,105}"),
    ];
    run(512, shape, |s| {
        let n = s.chars().count();
        let model = transfer_standin::USER_NAME.is_match(&s) && (3..=100).contains(&n);
        prop_assert_eq!(UserName::parse(&s).is_ok(), model, "{:?}", s);
        Ok(())
    });
}

#[test]
fn external_id_agrees_exactly_with_the_service_model() {
    let shape = prop_oneof![
        id_like("S-1-[0-9\\-]{0,30}"),
        id_like("S-[0-9\\-]{0,6}"),
        "[0-9\\-]{250,256}".prop_map(|s| format!("S-1-{s}")),
    ];
    run(512, shape, |s| {
        let n = s.chars().count();
        let model = transfer_standin::EXTERNAL_ID.is_match(&s) && (1..=256).contains(&n);
        prop_assert_eq!(ExternalId::parse(&s).is_ok(), model, "{:?}", s);
        Ok(())
    });
}

/// Well-formed chroot paths: segments of the allowed characters, never `.` or `..`.
fn well_formed_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9\\-_.@+=,~!()'*]{1,24}", 1..8)
        .prop_filter("no dot segments", |segs| {
            segs.iter().all(|s| s != "." && s != "..")
        })
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

#[test]
fn home_paths_are_stricter_than_the_service_model() {
    let path = prop_oneof![
        2 => well_formed_path(),
        2 => (well_formed_path(), poison(), any::<usize>()).prop_map(|(s, p, at)| insert(&s, &p, at)),
        1 => well_formed_path().prop_map(|s| format!("{s}/${{transfer:UserName}}")),
        1 => any::<String>(),
        1 => "/[a-z/.]{1000,1030}",
    ];
    run(512, (path, any::<bool>()), |(p, access)| {
        let kind = if access {
            TargetKind::Access
        } else {
            TargetKind::User
        };
        if HomePath::parse(&p, kind).is_ok() {
            // What we accept, Transfer accepts: as HomeDirectory and as a mapping Target.
            let n = p.chars().count();
            prop_assert!(
                transfer_standin::HOME_DIRECTORY.is_match(&p) && n <= 1024,
                "{:?}",
                p
            );
            prop_assert!(transfer_standin::MAP_PATH.is_match(&p), "{:?}", p);
        }
        Ok(())
    });
    run(256, well_formed_path(), |p| {
        prop_assert!(
            HomePath::parse(&p, TargetKind::User).is_ok(),
            "well-formed {:?} refused",
            p
        );
        Ok(())
    });
}

#[test]
fn role_arns_are_stricter_than_the_service_model() {
    let well_formed = (
        prop::sample::select(vec!["aws", "aws-cn", "aws-us-gov"]),
        "[0-9]{12}",
        prop::collection::vec("[A-Za-z0-9+=,.@_\\-]{1,16}", 0..4),
        "[A-Za-z0-9+=,.@_\\-]{1,64}",
    )
        .prop_map(|(partition, account, path, name)| {
            let path: String = path.iter().map(|p| format!("{p}/")).collect();
            format!("arn:{partition}:iam::{account}:role/{path}{name}")
        });
    let any_role = prop_oneof![
        2 => well_formed.clone(),
        2 => (well_formed.clone(), poison(), any::<usize>()).prop_map(|(s, p, at)| insert(&s, &p, at)),
        1 => "arn:[ -~]{0,30}role/[ -~]{0,30}",
        1 => any::<String>(),
    ];
    run(512, any_role, |r| {
        if RoleArn::parse(&r).is_ok() {
            let n = r.chars().count();
            prop_assert!(
                transfer_standin::ROLE.is_match(&r) && (20..=2048).contains(&n),
                "{:?}",
                r
            );
        }
        Ok(())
    });
    run(256, well_formed, |r| {
        prop_assert!(RoleArn::parse(&r).is_ok(), "well-formed {:?} refused", r);
        Ok(())
    });
}
