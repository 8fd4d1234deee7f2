//! Fast unit tests of every source against [`MemoryTransfer`]: no network, no stand-in.
//! Each source's envelope goes in, its own reply format comes out, and the fake says
//! exactly which Transfer calls were made (the SDK path is `tests/it/`'s).
//!
//! The configuration is a small copy of `demo/config.env` whose group profiles also set
//! a Role and a POSIX profile, and the fake holds a few of `demo/seed.json`'s users and
//! accesses.

mod apigw;
mod cloudformation;
mod direct;
mod directory;
mod eventbridge;
mod sqs;

use std::time::Duration;

use serde_json::Value;

use crate::apply::Chroot;
use crate::config::Config;
use crate::domain::{ServerId, Target};
use crate::invocation::Invocation;
use crate::transfer::memory::MemoryTransfer;
use crate::transfer::{
    HomeDirectoryType, IdentityProvider, LiveHome, LivePosix, Mapping, ServerFacts,
};

/// A service-managed server: where users live.
pub const SERVER: &str = "s-0123456789abcdef0";
/// An `AWS_DIRECTORY_SERVICE` server: where directory groups' accesses live.
pub const DIRECTORY_SERVER: &str = "s-00000000000000000";
/// A well-formed server id that is not in `ALLOWED_SERVER_IDS`.
pub const FOREIGN_SERVER: &str = "s-00000000000000001";
pub const FINANCE_SID: &str = "S-1-5-21-1004336348-1177238915-682003330-1105";
pub const USER_ROLE: &str = "arn:aws:iam::111122223333:role/sftp-user";
pub const FINANCE_ROLE: &str = "arn:aws:iam::111122223333:role/sftp-finance";

/// The finance profile (priority 20) sets a Role and a POSIX profile; engineering
/// (priority 10) only a home; `Default` the usual home.
pub const GROUP_PROFILES: &str = r#"{"Profiles": [
    {"Group": "sftp-finance", "Priority": 20,
     "HomeDirectory": "/acme-sftp/groups/finance/${UserName}",
     "Role": "arn:aws:iam::111122223333:role/sftp-finance",
     "PosixProfile": {"Uid": 2001, "Gid": 2001, "SecondaryGids": [3001]}},
    {"Group": "sftp-engineering", "Priority": 10,
     "HomeDirectory": "/acme-sftp/groups/engineering/${UserName}"}],
  "Default": {"HomeDirectory": "/acme-sftp/home/${UserName}"}}"#;

const BASE: &[(&str, &str)] = &[
    (
        "ALLOWED_SERVER_IDS",
        "s-0123456789abcdef0,s-00000000000000000",
    ),
    ("HOME_ROOTS", "/acme-sftp/home,/acme-sftp/groups"),
    ("HOME_TEMPLATE", "/acme-sftp/home/${UserName}"),
    (
        "ALLOWED_ROLE_ARNS",
        "arn:aws:iam::111122223333:role/sftp-user,arn:aws:iam::111122223333:role/sftp-finance",
    ),
    ("DEFAULT_SERVER_ID", SERVER),
    ("GROUP_PROFILES", GROUP_PROFILES),
];

/// The base configuration with `overrides` applied; `""` removes a variable.
pub fn config(overrides: &[(&'static str, &'static str)]) -> Config {
    let mut vars: Vec<(&str, &str)> = BASE
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    vars.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
    Config::from_pairs(&vars).expect("test configuration is valid")
}

/// `s-…/users/alice` or `s-…/accesses/S-1-…`.
pub fn target(label: &str) -> Target {
    label.parse().expect("a valid target label")
}

pub fn user(name: &str) -> Target {
    target(&format!("{SERVER}/users/{name}"))
}

pub fn access(external_id: &str) -> Target {
    target(&format!("{DIRECTORY_SERVER}/accesses/{external_id}"))
}

/// A home as Transfer reports one that is not chrooted (`PATH`).
pub fn path_home(dir: &str) -> LiveHome {
    LiveHome {
        home_directory: Some(dir.to_owned()),
        home_directory_type: Some(HomeDirectoryType::Path),
        role: Some(USER_ROLE.to_owned()),
        ..LiveHome::default()
    }
}

/// A home chrooted to `dir`, exactly as the function writes it.
pub fn chrooted(dir: &str) -> LiveHome {
    LiveHome {
        home_directory: Some("/".to_owned()),
        home_directory_type: Some(HomeDirectoryType::Logical),
        home_directory_mappings: vec![Mapping::directory("/", dir)],
        role: Some(USER_ROLE.to_owned()),
        ..LiveHome::default()
    }
}

/// Part of the demo seed: alice, carol and the finance access are not chrooted, bob is.
/// The access is on the directory server (every other server is service-managed S3).
pub fn seed() -> MemoryTransfer {
    let directory = ServerFacts {
        identity_provider: IdentityProvider::AwsDirectoryService,
        ..crate::transfer::memory::default_server()
    };
    MemoryTransfer::new()
        .with_server(ServerId::parse(DIRECTORY_SERVER).unwrap(), directory)
        .with(user("alice"), path_home("/acme-sftp/home/alice"))
        .with(user("bob"), chrooted("/acme-sftp/home/bob"))
        .with(user("carol"), path_home("/acme-sftp"))
        .with(access(FINANCE_SID), path_home("/acme-sftp/groups/finance"))
}

/// The function's dependencies over the seeded fake, with `overrides` on the base
/// configuration.
pub fn chroot_with(overrides: &[(&'static str, &'static str)]) -> Chroot<MemoryTransfer> {
    Chroot::new(config(overrides), seed())
}

pub fn chroot() -> Chroot<MemoryTransfer> {
    chroot_with(&[])
}

pub fn invocation() -> Invocation {
    Invocation::with_budget(Duration::from_secs(30))
}

/// Every Transfer call made, as `(operation, target label)`, in order.
pub fn calls(c: &Chroot<MemoryTransfer>) -> Vec<(&'static str, String)> {
    c.ports
        .transfer
        .calls()
        .into_iter()
        .map(|call| (call.operation, call.target.to_string()))
        .collect()
}

/// The operations made on `target`, in order.
pub fn calls_on(c: &Chroot<MemoryTransfer>, target: &Target) -> Vec<&'static str> {
    c.ports
        .transfer
        .calls()
        .into_iter()
        .filter(|call| call.target == *target)
        .map(|call| call.operation)
        .collect()
}

/// The single `/` mapping's target as Transfer now holds it, when chrooted.
pub fn chroot_dir(c: &Chroot<MemoryTransfer>, t: &Target) -> Option<String> {
    let live = c.ports.transfer.get(t)?;
    crate::plan::chroot_target(&live).map(str::to_owned)
}

/// `Error.Fields[].Field` of a JSON result.
pub fn error_fields(result: &Value) -> Vec<String> {
    result["Error"]["Fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| f["Field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `Changes[].Field` of a JSON result.
pub fn change_fields(result: &Value) -> Vec<String> {
    result["Changes"]
        .as_array()
        .map(|changes| {
            changes
                .iter()
                .map(|c| c["Field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The POSIX profile Transfer now holds for `t`.
pub fn posix(c: &Chroot<MemoryTransfer>, t: &Target) -> Option<LivePosix> {
    c.ports.transfer.get(t)?.posix_profile
}
