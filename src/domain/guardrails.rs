//! What requests may touch: servers, home roots and roles (`ALLOWED_SERVER_IDS`,
//! `HOME_ROOTS`, `ALLOWED_ROLE_ARNS`). Checked on valid values only, after every field
//! parsed; every refusal is listed.

use super::field::{FieldError, Violations};
use super::home::{ChrootTarget, HomePath, HomeRoot};
use super::ids::ServerId;
use super::role::RoleArn;

#[derive(Debug, Clone)]
pub struct Guardrails {
    pub servers: Vec<ServerId>,
    pub roots: Vec<HomeRoot>,
    /// `None`: `ALLOWED_ROLE_ARNS` unset, so requests may not set a role at all.
    pub roles: Option<Vec<RoleArn>>,
    /// Why `roots` is empty (a server with neither `HOME_ROOTS` nor a valid
    /// `transfer-chroot:home-roots` tag): nothing there can be chrooted.
    pub unrooted: Option<String>,
}

/// The reason when a server has no home roots at all.
pub const NO_ROOTS: &str = "no home roots for this server";

impl Guardrails {
    pub fn allows_server(&self, server: &ServerId) -> bool {
        self.servers.contains(server)
    }

    /// Why nothing can be chrooted here, when there are no roots.
    pub fn no_roots(&self) -> Option<String> {
        self.roots
            .is_empty()
            .then(|| self.unrooted.clone().unwrap_or_else(|| NO_ROOTS.to_owned()))
    }

    pub fn allows_role(&self, role: &RoleArn) -> bool {
        self.roles.as_ref().is_some_and(|r| r.contains(role))
    }

    /// Why `role` is refused, or `None` when it is allowed.
    pub fn refuses_role(&self, role: &RoleArn) -> Option<String> {
        match &self.roles {
            _ if self.allows_role(role) => None,
            None => Some(
                "setting a role is not allowed (ALLOWED_ROLE_ARNS is not configured)".to_owned(),
            ),
            Some(_) => Some(format!("{role} is not in ALLOWED_ROLE_ARNS")),
        }
    }

    /// Admits a write: the server is allowed, the home lies strictly below a root (it
    /// becomes the [`ChrootTarget`]), the role, if any, is allowed. Every refusal is
    /// listed, under the input's field names.
    pub fn admit(
        &self,
        server: &ServerId,
        home: HomePath,
        role: Option<&RoleArn>,
    ) -> Result<ChrootTarget, Vec<FieldError>> {
        let mut refused = Violations::default();
        if !self.allows_server(server) {
            refused.push("ServerId", format!("{server} is not in ALLOWED_SERVER_IDS"));
        }
        let target = match self.no_roots() {
            Some(why) => {
                refused.push("HomeDirectory", why);
                None
            }
            None => refused.check("HomeDirectory", ChrootTarget::admit(home, &self.roots)),
        };
        if let Some(why) = role.and_then(|r| self.refuses_role(r)) {
            refused.push("Role", why);
        }
        match target {
            Some(target) if refused.is_empty() => Ok(target),
            _ => Err(refused.into_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TargetKind;

    fn guardrails(roles: Option<Vec<RoleArn>>) -> Guardrails {
        Guardrails {
            servers: vec![ServerId::parse("s-0123456789abcdef0").unwrap()],
            roots: vec![HomeRoot::parse("/b/home").unwrap()],
            unrooted: None,
            roles,
        }
    }

    fn fields(r: Result<ChrootTarget, Vec<FieldError>>) -> Vec<String> {
        r.expect_err("refused")
            .into_iter()
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn admits_an_allowed_write_and_lists_every_refusal() {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/sftp").unwrap();
        let g = guardrails(Some(vec![role.clone()]));
        let ok = ServerId::parse("s-0123456789abcdef0").unwrap();
        let home = |p: &str| HomePath::parse(p, TargetKind::User).unwrap();
        let t = g.admit(&ok, home("/b/home/alice"), Some(&role)).unwrap();
        assert_eq!(t.as_str(), "/b/home/alice");

        let other = ServerId::parse("s-11111111111111111").unwrap();
        let admin = RoleArn::parse("arn:aws:iam::111122223333:role/admin").unwrap();
        assert_eq!(
            fields(g.admit(&other, home("/b/home"), Some(&admin))),
            ["ServerId", "HomeDirectory", "Role"]
        );
        assert_eq!(
            fields(g.admit(&ok, home("/b/home2/alice"), None)),
            ["HomeDirectory"]
        );
        assert!(
            guardrails(None)
                .refuses_role(&role)
                .unwrap()
                .contains("not configured")
        );
    }
}
