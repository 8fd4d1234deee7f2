//! Which servers the function may touch, and with which home roots.
//!
//! Without `SERVER_TAG`: the servers of `ALLOWED_SERVER_IDS`, with `HOME_ROOTS`; known
//! without a call. With it: this account's servers carrying the tag (`ListServers`, then
//! each server's tags from `DescribeServer`), and on each the roots of its own
//! `transfer-chroot:home-roots` tag ([`Config::on_server`]). What was read is taken as
//! true for `SERVER_TAG_REFRESH_SECONDS`: a server tagged later is enforced after at most
//! that long, without a redeploy. A refresh that fails keeps what was read before, if
//! anything (logged), and is tried again after a short pause, so a Transfer outage does
//! not turn every command into a listing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;
use crate::domain::ServerId;
use crate::servers::ServerCache;
use crate::transfer::{Transfer, TransferError, TransferErrorKind};

/// After a failed refresh, the pause before the next try (or the refresh interval, if
/// shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// DescribeServer calls of a refresh in flight at once.
const DESCRIBE_CONCURRENCY: usize = 8;

/// What `server` is to this function.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The configuration that holds there (its roots, its derived home).
    Allowed(Arc<Config>),
    /// Why it may not be touched (under `ServerId`).
    Refused(String),
}

/// The tagged servers as last read, per execution environment.
#[derive(Debug, Default)]
pub struct Scopes {
    read: tokio::sync::Mutex<Option<Snapshot>>,
}

#[derive(Debug, Clone)]
struct Snapshot {
    /// When to read again.
    until: Instant,
    /// The servers carrying the tag (and listed, when a list is set), in id order.
    tagged: Arc<BTreeMap<ServerId, Arc<Config>>>,
}

impl Scopes {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `server` is under `base`: no call without `SERVER_TAG`; with it, the
    /// tagged servers as read at most `SERVER_TAG_REFRESH_SECONDS` ago.
    pub async fn of<T: Transfer>(
        &self,
        base: &Arc<Config>,
        transfer: &T,
        facts: &ServerCache,
        server: &ServerId,
    ) -> Result<Scope, TransferError> {
        if let Some(why) = base.unlisted(server) {
            return Ok(Scope::Refused(why));
        }
        let Some(tag) = &base.server_tag else {
            return Ok(Scope::Allowed(base.clone()));
        };
        let tagged = self.tagged(base, transfer, facts).await?;
        Ok(match tagged.get(server) {
            Some(config) => Scope::Allowed(config.clone()),
            None => Scope::Refused(format!(
                "{server} does not carry the tag {tag} (SERVER_TAG), or is not a server of this account and region"
            )),
        })
    }

    /// The servers an audit without `ServerId` covers, in order: `ALLOWED_SERVER_IDS`
    /// as listed, or the tagged servers in id order.
    pub async fn servers<T: Transfer>(
        &self,
        base: &Arc<Config>,
        transfer: &T,
        facts: &ServerCache,
    ) -> Result<Vec<ServerId>, TransferError> {
        if base.server_tag.is_none() {
            return Ok(base.guardrails.servers.clone());
        }
        Ok(self
            .tagged(base, transfer, facts)
            .await?
            .keys()
            .cloned()
            .collect())
    }

    /// The tagged servers, read again when what was read is out of date. One refresh
    /// at a time: concurrent callers wait for it and share its answer.
    async fn tagged<T: Transfer>(
        &self,
        base: &Arc<Config>,
        transfer: &T,
        facts: &ServerCache,
    ) -> Result<Arc<BTreeMap<ServerId, Arc<Config>>>, TransferError> {
        let mut read = self.read.lock().await;
        let now = Instant::now();
        if let Some(snapshot) = read.as_ref().filter(|s| now < s.until) {
            return Ok(snapshot.tagged.clone());
        }
        match refresh(base, transfer, facts).await {
            Ok(tagged) => {
                let tagged = Arc::new(tagged);
                tracing::info!(
                    tag = %base.server_tag.as_ref().map(ToString::to_string).unwrap_or_default(),
                    servers = ?tagged.keys().map(ServerId::as_str).collect::<Vec<_>>(),
                    "tagged servers read"
                );
                *read = Some(Snapshot {
                    until: Instant::now() + base.server_tag_refresh,
                    tagged: tagged.clone(),
                });
                Ok(tagged)
            }
            Err(e) => {
                let retry = Instant::now() + RETRY_AFTER_FAILURE.min(base.server_tag_refresh);
                match read.as_mut() {
                    Some(stale) => {
                        tracing::warn!(error = %e, "tagged servers: refresh failed, keeping the last read");
                        stale.until = retry;
                        Ok(stale.tagged.clone())
                    }
                    None => Err(e),
                }
            }
        }
    }
}

/// Every server of the account (`ListServers`, page by page), those listed when a list
/// is set, each described (its facts remembered) and kept when it carries the tag.
async fn refresh<T: Transfer>(
    base: &Arc<Config>,
    transfer: &T,
    facts: &ServerCache,
) -> Result<BTreeMap<ServerId, Arc<Config>>, TransferError> {
    use futures::StreamExt;

    let Some(tag) = &base.server_tag else {
        return Ok(BTreeMap::new());
    };
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = transfer.list_servers(token.as_deref()).await?.value;
        ids.extend(page.items.iter().filter_map(|s| ServerId::parse(s).ok()));
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    ids.retain(|id| base.unlisted(id).is_none());
    let described: Vec<_> = futures::stream::iter(ids)
        .map(|id| async move {
            let read = transfer.describe_server(&id).await;
            (id, read)
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let mut tagged = BTreeMap::new();
    for (id, read) in described {
        match read {
            Ok(reply) => {
                let server = reply.value;
                if tag.matches(&server.tags) {
                    tagged.insert(id.clone(), Arc::new(base.on_server(&id, &server.tags)));
                }
                facts.remember(&id, server);
            }
            // Deleted between the listing and its description: not a server any more.
            Err(e) if e.kind == TransferErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tagged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::memory::{MemoryTransfer, default_server};

    const TAGGED: &str = "s-00000000000000001";
    const OTHER: &str = "s-00000000000000002";
    const LATER: &str = "s-00000000000000003";

    fn id(s: &str) -> ServerId {
        ServerId::parse(s).unwrap()
    }

    fn config(vars: &[(&str, &str)]) -> Arc<Config> {
        Arc::new(Config::from_pairs(vars).unwrap())
    }

    fn fleet() -> MemoryTransfer {
        let t = MemoryTransfer::new()
            .with_server(id(TAGGED), default_server())
            .with_server(id(OTHER), default_server())
            .with_server(id(LATER), default_server());
        t.set_tags(
            &id(TAGGED),
            &[
                ("transfer-chroot", "enforce"),
                ("transfer-chroot:home-roots", "/bkt/home /bkt/partners"),
            ],
        );
        t.set_tags(&id(OTHER), &[("transfer-chroot", "off")]);
        t
    }

    async fn scope(scopes: &Scopes, base: &Arc<Config>, t: &MemoryTransfer, server: &str) -> Scope {
        scopes
            .of(base, t, &ServerCache::default(), &id(server))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn without_a_tag_the_list_decides_with_no_call() {
        let base = config(&[("ALLOWED_SERVER_IDS", TAGGED), ("HOME_ROOTS", "/bkt/home")]);
        let t = fleet();
        let scopes = Scopes::new();
        assert!(
            matches!(scope(&scopes, &base, &t, TAGGED).await, Scope::Allowed(c) if Arc::ptr_eq(&c, &base))
        );
        match scope(&scopes, &base, &t, OTHER).await {
            Scope::Refused(why) => assert!(why.contains("ALLOWED_SERVER_IDS"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.server_listings(), 0);
        assert!(t.server_calls().is_empty());
    }

    #[tokio::test]
    async fn tagged_servers_get_their_own_roots_and_a_later_tag_counts_after_the_refresh() {
        let base = config(&[
            ("SERVER_TAG", "transfer-chroot=enforce"),
            ("SERVER_TAG_REFRESH_SECONDS", "1"),
        ]);
        let t = fleet();
        let scopes = Scopes::new();
        let Scope::Allowed(on) = scope(&scopes, &base, &t, TAGGED).await else {
            panic!("tagged server refused");
        };
        let roots: Vec<&str> = on.guardrails.roots.iter().map(|r| r.as_str()).collect();
        assert_eq!(roots, ["/bkt/home", "/bkt/partners"]);
        assert_eq!(
            on.defaults.home_template.as_ref().map(|t| t.as_str()),
            Some("/bkt/home/${UserName}"),
            "the first root's"
        );
        for refused in [OTHER, LATER] {
            match scope(&scopes, &base, &t, refused).await {
                Scope::Refused(why) => {
                    assert!(why.contains("transfer-chroot=enforce"), "{why}")
                }
                other => panic!("{refused}: {other:?}"),
            }
        }
        assert_eq!(t.server_listings(), 1, "one read for all three lookups");
        assert_eq!(t.server_calls().len(), 3, "each server described once");

        t.set_tags(&id(LATER), &[("transfer-chroot", "enforce")]);
        assert!(matches!(
            scope(&scopes, &base, &t, LATER).await,
            Scope::Refused(_)
        ));
        assert_eq!(t.server_listings(), 1, "taken as read until the refresh");
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let Scope::Allowed(later) = scope(&scopes, &base, &t, LATER).await else {
            panic!("a server tagged later is covered after the refresh");
        };
        assert!(
            later.guardrails.roots.is_empty(),
            "no roots tag, no HOME_ROOTS"
        );
        assert!(
            later
                .guardrails
                .no_roots()
                .unwrap()
                .starts_with("no home roots for this server")
        );
        assert_eq!(t.server_listings(), 2);
        assert_eq!(
            scopes
                .servers(&base, &t, &ServerCache::default())
                .await
                .unwrap(),
            [id(TAGGED), id(LATER)]
        );
    }

    #[tokio::test]
    async fn a_list_and_a_tag_both_hold_and_a_failed_refresh_keeps_the_last_read() {
        let base = config(&[
            ("SERVER_TAG", "transfer-chroot"),
            ("ALLOWED_SERVER_IDS", OTHER),
            ("HOME_ROOTS", "/bkt/home"),
            ("SERVER_TAG_REFRESH_SECONDS", "0"),
        ]);
        let t = fleet();
        let scopes = Scopes::new();
        // TAGGED carries the key but is not listed; OTHER is both (any value).
        match scope(&scopes, &base, &t, TAGGED).await {
            Scope::Refused(why) => assert!(why.contains("ALLOWED_SERVER_IDS"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.server_listings(), 0, "the list refuses without a call");
        let Scope::Allowed(on) = scope(&scopes, &base, &t, OTHER).await else {
            panic!("listed and tagged");
        };
        assert_eq!(
            on.guardrails.roots[0].as_str(),
            "/bkt/home",
            "HOME_ROOTS there"
        );
        assert_eq!(
            t.server_calls(),
            [id(OTHER)],
            "only the listed one described"
        );

        t.fail_next_on("DescribeServer", TransferErrorKind::Unavailable);
        assert!(matches!(
            scope(&scopes, &base, &t, OTHER).await,
            Scope::Allowed(_)
        ));
        let fresh = Scopes::new();
        t.fail_next_on("DescribeServer", TransferErrorKind::Unavailable);
        let err = fresh
            .of(&base, &t, &ServerCache::default(), &id(OTHER))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind,
            TransferErrorKind::Unavailable,
            "nothing read before"
        );
    }
}
