//! The stand-in's Identity Store as a client sees it on the wire: plain HTTP/1.1 over std
//! sockets (awsJson1.1, `X-Amz-Target: AWSIdentityStore.<Op>`, a SigV4-shaped
//! `Authorization` scoped to `identitystore`), no SDK. Each operation, pagination, the
//! model's errors, ids, membership changes, the request log and the collective rate
//! limit (`identitystore:*`), and seeding 100,000 users.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{Value, json};
mod common;

use common::{Api, Reply, start};
use transfer_standin::{Fault, FaultRule, StandIn};

const STORE: &str = "d-9067a1b2c3";
const SERVER: &str = "s-0123456789abcdef0";
const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/20250101/us-east-1/identitystore/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
const TRANSFER_SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/20250101/us-east-1/transfer/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
/// The model's `ResourceId`.
const RESOURCE_ID: &str = r"^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$";
const REQUEST_ID: &str =
    r"^[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$";

impl Reply {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{:?}", self.body);
        assert!(
            Regex::new(REQUEST_ID)
                .unwrap()
                .is_match(&self.headers["x-amzn-requestid"]),
            "{:?}",
            self.headers
        );
        &self.body
    }

    /// An Identity Store error: HTTP `status`, `__type`, `x-amzn-ErrorType`, a Message
    /// and the RequestId, in the body and the header.
    #[track_caller]
    fn error(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(
            (self.status, self.body["__type"].as_str().unwrap_or("")),
            (status, kind),
            "{:?}",
            self.body
        );
        assert_eq!(
            self.headers.get("x-amzn-errortype").map(String::as_str),
            Some(kind)
        );
        assert!(self.body["Message"].is_string(), "{:?}", self.body);
        assert_eq!(
            self.body["RequestId"].as_str(),
            Some(self.headers["x-amzn-requestid"].as_str())
        );
        &self.body
    }
}

fn seed() -> Value {
    json!({
        "Servers": [{"ServerId": SERVER, "Users": [
            {"UserName": "alice", "HomeDirectory": "/acme-sftp/home/alice"}]}],
        "Directory": {
            "IdentityStoreId": STORE,
            "Users": [
                {"UserName": "alice", "DisplayName": "Alice Example",
                 "Name": {"GivenName": "Alice", "FamilyName": "Example"},
                 "Emails": [{"Value": "alice@example.com", "Type": "work", "Primary": true}],
                 "ExternalIds": [{"Issuer": "okta", "Id": "00u1alice"}]},
                {"UserName": "bob"},
                {"UserName": "Carol"}
            ],
            "GenerateUsers": [{"Count": 250, "Prefix": "drift"}],
            "Groups": [
                {"DisplayName": "sftp-finance", "Description": "Finance",
                 "Members": ["alice"], "GenerateMembers": [{"Prefix": "drift", "Count": 150}]},
                {"DisplayName": "sftp-engineering", "Members": ["bob", "alice"]},
                {"DisplayName": "staff"}
            ]
        }
    })
}

impl Api {
    fn call_as(&self, auth: &str, operation: &str, input: Value) -> Reply {
        let target = format!("AWSIdentityStore.{operation}");
        let mut headers = vec![
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", target.as_str()),
        ];
        if !auth.is_empty() {
            headers.push(("Authorization", auth));
        }
        self.http("POST", "/", &headers, &input.to_string())
    }

    /// A signed call to the seeded store (`IdentityStoreId` added unless given).
    fn call(&self, operation: &str, mut input: Value) -> Reply {
        if input.get("IdentityStoreId").is_none() {
            input["IdentityStoreId"] = json!(STORE);
        }
        self.call_as(SIGNED, operation, input)
    }

    fn transfer(&self, operation: &str, input: Value) -> Reply {
        let target = format!("TransferService.{operation}");
        self.http(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", &target),
                ("Authorization", TRANSFER_SIGNED),
            ],
            &input.to_string(),
        )
    }

    fn get(&self, path: &str) -> Reply {
        self.http("GET", &format!("/_standin/{path}"), &[], "")
    }

    fn post(&self, path: &str, body: Value) -> Reply {
        self.http("POST", &format!("/_standin/{path}"), &[], &body.to_string())
    }

    fn user_id(&self, name: &str) -> String {
        let r = self.call(
            "GetUserId",
            json!({"AlternateIdentifier": {"UniqueAttribute": {
                "AttributePath": "UserName", "AttributeValue": name}}}),
        );
        r.ok()["UserId"].as_str().expect("UserId").to_owned()
    }

    fn group_id(&self, name: &str) -> String {
        let r = self.call(
            "GetGroupId",
            json!({"AlternateIdentifier": {"UniqueAttribute": {
                "AttributePath": "DisplayName", "AttributeValue": name}}}),
        );
        r.ok()["GroupId"].as_str().expect("GroupId").to_owned()
    }

    /// Every page of `operation`: the pages' items.
    fn pages(&self, operation: &str, items: &str, mut input: Value) -> Vec<Vec<Value>> {
        let limit = input["MaxResults"].as_u64().unwrap_or(100) as usize;
        let token_pattern = Regex::new("^[-a-zA-Z0-9+=/:_]*$").unwrap();
        let mut pages = Vec::new();
        loop {
            let r = self.call(operation, input.clone());
            let body = r.ok();
            let page = body[items].as_array().expect("items").clone();
            let next = body.get("NextToken").and_then(Value::as_str);
            match next {
                Some(t) => {
                    assert_eq!(page.len(), limit, "only the last page may be short");
                    assert!(
                        token_pattern.is_match(t),
                        "the model's NextToken pattern: {t}"
                    );
                    input["NextToken"] = json!(t);
                }
                None => assert!(page.len() <= limit),
            }
            pages.push(page);
            if next.is_none() {
                return pages;
            }
            assert!(pages.len() < 100_000, "runaway pagination");
        }
    }
}

fn is_resource_id(id: &str) -> bool {
    Regex::new(RESOURCE_ID).unwrap().is_match(id) && id.len() <= 47
}

#[test]
fn get_user_id_and_describe_user_by_each_identifier() {
    let api = start(&seed());
    let alice = api.user_id("alice");
    assert!(is_resource_id(&alice), "{alice}");
    assert!(
        alice.starts_with("9067a1b2c3-"),
        "the store's digits: {alice}"
    );
    // Each path the model allows, spelled as the docs do or as the function does.
    for (path, value) in [
        ("userName", "alice"),
        ("UserName", "alice"),
        ("emails.value", "alice@example.com"),
    ] {
        let r = api.call(
            "GetUserId",
            json!({"AlternateIdentifier": {"UniqueAttribute": {
                "AttributePath": path, "AttributeValue": value}}}),
        );
        assert_eq!(
            r.ok(),
            &json!({"UserId": alice, "IdentityStoreId": STORE}),
            "{path}"
        );
    }
    let r = api.call(
        "GetUserId",
        json!({"AlternateIdentifier": {"ExternalId": {"Issuer": "okta", "Id": "00u1alice"}}}),
    );
    assert_eq!(r.ok()["UserId"], json!(alice));
    // Values match as given: no user "ALICE" (moto matches so too).
    let r = api.call(
        "GetUserId",
        json!({"AlternateIdentifier": {"UniqueAttribute": {
            "AttributePath": "userName", "AttributeValue": "ALICE"}}}),
    );
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "USER"
    );
    // Not a unique attribute; a union with both members; nothing at all.
    for bad in [
        json!({"AlternateIdentifier": {"UniqueAttribute": {
            "AttributePath": "displayName", "AttributeValue": "Alice Example"}}}),
        json!({"AlternateIdentifier": {
            "UniqueAttribute": {"AttributePath": "userName", "AttributeValue": "alice"},
            "ExternalId": {"Issuer": "okta", "Id": "00u1alice"}}}),
        json!({}),
        json!({"AlternateIdentifier": {"UniqueAttribute": {
            "AttributePath": "user name!", "AttributeValue": "alice"}}}),
    ] {
        api.call("GetUserId", bad).error(400, "ValidationException");
    }

    let r = api.call("DescribeUser", json!({"UserId": alice}));
    let user = r.ok();
    assert_eq!(user["UserName"], "alice");
    assert_eq!(user["UserId"], json!(alice));
    assert_eq!(user["IdentityStoreId"], STORE);
    assert_eq!(user["DisplayName"], "Alice Example");
    assert_eq!(user["Emails"][0]["Value"], "alice@example.com");
    // A generated user: its name, its id, its store.
    let d = api.user_id("drift001");
    let r = api.call("DescribeUser", json!({"UserId": d}));
    assert_eq!(
        r.ok(),
        &json!({"UserName": "drift001", "UserId": d, "IdentityStoreId": STORE})
    );
    // Upper-case hex is the same id (the model allows it).
    let (p, rest) = d.split_at(11);
    let upper = format!("{p}{}", rest.to_uppercase());
    assert_eq!(
        api.call("DescribeUser", json!({"UserId": upper})).ok()["UserName"],
        "drift001"
    );
}

#[test]
fn unknown_and_malformed_ids_are_the_models_errors() {
    let api = start(&seed());
    let alice = api.user_id("alice");
    let finance = api.group_id("sftp-finance");
    // Well formed, not a user of this store: a group's id, a made-up UUID.
    for id in [
        finance.clone(),
        "9067a1b2c3-00000000-0000-4000-8000-000000000001".to_owned(),
        "00000000-0000-4000-8000-000000000001".to_owned(),
    ] {
        let r = api.call("DescribeUser", json!({"UserId": id}));
        let e = r.error(400, "ResourceNotFoundException");
        assert_eq!(
            (e["ResourceType"].as_str(), e["ResourceId"].as_str()),
            (Some("USER"), Some(id.as_str()))
        );
    }
    let r = api.call("ListGroupMemberships", json!({"GroupId": alice}));
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "GROUP"
    );
    // Not the model's ResourceId: refused before any look-up.
    for id in ["alice", "../users", "9067a1b2c3-*", "", &"a".repeat(48)] {
        api.call("DescribeUser", json!({"UserId": id}))
            .error(400, "ValidationException");
    }
    api.call("DescribeUser", json!({}))
        .error(400, "ValidationException");
    api.call("DescribeUser", json!({"UserId": 7}))
        .error(400, "ValidationException");
    // Another store: well formed (not found), malformed (validation), absent.
    let r = api.call(
        "DescribeUser",
        json!({"IdentityStoreId": "d-0000000000", "UserId": alice}),
    );
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "IDENTITY_STORE"
    );
    for store in [json!("d-9067A1B2C3"), json!("d-12345"), json!(""), json!(1)] {
        api.call("ListUsers", json!({"IdentityStoreId": store}))
            .error(400, "ValidationException");
    }
    api.call_as(SIGNED, "ListUsers", json!({}))
        .error(400, "ValidationException");
    // Not a JSON object; an operation the stand-in does not serve.
    let r = api.http(
        "POST",
        "/",
        &[
            ("X-Amz-Target", "AWSIdentityStore.ListUsers"),
            ("Authorization", SIGNED),
        ],
        "[]",
    );
    r.error(400, "SerializationException");
    api.call("DeleteUser", json!({"UserId": alice}))
        .error(400, "UnknownOperationException");
}

#[test]
fn requests_must_be_signed_for_identitystore() {
    let api = start(&seed());
    let r = api.call_as("", "ListUsers", json!({"IdentityStoreId": STORE}));
    r.error(403, "MissingAuthenticationTokenException");
    // Signed, but for Transfer.
    let r = api.call_as(
        TRANSFER_SIGNED,
        "ListUsers",
        json!({"IdentityStoreId": STORE}),
    );
    r.error(403, "InvalidSignatureException");
    let log = api.standin.requests();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|r| !r.signed && r.operation == "identitystore:ListUsers")
    );
    assert_eq!(
        log[0].error.as_deref(),
        Some("MissingAuthenticationTokenException")
    );
    assert_eq!(log[1].error.as_deref(), Some("InvalidSignatureException"));
    // And Transfer refuses a request signed for the Identity Store.
    let target = "TransferService.ListServers";
    let r = api.http(
        "POST",
        "/",
        &[("X-Amz-Target", target), ("Authorization", SIGNED)],
        "{}",
    );
    assert_eq!(r.status, 403);
}

#[test]
fn groups_by_name_listing_and_membership_checks() {
    let api = start(&seed());
    let finance = api.group_id("sftp-finance");
    let engineering = api.group_id("sftp-engineering");
    let staff = api.group_id("staff");
    assert!(is_resource_id(&finance));
    assert_eq!(
        api.call(
            "GetGroupId",
            json!({"AlternateIdentifier": {"UniqueAttribute": {
                "AttributePath": "displayName", "AttributeValue": "sftp-finance"}}})
        )
        .ok()["GroupId"],
        json!(finance)
    );
    // Another spelling is another name (the function lists groups for those).
    let r = api.call(
        "GetGroupId",
        json!({"AlternateIdentifier": {"UniqueAttribute": {
            "AttributePath": "DisplayName", "AttributeValue": "SFTP-Finance"}}}),
    );
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "GROUP"
    );
    api.call(
        "GetGroupId",
        json!({"AlternateIdentifier": {"UniqueAttribute": {
            "AttributePath": "userName", "AttributeValue": "sftp-finance"}}}),
    )
    .error(400, "ValidationException");

    let groups = api.call("ListGroups", json!({})).ok().clone();
    assert!(groups.get("NextToken").is_none());
    assert_eq!(
        groups["Groups"],
        json!([
            {"GroupId": finance, "DisplayName": "sftp-finance", "Description": "Finance",
             "IdentityStoreId": STORE},
            {"GroupId": engineering, "DisplayName": "sftp-engineering", "IdentityStoreId": STORE},
            {"GroupId": staff, "DisplayName": "staff", "IdentityStoreId": STORE}
        ])
    );
    let pages = api.pages("ListGroups", "Groups", json!({"MaxResults": 2}));
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let only = api.call(
        "ListGroups",
        json!({"Filters": [{"AttributePath": "DisplayName", "AttributeValue": "staff"}]}),
    );
    assert_eq!(only.ok()["Groups"][0]["GroupId"], json!(staff));

    let alice = api.user_id("alice");
    let bob = api.user_id("bob");
    let unknown_group = "9067a1b2c3-00000000-0000-4000-8000-000000000009";
    let r = api.call(
        "IsMemberInGroups",
        json!({"MemberId": {"UserId": alice},
               "GroupIds": [finance, engineering, staff, unknown_group]}),
    );
    assert_eq!(
        r.ok(),
        &json!({"Results": [
            {"GroupId": finance, "MemberId": {"UserId": alice}, "MembershipExists": true},
            {"GroupId": engineering, "MemberId": {"UserId": alice}, "MembershipExists": true},
            {"GroupId": staff, "MemberId": {"UserId": alice}, "MembershipExists": false},
            {"GroupId": unknown_group, "MemberId": {"UserId": alice}, "MembershipExists": false}
        ]})
    );
    let r = api.call(
        "IsMemberInGroups",
        json!({"MemberId": {"UserId": bob}, "GroupIds": [finance]}),
    );
    assert_eq!(r.ok()["Results"][0]["MembershipExists"], false);
    // 1 to 100 groups; a user that does not exist; ids checked first.
    let hundred: Vec<&str> = std::iter::repeat_n(finance.as_str(), 100).collect();
    let r = api.call(
        "IsMemberInGroups",
        json!({"MemberId": {"UserId": alice}, "GroupIds": hundred}),
    );
    assert_eq!(r.ok()["Results"].as_array().unwrap().len(), 100);
    let too_many: Vec<&str> = std::iter::repeat_n(finance.as_str(), 101).collect();
    for bad in [
        json!({"MemberId": {"UserId": alice}, "GroupIds": too_many}),
        json!({"MemberId": {"UserId": alice}, "GroupIds": []}),
        json!({"MemberId": {"UserId": alice}}),
        json!({"MemberId": {"UserId": alice}, "GroupIds": ["sftp-finance"]}),
        json!({"GroupIds": [finance]}),
    ] {
        api.call("IsMemberInGroups", bad)
            .error(400, "ValidationException");
    }
    let r = api.call(
        "IsMemberInGroups",
        json!({"MemberId": {"UserId": finance}, "GroupIds": [finance]}),
    );
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "USER"
    );
}

#[test]
fn listings_page_100_at_most_with_tokens_bound_to_their_listing() {
    let api = start(&seed());
    // 3 seeded + 250 generated users, in creation order.
    let pages = api.pages("ListUsers", "Users", json!({"MaxResults": 100}));
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 53]
    );
    let users: Vec<Value> = pages.into_iter().flatten().collect();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["UserName"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..4], ["alice", "bob", "Carol", "drift001"]);
    assert_eq!(names[252], "drift250");
    let ids: BTreeSet<&str> = users
        .iter()
        .map(|u| u["UserId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 253, "distinct ids");
    assert!(ids.iter().all(|id| is_resource_id(id)));
    assert!(users.iter().all(|u| u["IdentityStoreId"] == STORE));
    // Without MaxResults: 100 a page.
    let first = api.call("ListUsers", json!({})).ok().clone();
    assert_eq!(first["Users"].as_array().unwrap().len(), 100);
    let token = first["NextToken"].as_str().unwrap().to_owned();
    // Other sizes; the model's 1..100.
    let pages = api.pages("ListUsers", "Users", json!({"MaxResults": 7}));
    assert_eq!(pages.len(), 37);
    for bad in [json!(0), json!(101), json!(-1), json!("10"), json!(1.5)] {
        api.call("ListUsers", json!({"MaxResults": bad}))
            .error(400, "ValidationException");
    }
    // A token is for its listing only, and only this stand-in's.
    api.call("ListGroups", json!({"NextToken": token}))
        .error(400, "ValidationException");
    for bad in ["bm90IGEgdG9rZW4", "not a token!", ""] {
        api.call("ListUsers", json!({"NextToken": bad}))
            .error(400, "ValidationException");
    }
    let other = start(&seed());
    other
        .call("ListUsers", json!({"NextToken": token}))
        .error(400, "ValidationException");
    assert_eq!(
        api.call("ListUsers", json!({"NextToken": token})).ok()["Users"][0]["UserName"],
        names[100]
    );

    // A group's members: 1 named + 150 generated, in their users' order, each
    // membership with its id, its group and its member.
    let finance = api.group_id("sftp-finance");
    let engineering = api.group_id("sftp-engineering");
    let pages = api.pages(
        "ListGroupMemberships",
        "GroupMemberships",
        json!({"GroupId": finance, "MaxResults": 100}),
    );
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [100, 51]);
    let members: Vec<Value> = pages.into_iter().flatten().collect();
    let alice = api.user_id("alice");
    assert_eq!(members[0]["MemberId"], json!({"UserId": alice}));
    assert_eq!(members[0]["GroupId"], json!(finance));
    assert_eq!(members[0]["IdentityStoreId"], STORE);
    assert_eq!(
        members[1]["MemberId"]["UserId"],
        json!(api.user_id("drift001"))
    );
    assert_eq!(
        members[150]["MemberId"]["UserId"],
        json!(api.user_id("drift150"))
    );
    let membership_ids: BTreeSet<&str> = members
        .iter()
        .map(|m| m["MembershipId"].as_str().unwrap())
        .collect();
    assert_eq!(membership_ids.len(), 151);
    assert!(membership_ids.iter().all(|id| is_resource_id(id)));
    // A page's token names its group.
    let t = api
        .call(
            "ListGroupMemberships",
            json!({"GroupId": finance, "MaxResults": 1}),
        )
        .ok()["NextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        "ListGroupMemberships",
        json!({"GroupId": engineering, "NextToken": t}),
    )
    .error(400, "ValidationException");
    api.call("ListUsers", json!({"NextToken": t}))
        .error(400, "ValidationException");
    // A group of exactly one page: no token, no empty page after it.
    let r = api.call(
        "ListGroupMemberships",
        json!({"GroupId": engineering, "MaxResults": 2}),
    );
    assert!(r.ok().get("NextToken").is_none());
    assert_eq!(r.ok()["GroupMemberships"].as_array().unwrap().len(), 2);
    let staff = api.group_id("staff");
    let r = api.call("ListGroupMemberships", json!({"GroupId": staff}));
    assert_eq!(r.ok(), &json!({"GroupMemberships": []}));
}

#[test]
fn a_listing_stays_exact_while_members_come_and_go() {
    let api = start(&seed());
    let finance = api.group_id("sftp-finance");
    let first = api
        .call(
            "ListGroupMemberships",
            json!({"GroupId": finance, "MaxResults": 100}),
        )
        .ok()
        .clone();
    // Between pages: drift050 leaves (already listed), drift200 and bob join.
    assert_eq!(
        api.standin.remove_member("sftp-finance", "drift050"),
        Ok(true)
    );
    assert_eq!(api.standin.add_member("sftp-finance", "drift200"), Ok(true));
    assert_eq!(api.standin.add_member("sftp-finance", "bob"), Ok(true));
    let rest = api
        .call(
            "ListGroupMemberships",
            json!({"GroupId": finance, "NextToken": first["NextToken"]}),
        )
        .ok()
        .clone();
    let ids: Vec<&str> = first["GroupMemberships"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["GroupMemberships"].as_array().unwrap())
        .map(|m| m["MemberId"]["UserId"].as_str().unwrap())
        .collect();
    // bob was created before the drift users: his place was already passed.
    assert_eq!(ids.len(), 152);
    assert!(ids.contains(&api.user_id("drift200").as_str()));
    assert!(!ids.contains(&api.user_id("bob").as_str()));
    assert_eq!(api.standin.member_count("sftp-finance"), Some(152));
}

#[test]
fn membership_changes_through_the_api_and_the_stand_in() {
    let api = start(&seed());
    let r = api.call(
        "CreateUser",
        json!({"UserName": "dave", "DisplayName": "Dave",
               "Name": {"GivenName": "Dave", "FamilyName": "Example"}}),
    );
    let dave = r.ok()["UserId"].as_str().unwrap().to_owned();
    assert!(is_resource_id(&dave));
    assert_eq!(api.user_id("dave"), dave);
    assert_eq!(
        api.call("DescribeUser", json!({"UserId": dave})).ok()["Name"]["GivenName"],
        "Dave"
    );
    let r = api.call("CreateUser", json!({"UserName": "dave"}));
    assert_eq!(
        r.error(400, "ConflictException")["Reason"],
        "UNIQUENESS_CONSTRAINT_VIOLATION"
    );
    for bad in [
        json!({}),
        json!({"UserName": ""}),
        json!({"UserName": "a b"}),
        json!({"UserName": "Administrator"}),
    ] {
        api.call("CreateUser", bad)
            .error(400, "ValidationException");
    }
    let r = api.call(
        "CreateGroup",
        json!({"DisplayName": "sftp-partners", "Description": "P"}),
    );
    let partners = r.ok()["GroupId"].as_str().unwrap().to_owned();
    assert_eq!(api.group_id("sftp-partners"), partners);
    api.call("CreateGroup", json!({"DisplayName": "sftp-partners"}))
        .error(400, "ConflictException");

    let r = api.call(
        "CreateGroupMembership",
        json!({"GroupId": partners, "MemberId": {"UserId": dave}}),
    );
    let membership = r.ok()["MembershipId"].as_str().unwrap().to_owned();
    assert!(is_resource_id(&membership));
    assert_eq!(r.ok()["IdentityStoreId"], STORE);
    let listed = api.call("ListGroupMemberships", json!({"GroupId": partners}));
    assert_eq!(
        listed.ok()["GroupMemberships"],
        json!([{"IdentityStoreId": STORE, "MembershipId": membership, "GroupId": partners,
                "MemberId": {"UserId": dave}}])
    );
    api.call(
        "CreateGroupMembership",
        json!({"GroupId": partners, "MemberId": {"UserId": dave}}),
    )
    .error(400, "ConflictException");
    let r = api.call(
        "CreateGroupMembership",
        json!({"GroupId": dave, "MemberId": {"UserId": dave}}),
    );
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "GROUP"
    );
    assert_eq!(api.standin.is_member("sftp-partners", "dave"), Some(true));

    assert_eq!(
        api.call("DeleteGroupMembership", json!({"MembershipId": membership}))
            .ok(),
        &json!({})
    );
    let r = api.call("DeleteGroupMembership", json!({"MembershipId": membership}));
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "GROUP_MEMBERSHIP"
    );
    let check = |group: &str, user: &str| {
        api.call(
            "IsMemberInGroups",
            json!({"MemberId": {"UserId": user}, "GroupIds": [group]}),
        )
        .ok()["Results"][0]["MembershipExists"]
            .as_bool()
            .unwrap()
    };
    assert!(!check(&partners, &dave));
    // The Rust API and the control plane change the same state.
    assert_eq!(api.standin.add_member("sftp-partners", "dave"), Ok(true));
    assert_eq!(api.standin.add_member("sftp-partners", "dave"), Ok(false));
    assert!(check(&partners, &dave));
    assert_eq!(api.standin.remove_member("sftp-partners", "dave"), Ok(true));
    assert!(!check(&partners, &dave));
    assert!(api.standin.add_member("sftp-partners", "nobody").is_err());
    assert!(api.standin.add_member("no-such-group", "dave").is_err());
    let r = api.post(
        "directory/membership",
        json!({"Group": "sftp-partners", "UserName": "dave", "Member": true}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["Changed"], true);
    assert!(check(&partners, &dave));
    let r = api.post(
        "directory/membership",
        json!({"Group": "sftp-partners", "UserName": "nobody", "Member": true}),
    );
    assert_eq!(r.status, 400);
    let id = api.standin.add_directory_user("erin").unwrap();
    assert_eq!(api.standin.directory_user_id("erin"), Some(id));
    let g = api.standin.add_directory_group("sftp-auditors").unwrap();
    assert_eq!(api.standin.directory_group_id("sftp-auditors"), Some(g));
    assert!(api.standin.add_directory_user("erin").is_err());

    let summary = api.get("directory");
    assert_eq!(summary.status, 200);
    assert_eq!(summary.body["IdentityStoreId"], STORE);
    assert_eq!(summary.body["Users"], 3 + 250 + 2);
    assert_eq!(summary.body["Groups"][3]["DisplayName"], "sftp-partners");
    assert_eq!(summary.body["Groups"][3]["Members"], 1);
    assert_eq!(summary.body["Calls"]["CreateGroupMembership"], 3);
}

#[test]
fn ids_are_the_same_for_the_same_seed() {
    let a = start(&seed());
    let b = start(&seed());
    for name in ["alice", "drift001", "drift250"] {
        assert_eq!(a.user_id(name), b.user_id(name));
    }
    assert_eq!(a.group_id("staff"), b.group_id("staff"));
    assert_eq!(a.standin.identity_store_id().as_deref(), Some(STORE));
    // A UUID store: ids without the ten digits.
    let mut s = seed();
    s["Directory"]["IdentityStoreId"] = json!("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    let u = start(&s);
    let r = u.call_as(
        SIGNED,
        "GetUserId",
        json!({"IdentityStoreId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
               "AlternateIdentifier": {"UniqueAttribute": {
                   "AttributePath": "userName", "AttributeValue": "alice"}}}),
    );
    let id = r.ok()["UserId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert!(is_resource_id(&id));
}

#[test]
fn calls_are_logged_apart_from_transfers() {
    let api = start(&seed());
    api.call("ListUsers", json!({})).ok();
    api.call("ListUsers", json!({"MaxResults": 0}))
        .error(400, "ValidationException");
    api.user_id("alice");
    api.transfer("ListUsers", json!({"ServerId": SERVER}));
    let log = api.standin.requests();
    let ops: Vec<&str> = log.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "identitystore:ListUsers",
            "identitystore:ListUsers",
            "identitystore:GetUserId",
            "ListUsers"
        ]
    );
    assert!(log.iter().all(|r| r.signed));
    assert_eq!(log[1].error.as_deref(), Some("ValidationException"));
    assert_eq!(log[0].body["IdentityStoreId"], STORE);
    assert!(log.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    assert_eq!(api.standin.calls("ListUsers"), 1, "Transfer's only");
    assert_eq!(api.standin.calls("identitystore:ListUsers"), 2);
    assert_eq!(api.standin.directory_calls("ListUsers"), 2);
    assert_eq!(api.standin.directory_calls("identitystore:GetUserId"), 1);
    assert_eq!(api.standin.directory_calls("*"), 3);
    assert_eq!(api.standin.successful_calls("identitystore:ListUsers"), 1);
    // The Transfer peak is Transfer's.
    assert_eq!(api.standin.peak_concurrency(), 1);
}

#[test]
fn identitystore_star_limits_every_directory_operation_together() {
    let api = start(&seed());
    // 2 at once, then one every 2 s, across every operation of the Identity Store.
    let r = api.post(
        "rate-limits",
        json!([{"Operation": "identitystore:*", "RequestsPerSecond": 0.5, "Burst": 2},
               {"Operation": "*", "RequestsPerSecond": 0, "Burst": 0}]),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let alice = api.user_id("alice");
    api.call("ListGroups", json!({})).ok();
    let r = api.call("DescribeUser", json!({"UserId": alice}));
    let e = r.error(400, "ThrottlingException");
    assert_eq!(
        e["RetryAfterSeconds"],
        json!(2),
        "an integer, as the model has it"
    );
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("2"));
    // "*" is Transfer's: it throttles Transfer (burst 0), not the directory, and the
    // directory's bucket is not Transfer's.
    let t = api.transfer("ListServers", json!({}));
    assert_eq!(
        (t.status, t.body["__type"].as_str()),
        (429, Some("ThrottlingException"))
    );
    let log = api.standin.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.throttled)
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>(),
        ["identitystore:DescribeUser", "ListServers"]
    );
    std::thread::sleep(Duration::from_millis(2100));
    api.call("DescribeUser", json!({"UserId": alice})).ok();
    api.call("ListUsers", json!({}))
        .error(400, "ThrottlingException");
    // One operation's own limit, under the shared one.
    api.standin.clear_rate_limits();
    api.standin
        .set_rate_limit("identitystore:ListUsers", 0.0, 1);
    api.call("ListUsers", json!({})).ok();
    api.call("ListUsers", json!({}))
        .error(400, "ThrottlingException");
    api.call("ListGroups", json!({})).ok();
    assert_eq!(api.standin.directory_calls("ListUsers"), 3);
}

#[test]
fn the_collective_limit_holds_a_sustained_rate() {
    // 20 requests/s, burst 20: 60 requests sent as fast as possible pass 20 at once,
    // then about one every 50 ms; the rest are throttled.
    let api = start(&seed());
    api.standin.set_rate_limit("identitystore:*", 20.0, 20);
    let started = Instant::now();
    let mut ok = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        let r = api.call("ListGroups", json!({"MaxResults": 1}));
        if r.status == 200 {
            ok += 1;
        } else {
            r.error(400, "ThrottlingException");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 20.0 + 20.0 * elapsed;
    assert!(
        ok as f64 <= allowed + 1.0 && ok >= 30,
        "{ok} answered in {elapsed:.2} s at 20/s burst 20"
    );
}

#[test]
fn fault_rules_reach_the_directory_only_when_they_name_it() {
    let api = start(&seed());
    // A rule without an operation is Transfer's.
    api.standin.add_fault(FaultRule::new(Fault::Status(503), 1));
    api.call("ListUsers", json!({})).ok();
    assert_eq!(api.transfer("ListServers", json!({})).status, 503);
    // identitystore:* takes every directory operation; a name, that one.
    api.standin
        .add_fault(FaultRule::new(Fault::Throttle, 1).on("identitystore:*"));
    let r = api.call("ListGroups", json!({}));
    assert_eq!(
        r.error(400, "ThrottlingException")["RetryAfterSeconds"],
        json!(1)
    );
    api.standin
        .add_fault(FaultRule::new(Fault::Status(500), 1).on("identitystore:GetUserId"));
    api.call("ListGroups", json!({})).ok();
    let r = api.call(
        "GetUserId",
        json!({"AlternateIdentifier": {"UniqueAttribute": {
            "AttributePath": "userName", "AttributeValue": "alice"}}}),
    );
    r.error(500, "InternalServerException");
    // For one subject: the user named.
    let alice = api.user_id("alice");
    api.standin.add_fault(
        FaultRule::new(Fault::Status(403), 1)
            .on("identitystore:DescribeUser")
            .for_subject(&alice),
    );
    let bob = api.user_id("bob");
    api.call("DescribeUser", json!({"UserId": bob})).ok();
    api.call("DescribeUser", json!({"UserId": alice}))
        .error(403, "AccessDeniedException");
    let log = api.standin.requests();
    assert_eq!(
        log.iter()
            .filter(|r| !r.succeeded())
            .map(|r| r.operation.as_str())
            .collect::<Vec<_>>(),
        [
            "ListServers",
            "identitystore:ListGroups",
            "identitystore:GetUserId",
            "identitystore:DescribeUser"
        ]
    );
}

#[test]
fn a_directory_of_100000_users_seeds_fast_and_names_as_transfer_does() {
    const N: usize = 100_000;
    let seed = json!({
        "Servers": [{"ServerId": SERVER, "GenerateUsers": [
            {"Count": N / 2, "Prefix": "drift"},
            // A range of a larger fleet, padded as the whole fleet is.
            {"Count": 900, "Prefix": "chroot", "Start": 1, "Width": 5},
            {"Count": 29_100, "Prefix": "chroot", "Start": 901, "HomeDirectoryType": "LOGICAL"}]}],
        "Directory": {
            "IdentityStoreId": STORE,
            "GenerateUsers": [{"Count": N / 2, "Prefix": "drift"},
                              {"Count": 30_000, "Prefix": "chroot"},
                              {"Count": N - N / 2 - 30_000, "Prefix": "wrong"}],
            "Groups": [
                // Members named with their users' width (drift00001, not drift0001).
                {"DisplayName": "sftp-finance",
                 "GenerateMembers": [{"Prefix": "chroot", "Start": 10_001, "Count": 20_000}]},
                {"DisplayName": "sftp-engineering",
                 "GenerateMembers": [{"Prefix": "drift", "Count": 5_000},
                                     {"Prefix": "chroot", "Count": 5_000}]}]
        }
    });
    let t = Instant::now();
    let api = start(&seed);
    let started = t.elapsed();
    assert!(started < Duration::from_secs(20), "{started:?}");
    assert_eq!(api.standin.member_count("sftp-finance"), Some(20_000));
    assert_eq!(api.standin.member_count("sftp-engineering"), Some(10_000));
    assert_eq!(
        api.standin.is_member("sftp-engineering", "drift05000"),
        Some(true)
    );
    assert_eq!(
        api.standin.is_member("sftp-finance", "chroot10001"),
        Some(true)
    );
    assert_eq!(
        api.standin.is_member("sftp-finance", "chroot10000"),
        Some(false)
    );
    // Transfer's names are the directory's.
    assert!(api.standin.user(SERVER, "chroot00900").is_some());
    assert!(api.standin.user(SERVER, "chroot00901").is_some());
    assert_eq!(api.standin.user_count(SERVER), Some(80_000));
    let summary = api.get("directory");
    assert_eq!(summary.body["Users"], N);
    // The last page.
    let t = Instant::now();
    let pages = api.pages("ListUsers", "Users", json!({"MaxResults": 100}));
    assert_eq!(pages.len(), N / 100);
    assert_eq!(
        pages[N / 100 - 1][99]["UserName"],
        format!("wrong{:05}", N - N / 2 - 30_000)
    );
    eprintln!(
        "seeded in {started:?}; listed {N} users in {:?}",
        t.elapsed()
    );
    // A member that is no directory user is refused at start.
    let bad = json!({"Servers": [], "Directory": {"IdentityStoreId": STORE,
        "GenerateUsers": {"Count": 10, "Prefix": "u"},
        "Groups": [{"DisplayName": "g", "GenerateMembers": [{"Prefix": "u", "Count": 11}]}]}});
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt.block_on(StandIn::start(&bad)).err().expect("refused");
    assert!(e.to_string().contains("no user \"u11\""), "{e}");
}

#[test]
fn a_directory_seed_is_checked_at_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (directory, why) in [
        (json!({}), "IdentityStoreId is required"),
        (json!({"IdentityStoreId": "d-123"}), "IdentityStoreId"),
        (
            json!({"IdentityStoreId": STORE, "Users": [{"UserName": "a b"}]}),
            "does not satisfy",
        ),
        (
            json!({"IdentityStoreId": STORE, "Users": [{"UserName": "x"}, {"UserName": "x"}]}),
            "already exists",
        ),
        (
            json!({"IdentityStoreId": STORE, "Users": [{}]}),
            "needs a UserName",
        ),
        (
            json!({"IdentityStoreId": STORE, "Groups": [{"DisplayName": "g", "Members": ["nobody"]}]}),
            "no user",
        ),
        (
            json!({"IdentityStoreId": STORE, "Groups": [{"DisplayName": "g"}, {"DisplayName": "g"}]}),
            "already exists",
        ),
        (
            json!({"IdentityStoreId": STORE, "GenerateUsers": {"Count": 2, "Prefix": "a b"}}),
            "does not satisfy",
        ),
        (
            json!({"IdentityStoreId": STORE, "GenerateUsers": {"Count": 2, "Width": 0}}),
            "Width",
        ),
    ] {
        let seed = json!({"Servers": [], "Directory": directory});
        let e = rt
            .block_on(StandIn::start(&seed))
            .err()
            .unwrap_or_else(|| panic!("{directory} accepted"));
        assert!(e.to_string().contains(why), "{directory}: {e}");
    }
    // No Directory: every call finds no store.
    let api = start(&json!({"Servers": []}));
    let r = api.call("ListUsers", json!({}));
    assert_eq!(
        r.error(400, "ResourceNotFoundException")["ResourceType"],
        "IDENTITY_STORE"
    );
    assert_eq!(api.standin.identity_store_id(), None);
    assert!(api.standin.add_member("g", "u").is_err());
    assert_eq!(api.get("directory").status, 400);
}
