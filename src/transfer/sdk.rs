//! The Transfer port implemented with `aws-sdk-transfer`. The only module that
//! imports SDK types; retries (throttling, 5xx, timeouts) are the SDK's own, with its
//! standard exponential backoff and jitter, configured by the usual AWS settings.

use std::time::Duration;

use aws_sdk_transfer::Client;
use aws_sdk_transfer::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_transfer::operation::RequestId;
use aws_sdk_transfer::operation::update_access::UpdateAccessError;
use aws_sdk_transfer::operation::update_user::UpdateUserError;
use aws_sdk_transfer::types::{
    DescribedAccess, DescribedUser, HomeDirectoryMapEntry, PosixProfile,
};
use aws_smithy_http_client::tls::TlsContext;

use super::pace;
use super::{
    HomeDirectoryType, IdentityProvider, LIST_PAGE_SIZE, Listed, LiveHome, LivePosix, Mapping,
    MappingType, Page, Reply, ServerFacts, ServerIds, StorageDomain, Subject, Transfer,
    TransferError, TransferErrorKind, UpdateRequest,
};
use crate::domain::{ServerId, Target, TargetKind};

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one attempt of a Transfer call may take (a stalled answer included).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one Transfer call may take, its retries included. template.yaml's Timeout
/// is sized from it (a Describe, then an Update, then answering the source), which
/// tests/it/template.rs checks.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the cold start waits for the connection warm-up (`Chroot::warm_up`): a
/// connection to Transfer in the region takes tens of milliseconds; an unreachable one
/// costs the cold start at most this.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_millis(500);

/// The SDK timeouts the function runs with: [`CONNECT_TIMEOUT`], [`ATTEMPT_TIMEOUT`],
/// [`OPERATION_TIMEOUT`].
pub fn timeout_config() -> aws_sdk_transfer::config::timeout::TimeoutConfig {
    aws_sdk_transfer::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// `AWS_CA_BUNDLE`, the AWS SDKs' standard setting: a PEM file of the certificates to
/// trust for AWS endpoints *instead of* the system's roots (as botocore reads it), for
/// a TLS-inspecting proxy or a local endpoint with its own CA (the benchmark's stand-in).
pub const CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";

/// Why `AWS_CA_BUNDLE` cannot be used: a cold-start error, never a panic later.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("AWS_CA_BUNDLE={path}: cannot be read: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("AWS_CA_BUNDLE={path}: {why}")]
    Invalid { path: String, why: String },
}

/// The TLS context for `AWS_CA_BUNDLE`, or `None` without it (the system's roots, as
/// the SDK's default client). Read once, at cold start; the SDK's client
/// ([`http_client`]) and the CloudFormation responder both trust it. The bundle is
/// checked here the way the TLS stack will read it on the first call (which would
/// panic on a certificate it cannot parse): every PEM block must be a certificate
/// rustls accepts as a root, and there must be at least one.
pub fn tls_context_from_env() -> Result<Option<TlsContext>, CaBundleError> {
    match std::env::var_os(CA_BUNDLE_VAR).filter(|p| !p.is_empty()) {
        Some(path) => tls_context_for(std::path::Path::new(&path)).map(Some),
        None => Ok(None),
    }
}

/// The TLS context trusting only the PEM bundle at `path` (see
/// [`tls_context_from_env`]).
pub fn tls_context_for(path: &std::path::Path) -> Result<TlsContext, CaBundleError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| CaBundleError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let invalid = |why: String| CaBundleError::Invalid {
        path: shown.clone(),
        why,
    };
    let certs = ca_certificates(&pem).map_err(invalid)?;
    use aws_smithy_http_client::tls::TrustStore;
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| invalid(format!("no TLS context ({e})")))?;
    tracing::info!(certs, "trusting AWS_CA_BUNDLE instead of the system roots");
    Ok(context)
}

/// How many certificates `pem` holds, each one a usable root; an error says why not.
fn ca_certificates(pem: &[u8]) -> Result<usize, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle ({e})"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a certificate cannot be a trust root ({e})"))?;
    }
    match roots.len() {
        0 => Err("no PEM certificate in the file".to_owned()),
        n => Ok(n),
    }
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy settings from the
/// environment, the SDK's sleep and connector settings: what aws-smithy-runtime builds
/// for `default-https-client`), with `context`'s trust store.
pub fn http_client(context: TlsContext) -> aws_sdk_transfer::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = aws_smithy_http_client::ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context.clone());
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    })
}

#[derive(Debug, Clone)]
pub struct SdkTransfer {
    client: Client,
}

impl SdkTransfer {
    /// The adapter around `client`, which it rebuilds with the attempt timer
    /// ([`AttemptTimer`]): every attempt's latency reaches the invocation's metrics
    /// and, with whether it was throttled, the pacer of the work it is part of, if any
    /// ([`super::pace`]: the audit's calls), which each call also waits on first.
    pub fn new(client: Client) -> Self {
        let conf = client
            .config()
            .to_builder()
            .interceptor(AttemptTimer)
            .build();
        Self {
            client: Client::from_conf(conf),
        }
    }
}

/// Times each attempt the SDK makes (a retried call counts each attempt, as Transfer
/// sees it) from just before it is sent to its end, for `TransferLatency`, and tells
/// the current pacer whether Transfer answered or throttled it.
#[derive(Debug)]
struct AttemptTimer;

#[derive(Debug, Clone, Copy)]
struct AttemptStart(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for AttemptStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Whether `response` is Transfer's `ThrottlingException`: HTTP 429 as modelled, or
/// the 400 with `{"__type": "ThrottlingException"}` some operations answer.
fn is_throttle(response: &aws_sdk_transfer::config::http::HttpResponse) -> bool {
    let status = response.status().as_u16();
    let named = |text: &[u8]| {
        text.windows(b"ThrottlingException".len())
            .any(|w| w == b"ThrottlingException")
    };
    status == 429
        || (status == 400
            && (response
                .headers()
                .get("x-amzn-errortype")
                .is_some_and(|t| named(t.as_bytes()))
                || response.body().bytes().is_some_and(named)))
}

impl aws_sdk_transfer::config::Intercept for AttemptTimer {
    fn name(&self) -> &'static str {
        "TransferChrootAttemptTimer"
    }

    fn read_before_attempt(
        &self,
        _: &aws_sdk_transfer::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_transfer::config::RuntimeComponents,
        cfg: &mut aws_sdk_transfer::config::ConfigBag,
    ) -> Result<(), aws_sdk_transfer::error::BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStart(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &aws_sdk_transfer::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _: &aws_sdk_transfer::config::RuntimeComponents,
        cfg: &mut aws_sdk_transfer::config::ConfigBag,
    ) -> Result<(), aws_sdk_transfer::error::BoxError> {
        let Some(start) = cfg.load::<AttemptStart>() else {
            return Ok(());
        };
        let elapsed = start.0.elapsed();
        crate::metrics::transfer_call(elapsed);
        // No response at all (a timeout, a dropped connection) tells nothing of the rate.
        match ctx.response() {
            Some(r) if is_throttle(r) => pace::throttled(),
            Some(_) => pace::answered(elapsed),
            None => {}
        }
        Ok(())
    }
}

fn live_posix(p: Option<&PosixProfile>) -> Option<LivePosix> {
    p.map(|p| LivePosix {
        uid: p.uid(),
        gid: p.gid(),
        secondary_gids: p.secondary_gids().to_vec(),
    })
}

fn live_mappings(m: &[HomeDirectoryMapEntry]) -> Vec<Mapping> {
    m.iter()
        .map(|m| Mapping {
            entry: m.entry().to_owned(),
            target: m.target().to_owned(),
            r#type: m.r#type().map(|t| MappingType::from_wire(t.as_str())),
        })
        .collect()
}

fn from_user(u: &DescribedUser) -> LiveHome {
    LiveHome {
        home_directory: u.home_directory().map(str::to_owned),
        home_directory_type: u
            .home_directory_type()
            .map(|t| HomeDirectoryType::from_wire(t.as_str())),
        home_directory_mappings: live_mappings(u.home_directory_mappings()),
        role: u.role().map(str::to_owned),
        policy: u.policy().map(str::to_owned),
        posix_profile: live_posix(u.posix_profile()),
    }
}

fn from_access(a: &DescribedAccess) -> LiveHome {
    LiveHome {
        home_directory: a.home_directory().map(str::to_owned),
        home_directory_type: a
            .home_directory_type()
            .map(|t| HomeDirectoryType::from_wire(t.as_str())),
        home_directory_mappings: live_mappings(a.home_directory_mappings()),
        role: a.role().map(str::to_owned),
        policy: a.policy().map(str::to_owned),
        posix_profile: live_posix(a.posix_profile()),
    }
}

/// Classifies an SDK error once. Messages are Transfer's own words for service errors
/// and fixed sentences otherwise: transport details stay in the logs' `source` chain.
fn classify<E>(
    operation: &'static str,
    err: SdkError<E, aws_sdk_transfer::config::http::HttpResponse>,
    retry_after: impl Fn(&E) -> Option<&str>,
) -> TransferError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use TransferErrorKind::*;
    let request_id = err.request_id().map(str::to_owned);
    let mut after = None;
    let (kind, code, message) = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let status = service.raw().status().as_u16();
            let kind = match code.as_str() {
                "ResourceNotFoundException" => NotFound,
                "ThrottlingException" => Throttled,
                "InvalidRequestException" => InvalidRequest,
                "InternalServiceError" | "ServiceUnavailableException" => Unavailable,
                _ if status >= 500 => Unavailable,
                _ => Rejected,
            };
            after = retry_after(e)
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let message = match (kind, e.message()) {
                (Unavailable, _) => {
                    format!("Transfer Family is unavailable ({code}) after retries")
                }
                (Throttled, _) => format!("Transfer Family throttled {operation} after retries"),
                (_, Some(m)) => format!("Transfer Family: {m}"),
                (_, None) => format!("Transfer Family answered {code}"),
            };
            (kind, code, message)
        }
        SdkError::TimeoutError(_) => (
            Unavailable,
            "TimeoutError".to_owned(),
            "Transfer Family did not answer in time".to_owned(),
        ),
        SdkError::DispatchFailure(_) => (
            Unavailable,
            "DispatchFailure".to_owned(),
            "Transfer Family could not be reached".to_owned(),
        ),
        SdkError::ResponseError(_) => (
            Unavailable,
            "ResponseError".to_owned(),
            "Transfer Family's response could not be read".to_owned(),
        ),
        _ => (
            Unavailable,
            "ConstructionFailure".to_owned(),
            "the request could not be sent".to_owned(),
        ),
    };
    TransferError {
        operation,
        kind,
        code,
        message,
        request_id,
        retry_after: after,
        source: Some(Box::new(err)),
    }
}

fn sdk_mapping(req: &UpdateRequest) -> Vec<HomeDirectoryMapEntry> {
    req.mappings()
        .into_iter()
        .filter_map(|m| {
            HomeDirectoryMapEntry::builder()
                .entry(m.entry)
                .target(m.target)
                .build()
                .ok()
        })
        .collect()
}

fn sdk_posix(req: &UpdateRequest) -> Option<PosixProfile> {
    // Ids are validated to 0..=4294967295, which always fits an i64.
    req.settings.posix_profile.as_ref().and_then(|p| {
        PosixProfile::builder()
            .uid(p.uid() as i64)
            .gid(p.gid() as i64)
            .set_secondary_gids(
                (!p.secondary_gids().is_empty())
                    .then(|| p.secondary_gids().iter().map(|g| *g as i64).collect()),
            )
            .build()
            .ok()
    })
}

impl Transfer for SdkTransfer {
    async fn describe(&self, target: &Target) -> Result<Reply<LiveHome>, TransferError> {
        let server = &target.server;
        // DescribeUser/DescribeAccess do not model ThrottlingException; the SDK still
        // retries it, and `classify` reads it by code.
        pace::acquire().await;
        match &target.subject {
            Subject::User(user) => {
                let out = self
                    .client
                    .describe_user()
                    .server_id(server.as_str())
                    .user_name(user.as_str())
                    .send()
                    .await
                    .map_err(|e| classify("DescribeUser", e, |_| None))?;
                Ok(Reply {
                    value: out.user().map(from_user).unwrap_or_default(),
                    request_id: out.request_id().map(str::to_owned),
                })
            }
            Subject::Access(id) => {
                let out = self
                    .client
                    .describe_access()
                    .server_id(server.as_str())
                    .external_id(id.as_str())
                    .send()
                    .await
                    .map_err(|e| classify("DescribeAccess", e, |_| None))?;
                Ok(Reply {
                    value: out.access().map(from_access).unwrap_or_default(),
                    request_id: out.request_id().map(str::to_owned),
                })
            }
        }
    }

    async fn update(&self, req: &UpdateRequest) -> Result<Reply<()>, TransferError> {
        let role = req.settings.role.as_ref().map(|r| r.as_str().to_owned());
        let policy = req.settings.policy.as_ref().map(|p| p.as_str().to_owned());
        let server = req.target.server.as_str();
        pace::acquire().await;
        let request_id = match &req.target.subject {
            Subject::User(user) => self
                .client
                .update_user()
                .server_id(server)
                .user_name(user.as_str())
                .home_directory_type(aws_sdk_transfer::types::HomeDirectoryType::Logical)
                .set_home_directory_mappings(Some(sdk_mapping(req)))
                .home_directory(req.home_directory)
                .set_role(role)
                .set_policy(policy)
                .set_posix_profile(sdk_posix(req))
                .send()
                .await
                .map_err(|e| {
                    classify("UpdateUser", e, |e| match e {
                        UpdateUserError::ThrottlingException(t) => t.retry_after_seconds(),
                        _ => None,
                    })
                })?
                .request_id()
                .map(str::to_owned),
            Subject::Access(id) => self
                .client
                .update_access()
                .server_id(server)
                .external_id(id.as_str())
                .home_directory_type(aws_sdk_transfer::types::HomeDirectoryType::Logical)
                .set_home_directory_mappings(Some(sdk_mapping(req)))
                .home_directory(req.home_directory)
                .set_role(role)
                .set_policy(policy)
                .set_posix_profile(sdk_posix(req))
                .send()
                .await
                .map_err(|e| {
                    classify("UpdateAccess", e, |e| match e {
                        UpdateAccessError::ThrottlingException(t) => t.retry_after_seconds(),
                        _ => None,
                    })
                })?
                .request_id()
                .map(str::to_owned),
        };
        Ok(Reply {
            value: (),
            request_id,
        })
    }

    async fn describe_server(
        &self,
        server: &ServerId,
    ) -> Result<Reply<ServerFacts>, TransferError> {
        pace::acquire().await;
        let out = self
            .client
            .describe_server()
            .server_id(server.as_str())
            .send()
            .await
            .map_err(|e| classify("DescribeServer", e, |_| None))?;
        let s = out.server();
        let value = ServerFacts {
            // The model marks these optional; a server without one is a service-managed
            // S3 server, the service's defaults.
            identity_provider: s
                .and_then(|s| s.identity_provider_type())
                .map_or(IdentityProvider::ServiceManaged, |t| {
                    IdentityProvider::from_wire(t.as_str())
                }),
            domain: s
                .and_then(|s| s.domain())
                .map_or(StorageDomain::S3, |d| StorageDomain::from_wire(d.as_str())),
            directory_listing_optimization: s
                .and_then(|s| s.s3_storage_options())
                .and_then(|o| o.directory_listing_optimization())
                .is_some_and(|o| o.as_str() == "ENABLED"),
            tags: s
                .map(|s| s.tags())
                .unwrap_or_default()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        };
        Ok(Reply {
            value,
            request_id: out.request_id().map(str::to_owned),
        })
    }

    async fn list_servers(
        &self,
        next_token: Option<&str>,
    ) -> Result<Reply<ServerIds>, TransferError> {
        pace::acquire().await;
        let out = self
            .client
            .list_servers()
            .max_results(LIST_PAGE_SIZE)
            .set_next_token(next_token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify("ListServers", e, |_| None))?;
        Ok(Reply {
            value: ServerIds {
                items: out
                    .servers()
                    .iter()
                    .filter_map(|s| s.server_id().map(str::to_owned))
                    .collect(),
                next_token: out.next_token().map(str::to_owned),
            },
            request_id: out.request_id().map(str::to_owned),
        })
    }

    async fn list(
        &self,
        server: &ServerId,
        kind: TargetKind,
        next_token: Option<&str>,
    ) -> Result<Reply<Page>, TransferError> {
        // The SDK's paginators, one page per call: the audit decides between pages
        // whether there is time for the next, and keeps the token to resume from.
        let listed = |name: Option<&str>,
                      home: Option<&str>,
                      kind: Option<&str>,
                      role: Option<&str>| Listed {
            name: name.unwrap_or_default().to_owned(),
            home: LiveHome {
                home_directory: home.map(str::to_owned),
                home_directory_type: kind.map(HomeDirectoryType::from_wire),
                role: role.map(str::to_owned),
                ..LiveHome::default()
            },
        };
        pace::acquire().await;
        // One page of `$builder` (ListUsers or ListAccesses: other types, same shape).
        macro_rules! one_page {
            ($builder:expr, $op:literal, $items:ident, $name:ident) => {{
                let out = $builder
                    .server_id(server.as_str())
                    .set_next_token(next_token.map(str::to_owned))
                    .into_paginator()
                    .page_size(LIST_PAGE_SIZE)
                    .send()
                    .next()
                    .await
                    .transpose()
                    .map_err(|e| classify($op, e, |_| None))?;
                out.map(|o| Reply {
                    request_id: o.request_id().map(str::to_owned),
                    value: Page {
                        items: o
                            .$items()
                            .iter()
                            .map(|i| {
                                listed(
                                    i.$name(),
                                    i.home_directory(),
                                    i.home_directory_type().map(|t| t.as_str()),
                                    i.role(),
                                )
                            })
                            .collect(),
                        next_token: o.next_token().map(str::to_owned),
                    },
                })
            }};
        }
        let page = match kind {
            TargetKind::User => one_page!(self.client.list_users(), "ListUsers", users, user_name),
            TargetKind::Access => {
                one_page!(
                    self.client.list_accesses(),
                    "ListAccesses",
                    accesses,
                    external_id
                )
            }
        };
        Ok(page.unwrap_or(Reply {
            value: Page::default(),
            request_id: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod ca_bundle {
        use super::*;
        use transfer_standin::StandIn;
        use transfer_standin::tls::TlsIdentity;

        fn bundle(name: &str, contents: &[u8]) -> std::path::PathBuf {
            let path = std::env::temp_dir().join(format!(
                "transfer-chroot-ca-{}-{name}.pem",
                std::process::id()
            ));
            std::fs::write(&path, contents).unwrap();
            path
        }

        #[test]
        fn a_bundle_is_checked_at_cold_start_not_on_the_first_call() {
            let ca = TlsIdentity::generate().unwrap();
            assert_eq!(ca_certificates(ca.ca_pem().as_bytes()), Ok(1));
            let two = format!("{}\n{}", ca.ca_pem(), ca.ca_pem());
            assert_eq!(ca_certificates(two.as_bytes()), Ok(2));
            for bad in [
                &b""[..],
                b"not a certificate",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            ] {
                assert!(
                    ca_certificates(bad).is_err(),
                    "{:?}",
                    String::from_utf8_lossy(bad)
                );
                let path = bundle("bad", bad);
                let err = tls_context_for(&path).unwrap_err();
                assert!(matches!(err, CaBundleError::Invalid { .. }), "{err}");
                assert!(err.to_string().starts_with("AWS_CA_BUNDLE="), "{err}");
            }
            let missing = std::env::temp_dir().join("transfer-chroot-no-such-bundle.pem");
            let err = tls_context_for(&missing).unwrap_err();
            assert!(matches!(err, CaBundleError::Unreadable { .. }), "{err}");
        }

        async fn describe_server(
            endpoint: String,
            http: Option<aws_sdk_transfer::config::SharedHttpClient>,
        ) -> Result<(), String> {
            let mut conf = aws_sdk_transfer::Config::builder()
                .behavior_version(aws_sdk_transfer::config::BehaviorVersion::latest())
                .region(aws_sdk_transfer::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_transfer::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .endpoint_url(endpoint)
                .retry_config(aws_sdk_transfer::config::retry::RetryConfig::disabled())
                .timeout_config(timeout_config());
            if let Some(http) = http {
                conf = conf.http_client(http);
            }
            Client::from_conf(conf.build())
                .describe_server()
                .server_id("s-0123456789abcdef0")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        }

        #[tokio::test]
        async fn the_sdk_reaches_an_endpoint_whose_ca_is_in_the_bundle_and_only_then() {
            let seed = serde_json::json!({"Servers": [{"ServerId": "s-0123456789abcdef0"}]});
            let ca = TlsIdentity::generate().unwrap();
            let mut standin = StandIn::start(&seed).await.unwrap();
            let https = standin
                .listen_tls("127.0.0.1:0".parse().unwrap(), &ca)
                .await
                .unwrap();
            let trusted =
                http_client(tls_context_for(&bundle("ca", ca.ca_pem().as_bytes())).unwrap());
            describe_server(https.clone(), Some(trusted)).await.unwrap();
            assert_eq!(standin.successful_calls("DescribeServer"), 1);

            // Another CA's bundle: the handshake fails, nothing reaches the stand-in.
            let other = TlsIdentity::generate().unwrap();
            let untrusted =
                http_client(tls_context_for(&bundle("other", other.ca_pem().as_bytes())).unwrap());
            let err = describe_server(https, Some(untrusted)).await.unwrap_err();
            assert!(err.contains("DispatchFailure"), "{err}");
            assert_eq!(standin.calls("DescribeServer"), 1);
        }
    }

    #[test]
    fn the_timeout_config_carries_the_bounds_the_template_is_sized_from() {
        let c = timeout_config();
        assert_eq!(c.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(c.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(c.operation_timeout(), Some(OPERATION_TIMEOUT));
        // Retries must have room inside one operation.
        assert!(OPERATION_TIMEOUT >= 2 * ATTEMPT_TIMEOUT);
    }
}
