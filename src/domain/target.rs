//! Who a request is about: a user or an access on one server, and the write that
//! chroots it. One type, one spelling (`s-…/users/alice`, `s-…/accesses/S-1-…`), used
//! by results, logs, SQS lanes, API routes and CloudFormation physical ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::home::TargetKind;
use super::ids::{ExternalId, ServerId, UserName};

/// The subject of a write: a service-managed user, or a directory group's access.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    User(UserName),
    Access(ExternalId),
}

impl Subject {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::User(_) => TargetKind::User,
            Self::Access(_) => TargetKind::Access,
        }
    }

    pub fn action(&self) -> Action {
        Action::for_kind(self.kind())
    }

    /// The user name or external id.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User(u) => u.as_str(),
            Self::Access(a) => a.as_str(),
        }
    }
}

/// The two writes this function makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    UpdateUser,
    UpdateAccess,
}

impl Action {
    pub const ALL: [Self; 2] = [Self::UpdateUser, Self::UpdateAccess];

    pub fn for_kind(kind: TargetKind) -> Self {
        match kind {
            TargetKind::User => Self::UpdateUser,
            TargetKind::Access => Self::UpdateAccess,
        }
    }

    pub fn kind(self) -> TargetKind {
        match self {
            Self::UpdateUser => TargetKind::User,
            Self::UpdateAccess => TargetKind::Access,
        }
    }

    /// The operation's name, as Transfer and the input call it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdateUser => "UpdateUser",
            Self::UpdateAccess => "UpdateAccess",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

impl TargetKind {
    /// The input field that names a subject of this kind.
    pub fn field(self) -> &'static str {
        match self {
            Self::User => "UserName",
            Self::Access => "ExternalId",
        }
    }

    /// The path segment of a [`Target`]'s label and of the API routes.
    pub fn collection(self) -> &'static str {
        match self {
            Self::User => "users",
            Self::Access => "accesses",
        }
    }
}

/// A user or an access on a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub server: ServerId,
    pub subject: Subject,
}

impl Target {
    pub fn new(server: ServerId, subject: Subject) -> Self {
        Self { server, subject }
    }

    pub fn kind(&self) -> TargetKind {
        self.subject.kind()
    }

    pub fn action(&self) -> Action {
        self.subject.action()
    }
}

/// `<ServerId>/users/<UserName>` or `<ServerId>/accesses/<ExternalId>`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.server,
            self.kind().collection(),
            self.subject.as_str()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetParseError {
    #[error("must be <ServerId>/users/<UserName> or <ServerId>/accesses/<ExternalId>")]
    Shape,
    #[error("ServerId {0}")]
    Server(#[from] super::ids::ServerIdViolation),
    #[error("UserName {0}")]
    User(#[from] super::ids::UserNameViolation),
    #[error("ExternalId {0}")]
    Access(#[from] super::ids::ExternalIdViolation),
}

impl FromStr for Target {
    type Err = TargetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, '/');
        let (Some(server), Some(collection), Some(name)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(TargetParseError::Shape);
        };
        let server = ServerId::parse(server)?;
        let subject = match collection {
            "users" => Subject::User(UserName::parse(name)?),
            "accesses" => Subject::Access(ExternalId::parse(name)?),
            _ => return Err(TargetParseError::Shape),
        };
        Ok(Self { server, subject })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_round_trip() {
        for label in [
            "s-0123456789abcdef0/users/alice",
            "s-0123456789abcdef0/accesses/S-1-5-21-1004336348-1177238915-682003330-1105",
        ] {
            let t: Target = label.parse().unwrap();
            assert_eq!(t.to_string(), label);
        }
        let t: Target = "s-0123456789abcdef0/users/alice".parse().unwrap();
        assert_eq!(t.action(), Action::UpdateUser);
        assert_eq!(t.kind().field(), "UserName");
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        for (bad, why) in [
            ("", TargetParseError::Shape),
            ("s-0123456789abcdef0", TargetParseError::Shape),
            ("s-0123456789abcdef0/users", TargetParseError::Shape),
            ("s-0123456789abcdef0/groups/alice", TargetParseError::Shape),
        ] {
            assert_eq!(bad.parse::<Target>(), Err(why), "{bad}");
        }
        assert!(matches!(
            "s-1/users/alice".parse::<Target>(),
            Err(TargetParseError::Server(_))
        ));
        assert!(matches!(
            "s-0123456789abcdef0/users/a/b".parse::<Target>(),
            Err(TargetParseError::User(_))
        ));
        assert!(matches!(
            "s-0123456789abcdef0/accesses/alice".parse::<Target>(),
            Err(TargetParseError::Access(_))
        ));
    }

    #[test]
    fn actions_have_one_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(Action::for_kind(a.kind()), a);
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(Action::parse("DeleteUser"), None);
    }

    proptest! {
        #[test]
        fn every_valid_user_label_round_trips(hex in "[0-9a-f]{17}", name in "[A-Za-z0-9_][A-Za-z0-9_@.-]{2,99}") {
            let label = format!("s-{hex}/users/{name}");
            let t: Target = label.parse().unwrap();
            prop_assert_eq!(t.to_string(), label);
        }
    }
}
