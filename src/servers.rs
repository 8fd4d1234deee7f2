//! The servers the function writes to: what kind each is (`DescribeServer`, kept
//! `SERVER_FACTS_TTL_SECONDS`) and whether a command fits it.
//!
//! Users exist only on `SERVICE_MANAGED` servers and accesses only on
//! `AWS_DIRECTORY_SERVICE` servers (AWS Transfer Family API reference, `CreateUser`,
//! `CreateAccess`); on `API_GATEWAY` / `AWS_LAMBDA` servers the identity provider
//! returns the home itself at login. A command of the wrong kind would reach Transfer
//! and come back as a confusing `ResourceNotFoundException`: it is refused here, on
//! `ServerId`, naming the server's identity provider. The target's first segment must
//! be the server's kind of storage: a bucket on S3, a file system id on EFS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::command::ChrootCommand;
use crate::domain::storage::{bucket_name, efs_id, first_segment};
use crate::domain::{FieldError, ServerId, Target, TargetKind};
use crate::transfer::{IdentityProvider, ServerFacts, StorageDomain, Transfer, TransferError};

/// Facts about servers, each kept at most `ttl` (`SERVER_FACTS_TTL_SECONDS`). A server's
/// id is never reused, but what it is can change: `UpdateServer` switches its identity
/// provider (since 2025; "existing user configurations are not automatically
/// migrated") and its directory listing optimisation. So a fact is read again once it
/// is `ttl` old, and at once when CloudTrail reports an `UpdateServer` of it
/// ([`ServerCache::forget`]). A failed read (a server not found, Transfer unavailable)
/// is not remembered: the next command asks again.
#[derive(Debug)]
pub struct ServerCache {
    ttl: Duration,
    known: Mutex<HashMap<ServerId, (Instant, ServerFacts)>>,
}

impl Default for ServerCache {
    fn default() -> Self {
        Self::new(crate::config::DEFAULT_SERVER_FACTS_TTL)
    }
}

impl ServerCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServerId, (Instant, ServerFacts)>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `facts`, as a `DescribeServer` made elsewhere (a tag refresh) read them.
    pub fn remember(&self, server: &ServerId, facts: ServerFacts) {
        self.lock().insert(server.clone(), (Instant::now(), facts));
    }

    /// Drops what is known of `server`: the next use reads it again.
    pub fn forget(&self, server: &ServerId) {
        self.lock().remove(server);
    }

    /// The facts of `server` while they are younger than the TTL, else none.
    pub fn known(&self, server: &ServerId) -> Option<ServerFacts> {
        self.lock()
            .get(server)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, facts)| facts.clone())
    }

    /// The facts of `server`, from the cache while fresh, else from `DescribeServer`.
    pub async fn facts<T: Transfer>(
        &self,
        transfer: &T,
        server: &ServerId,
    ) -> Result<ServerFacts, TransferError> {
        if let Some(facts) = self.known(server) {
            return Ok(facts);
        }
        // Not held across the call: two invocations may both ask once, which is
        // harmless, and neither waits on the other.
        let facts = transfer.describe_server(server).await?.value;
        self.remember(server, facts.clone());
        Ok(facts)
    }

    /// `DescribeServer` of `server` now, whatever is known, kept for the next uses.
    pub async fn read_again<T: Transfer>(
        &self,
        transfer: &T,
        server: &ServerId,
    ) -> Result<ServerFacts, TransferError> {
        self.forget(server);
        self.facts(transfer, server).await
    }
}

/// Why a server chroots no one through its stored users, if it does not: on
/// `AWS_LAMBDA` or `API_GATEWAY` every login takes its home from the identity
/// provider, and the users stored on the server are not used (AWS Transfer Family user
/// guide, "Working with custom identity providers"; `UpdateServer` can switch a server
/// there since 2025, and "existing user configurations are not automatically
/// migrated").
pub fn chroots_no_one(facts: &ServerFacts) -> Option<String> {
    match &facts.identity_provider {
        IdentityProvider::AwsLambda | IdentityProvider::ApiGateway => Some(format!(
            "the server's identity provider is {}: every login takes its home from it, the \
             server's stored users are not used, and no UpdateUser chroots anyone there \
             (only the identity provider's code can)",
            facts.identity_provider.as_str()
        )),
        _ => None,
    }
}

/// Why a server with `facts` cannot hold `target` at all (a user on a directory
/// server, an access on a service-managed one), under `ServerId`.
pub fn kind_refusal(facts: &ServerFacts, target: &Target) -> Option<FieldError> {
    let server = &target.server;
    let provider = facts.identity_provider.as_str();
    match (target.kind(), &facts.identity_provider) {
        (TargetKind::User, IdentityProvider::ServiceManaged)
        | (TargetKind::Access, IdentityProvider::AwsDirectoryService) => None,
        (TargetKind::User, IdentityProvider::AwsDirectoryService) => Some(FieldError::new(
            "ServerId",
            format!(
                "{server} uses the identity provider {provider}: users exist only on \
                 SERVICE_MANAGED servers (chroot its directory groups with UpdateAccess and an ExternalId)"
            ),
        )),
        (TargetKind::User, _) => Some(FieldError::new(
            "ServerId",
            format!(
                "{server} uses the identity provider {provider}: users exist only on \
                 SERVICE_MANAGED servers (this provider returns the home at login)"
            ),
        )),
        (TargetKind::Access, _) => Some(FieldError::new(
            "ServerId",
            format!(
                "{server} uses the identity provider {provider}: accesses exist only on \
                 AWS_DIRECTORY_SERVICE servers"
            ),
        )),
    }
}

/// Why `command` cannot be written to a server with `facts`, field by field.
pub fn refusals(facts: &ServerFacts, command: &ChrootCommand) -> Vec<FieldError> {
    let server = &command.target.server;
    let mut fields: Vec<FieldError> = kind_refusal(facts, &command.target).into_iter().collect();
    let segment = first_segment(&command.chroot);
    let fits = match &facts.domain {
        StorageDomain::S3 => bucket_name(segment)
            .map_err(|e| format!("{server} stores files in S3: the first segment {segment:?} must be a bucket name: it {e}")),
        StorageDomain::Efs => efs_id(segment)
            .map_err(|e| format!("{server} stores files in EFS: the first segment {segment:?} {e}")),
        StorageDomain::Other(_) => Ok(()),
    };
    if let Err(why) = fits {
        fields.push(FieldError::new("HomeDirectory", why));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ChrootTarget, ExternalId, HomePath, HomeRoot, Settings, Subject, UserName,
    };
    use crate::transfer::memory::MemoryTransfer;
    use crate::transfer::{LiveHome, TransferErrorKind};

    fn command(kind: TargetKind, home: &str) -> ChrootCommand {
        let server = ServerId::parse("s-0123456789abcdef0").unwrap();
        let subject = match kind {
            TargetKind::User => Subject::User(UserName::parse("alice").unwrap()),
            TargetKind::Access => Subject::Access(ExternalId::parse("S-1-5-21-1").unwrap()),
        };
        let root = home.rsplit_once('/').unwrap().0;
        ChrootCommand {
            target: Target::new(server, subject),
            chroot: ChrootTarget::admit(
                HomePath::parse(home, kind).unwrap(),
                &[HomeRoot::parse(root).unwrap()],
            )
            .unwrap(),
            settings: Settings::default(),
            dry_run: false,
        }
    }

    fn facts(provider: IdentityProvider, domain: StorageDomain) -> ServerFacts {
        ServerFacts {
            identity_provider: provider,
            domain,
            directory_listing_optimization: false,
            tags: Vec::new(),
        }
    }

    fn fields(f: &ServerFacts, c: &ChrootCommand) -> Vec<String> {
        refusals(f, c).into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn users_only_on_service_managed_and_accesses_only_on_directory_servers() {
        use IdentityProvider::*;
        let user = command(TargetKind::User, "/acme-sftp/home/alice");
        let access = command(TargetKind::Access, "/acme-sftp/groups/${transfer:UserName}");
        let s3 = |p| facts(p, StorageDomain::S3);
        assert!(fields(&s3(ServiceManaged), &user).is_empty());
        assert!(fields(&s3(AwsDirectoryService), &access).is_empty());
        for p in [AwsDirectoryService, ApiGateway, AwsLambda] {
            let why = refusals(&s3(p.clone()), &user);
            assert_eq!(why.len(), 1);
            assert_eq!(why[0].field, "ServerId");
            assert!(why[0].message.contains(p.as_str()), "{}", why[0].message);
        }
        for p in [ServiceManaged, ApiGateway, AwsLambda] {
            assert_eq!(fields(&s3(p), &access), ["ServerId"]);
        }
    }

    #[test]
    fn the_first_segment_fits_the_storage() {
        let s3 = facts(IdentityProvider::ServiceManaged, StorageDomain::S3);
        let efs = facts(IdentityProvider::ServiceManaged, StorageDomain::Efs);
        let on_bucket = command(TargetKind::User, "/acme-sftp/home/alice");
        let on_fs = command(TargetKind::User, "/fs-0123456789abcdef0/home/alice");
        assert!(fields(&s3, &on_bucket).is_empty());
        assert!(fields(&efs, &on_fs).is_empty());
        assert_eq!(fields(&efs, &on_bucket), ["HomeDirectory"]);
        assert_eq!(
            fields(&s3, &command(TargetKind::User, "/Acme_SFTP/home/alice")),
            ["HomeDirectory"]
        );
        // Both wrong: both named.
        let access_on_bucket = command(TargetKind::Access, "/acme-sftp/groups/g");
        assert_eq!(
            fields(&efs, &access_on_bucket),
            ["ServerId", "HomeDirectory"]
        );
    }

    #[tokio::test]
    async fn one_describe_per_server_and_a_refresh_after_a_failure() {
        let server = ServerId::parse("s-0123456789abcdef0").unwrap();
        let other = ServerId::parse("s-00000000000000000").unwrap();
        let t = MemoryTransfer::new().with(
            Target::new(
                server.clone(),
                Subject::User(UserName::parse("alice").unwrap()),
            ),
            LiveHome::default(),
        );
        let cache = ServerCache::default();
        for _ in 0..3 {
            cache.facts(&t, &server).await.unwrap();
        }
        cache.facts(&t, &other).await.unwrap();
        assert_eq!(t.server_calls(), [server.clone(), other.clone()]);

        // A failed describe is not remembered.
        let cache = ServerCache::default();
        t.fail_next_on("DescribeServer", TransferErrorKind::NotFound);
        assert!(cache.facts(&t, &server).await.is_err());
        assert!(cache.facts(&t, &server).await.is_ok());
    }
}
