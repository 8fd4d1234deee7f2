//! CloudFormation's `ResponseURL`, admitted before anything is done: the function PUTs
//! only to CloudFormation's own presigned S3 URLs (https on `amazonaws.com` or
//! `amazonaws.com.cn`) and to the exact origins of `CFN_RESPONSE_ORIGINS`. Any other URL
//! is never contacted, so no invoker can make the function send a request of its choosing
//! (to an internal address, the instance metadata service, or plain http).
//!
//! AWS documents the `ResponseURL` of a custom resource request as "a presigned S3
//! bucket" URL that receives the provider's response (CloudFormation User Guide, "Custom
//! resource request objects"); S3's endpoints are names under `amazonaws.com`, and under
//! `amazonaws.com.cn` in the China regions (AWS General Reference, "Amazon S3 endpoints").

use std::fmt;

use hyper::Uri;
use url::{Host, Url};

use crate::domain::{Origin, ResponseOrigins};
use crate::outcome::echo;

/// The domains CloudFormation's presigned S3 response URLs are on: the AWS partitions'
/// `amazonaws.com` and the China regions' `amazonaws.com.cn` (a `ResponseURL` host must
/// be one of them or a name under one, compared by whole DNS labels).
pub const CLOUDFORMATION_DOMAINS: [&[&str]; 2] =
    [&["amazonaws", "com"], &["amazonaws", "com", "cn"]];

/// CloudFormation's presigned response URL, admitted: the only kind of URL the
/// responder sends to.
///
/// It can only be built by [`ResponseUrl::admit`], which reads the URL with a WHATWG
/// parser (the `url` crate) and admits it when it is CloudFormation's (https, no user
/// info, the default port, a host name that is or lies under `amazonaws.com` or
/// `amazonaws.com.cn`) or its origin is one of `CFN_RESPONSE_ORIGINS`. The PUT goes to
/// that parser's reading of the URL, never to the raw text, so the host that was judged
/// is the host that is contacted.
///
/// Its query string is a credential: whoever holds it can answer for the stack. So
/// `Display` and `Debug` show only scheme, host and path ([`ResponseUrl::redacted`]),
/// and the whole URL is reachable only by the code that sends the PUT.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseUrl {
    uri: Uri,
    redacted: String,
}

/// Why a `ResponseURL` is not answered. The messages never contain the path, the query
/// (the signature) or user info.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseUrlViolation {
    #[error("ResponseURL is missing or not a string")]
    Missing,
    #[error("ResponseURL is not a valid absolute URL ({0})")]
    Malformed(String),
    #[error(
        "ResponseURL carries user info (a name or password before '@'), which CloudFormation's never does"
    )]
    UserInfo,
    #[error(
        "ResponseURL {origin} is not CloudFormation's: {why}. CloudFormation's ResponseURL is \
         https on amazonaws.com or amazonaws.com.cn (or a name under them), and \
         CFN_RESPONSE_ORIGINS does not list {origin}"
    )]
    NotCloudFormation { origin: String, why: Refusal },
}

/// Which of CloudFormation's properties a refused `ResponseURL` lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the scheme is not https")]
    Scheme,
    #[error("the host is an IP address, not a name")]
    IpAddress,
    #[error("the host is not amazonaws.com or amazonaws.com.cn, nor a name under them")]
    Host,
    #[error("the port is not https's default (443)")]
    Port,
}

impl ResponseUrl {
    /// Admits `raw` when it is CloudFormation's or its origin is in `extra` (the only
    /// way to get a `ResponseUrl`). Nothing is contacted here.
    pub fn admit(raw: &str, extra: &ResponseOrigins) -> Result<Self, ResponseUrlViolation> {
        let mut url =
            Url::parse(raw).map_err(|e| ResponseUrlViolation::Malformed(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ResponseUrlViolation::UserInfo);
        }
        // Never sent in HTTP; dropped so the request target is path and query only.
        url.set_fragment(None);
        if !Origin::of(&url).is_some_and(|o| extra.contains(&o))
            && let Some(why) = refusal(&url)
        {
            return Err(ResponseUrlViolation::NotCloudFormation {
                origin: origin_of(&url),
                why,
            });
        }
        Self::sendable(&url)
    }

    /// The URL as the HTTP client will use it: the parser's serialisation, read back
    /// by `hyper`. Both must agree on the host and port, or nothing is sent.
    fn sendable(url: &Url) -> Result<Self, ResponseUrlViolation> {
        let uri: Uri = url.as_str().parse().map_err(|_| {
            ResponseUrlViolation::Malformed("not a valid HTTP request target".into())
        })?;
        if uri.scheme_str() != Some(url.scheme())
            || uri.host() != url.host_str()
            || uri.port_u16() != url.port()
        {
            return Err(ResponseUrlViolation::Malformed(
                "its host reads differently to the HTTP client".into(),
            ));
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let redacted = format!(
            "{}://{}{port}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.path()
        );
        Ok(Self { uri, redacted })
    }

    /// `scheme://host[:port]/path`: no query string (the signature), no user info.
    pub fn redacted(&self) -> String {
        self.redacted.clone()
    }

    /// The request target for the HTTP client (with the query: the signature).
    pub(super) fn uri(&self) -> &Uri {
        &self.uri
    }
}

/// Why `url` is not one of CloudFormation's response URLs; `None` when it is.
fn refusal(url: &Url) -> Option<Refusal> {
    if url.scheme() != "https" {
        return Some(Refusal::Scheme);
    }
    match url.host() {
        Some(Host::Domain(name)) if is_cloudformation_host(name) => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => return Some(Refusal::IpAddress),
        _ => return Some(Refusal::Host),
    }
    // `url` drops a port that is the scheme's default (`:443`, `:0443`).
    url.port().map(|_| Refusal::Port)
}

/// `amazonaws.com`, `amazonaws.com.cn`, or a name under one of them, by whole labels:
/// `s3.amazonaws.com.evil.example`, `evilamazonaws.com` and the absolute form with a
/// trailing dot are not. Every label must be a host name's (letters, digits, `-`), as
/// S3's endpoints and bucket names are: `*.amazonaws.com` is not a name. `name` is as
/// the URL parser leaves it (IDNA-mapped to ASCII, lower case).
pub fn is_cloudformation_host(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    let ldh = |l: &&str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    labels.iter().all(ldh)
        && CLOUDFORMATION_DOMAINS
            .iter()
            .any(|domain| labels.ends_with(domain))
}

/// `scheme://host:port` of a refused URL, for its error (`scheme:` when it has no host).
fn origin_of(url: &Url) -> String {
    let origin = match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) if !host.is_empty() => {
            format!("{}://{host}:{port}", url.scheme())
        }
        (Some(host), None) if !host.is_empty() => format!("{}://{host}", url.scheme()),
        _ => format!("{}:", url.scheme()),
    };
    echo(&origin)
}

impl fmt::Display for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn none() -> ResponseOrigins {
        ResponseOrigins::none()
    }

    fn sink() -> ResponseOrigins {
        ResponseOrigins::parse("http://127.0.0.1:9124").unwrap()
    }

    /// Why `raw` is refused with no extra origins (`None` when it is admitted).
    fn refused(raw: &str) -> Option<Refusal> {
        match ResponseUrl::admit(raw, &none()) {
            Ok(_) => None,
            Err(ResponseUrlViolation::NotCloudFormation { why, .. }) => Some(why),
            Err(e) => panic!("{raw}: {e:?}, expected a Refusal"),
        }
    }

    const PRESIGNED: &str = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/sftp/16580499%7CChrootAlice%7C82304eb2?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261122T101500Z&X-Amz-SignedHeaders=host&X-Amz-Expires=7199&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261122%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=deadbeef";

    #[test]
    fn cloudformation_s_own_urls_are_sent_exactly_as_given() {
        for raw in [
            PRESIGNED,
            // The shape of aws_lambda_events' fixtures (tests/fixtures/aws-events).
            "https://cr-response-bucket.s3.us-east-1.amazonaws.com/cr-response-key?sig-params=sig-values",
            // Path-style, legacy regional, China and SigV2 forms.
            "https://s3.amazonaws.com/cloudformation-custom-resource-response-useast1/arn%3Aaws%3Acloudformation%3Aus-east-1%3A1%3Astack/s/1%7CR%7C2?AWSAccessKeyId=AKIA&Expires=1700000000&Signature=a%2Bb%3D",
            "https://cloudformation-custom-resource-response-uswest2.s3-us-west-2.amazonaws.com/k?X-Amz-Signature=s",
            "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/k?X-Amz-Signature=s",
            "https://amazonaws.com/k",
        ] {
            let url = ResponseUrl::admit(raw, &none()).unwrap_or_else(|e| panic!("{raw}: {e}"));
            // Re-encoding any byte of the path or query would break the signature.
            assert_eq!(url.uri().to_string(), raw);
        }
    }

    #[test]
    fn case_and_the_default_port_are_normalised_not_refused() {
        for raw in [
            "https://S3.AmazonAWS.COM/k",
            "HTTPS://s3.amazonaws.com/k",
            "https://s3.amazonaws.com:443/k",
            "https://s3.amazonaws.com:0443/k",
            "https://s3.amazonaws.com/k#fragment",
        ] {
            let url = ResponseUrl::admit(raw, &none()).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(url.uri().to_string(), "https://s3.amazonaws.com/k", "{raw}");
        }
    }

    #[test]
    fn the_presigned_query_never_shows() {
        let url = ResponseUrl::admit(PRESIGNED, &none()).unwrap();
        let expected = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/sftp/16580499%7CChrootAlice%7C82304eb2";
        assert_eq!(url.redacted(), expected);
        assert_eq!(url.to_string(), expected);
        assert_eq!(format!("{url:?}"), format!("ResponseUrl({expected})"));
        let local = ResponseUrl::admit("http://127.0.0.1:9124/cfn-response/x?sig=1", &sink());
        assert_eq!(
            local.unwrap().redacted(),
            "http://127.0.0.1:9124/cfn-response/x"
        );
    }

    #[test]
    fn look_alike_hosts_are_refused() {
        for host in [
            "s3.amazonaws.com.evil.example",
            "amazonaws.com.evil",
            "amazonaws.com.cn.evil",
            "xamazonaws.com",
            "evilamazonaws.com",
            "s3-amazonaws.com",
            "amazonaws.co",
            "amazonaws.cn",
            "amazonaws.com-evil.example",
            "amazonaws",
            "com",
            "s3.amazonaws.com.localhost",
            "localhost",
            "s3.amazonaws.com.", // trailing dot: the absolute form
            "amazonaws.com.cn.",
            ".amazonaws.com",
            "s3..amazonaws.com",
            "*.amazonaws.com",
            "s3.amazonaws.c%6Fm.evil", // percent-encoded, decoded by the parser
            "s3.amazonaws.cоm",        // Cyrillic о: IDNA makes it xn--cm-fmc
            "s3_bucket.amazonaws.com",
        ] {
            assert_eq!(
                refused(&format!("https://{host}/k?X-Amz-Signature=s")),
                Some(Refusal::Host),
                "{host}"
            );
        }
    }

    #[test]
    fn user_info_is_refused_even_for_an_allowed_origin() {
        for raw in [
            "https://s3.amazonaws.com@127.0.0.1/",
            "https://user:pw@s3.amazonaws.com/",
            "https://user@s3.amazonaws.com/",
            "https://:pw@s3.amazonaws.com/",
            "https://s3.amazonaws.com:443@127.0.0.1/",
            "https://a@b@s3.amazonaws.com/",
            "https://%40@s3.amazonaws.com/",
            "http://u:p@127.0.0.1:9124/cfn-response/x",
            "http://127.0.0.1:9124@127.0.0.1:9124/",
        ] {
            assert_eq!(
                ResponseUrl::admit(raw, &sink()),
                Err(ResponseUrlViolation::UserInfo),
                "{raw}"
            );
        }
        // An empty user info is no user info: the parser drops the '@', and the URL goes
        // to the host it names.
        let url = ResponseUrl::admit("https://@s3.amazonaws.com/k", &none()).unwrap();
        assert_eq!(url.uri().to_string(), "https://s3.amazonaws.com/k");
    }

    #[test]
    fn ip_literals_in_every_notation_are_refused() {
        for host in [
            "127.0.0.1",
            "2130706433",   // decimal
            "0x7f000001",   // hex
            "0x7F.0.0.1",   // hex octet
            "0177.0.0.1",   // octal
            "017700000001", // octal, whole
            "127.1",        // short form
            "127.0.0.1.",   // trailing dot
            "%31%32%37.0.0.1",
            "0",
            "0.0.0.0",
            "127.0.0.2",
            "169.254.169.254", // the instance metadata service
            "10.0.0.1",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[fd00:ec2::254]", // the metadata service over IPv6
            "[::]",
        ] {
            for port in ["", ":443", ":9124"] {
                let raw = format!("https://{host}{port}/latest/meta-data/");
                assert_eq!(refused(&raw), Some(Refusal::IpAddress), "{raw}");
            }
        }
    }

    #[test]
    fn other_schemes_and_ports_are_refused() {
        for raw in [
            "http://s3.amazonaws.com/k",
            "ftp://s3.amazonaws.com/k",
            "ws://s3.amazonaws.com/k",
            "wss://s3.amazonaws.com/k",
            "file:///etc/passwd",
            "file://s3.amazonaws.com/etc/passwd",
            "gopher://s3.amazonaws.com:70/_x",
            "javascript:alert(1)",
            "data:text/plain,x",
            "s3://bucket/key",
        ] {
            assert_eq!(refused(raw), Some(Refusal::Scheme), "{raw}");
        }
        for port in [0, 1, 80, 444, 4443, 8443, 9124, 65535] {
            let raw = format!("https://s3.amazonaws.com:{port}/k");
            assert_eq!(refused(&raw), Some(Refusal::Port), "{raw}");
        }
    }

    #[test]
    fn what_is_not_a_url_is_malformed() {
        for raw in [
            "",
            "not a url",
            "/relative?x=1",
            "//s3.amazonaws.com/k",
            "https://",
            "https://[::1",
            "https://s3.amazonaws.com:99999/k",
            "https://s3.amazonaws.com:x1/k",
            "https://s3.amazonaws.com%2F.evil/k",
            "https://s3.amazonaws.com%00/k",
            "https://s3.amazonaws.com /k",
            "https://256.256.256.256/k",
        ] {
            assert!(
                matches!(
                    ResponseUrl::admit(raw, &none()),
                    Err(ResponseUrlViolation::Malformed(_))
                ),
                "{raw}: {:?}",
                ResponseUrl::admit(raw, &none())
            );
        }
    }

    #[test]
    fn the_host_judged_is_the_host_contacted() {
        // Each would reach another host if the sender read it differently from the
        // judge; the sender gets the judge's reading.
        for (raw, sent) in [
            (
                "https://s3.amazonaws.com\\@127.0.0.1/k",
                "https://s3.amazonaws.com/@127.0.0.1/k",
            ),
            (
                "https://s3.amazonaws.com#@127.0.0.1/k",
                "https://s3.amazonaws.com/",
            ),
            (
                "https://s3.amazonaws.com?@127.0.0.1/k",
                "https://s3.amazonaws.com/?@127.0.0.1/k",
            ),
            (
                "https://s3.amazon\taws.com/k\r\n",
                "https://s3.amazonaws.com/k",
            ),
            (
                "https://s3%2eamazonaws%2ecom/k",
                "https://s3.amazonaws.com/k",
            ),
            (
                "https://s3.amazonaws\u{3002}com/k",
                "https://s3.amazonaws.com/k",
            ),
            (
                "http://127.0.0.1:9124\\@127.0.0.1:1/x",
                "http://127.0.0.1:9124/@127.0.0.1:1/x",
            ),
            ("http://2130706433:9124/x", "http://127.0.0.1:9124/x"),
        ] {
            let url = ResponseUrl::admit(raw, &sink()).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(url.uri().to_string(), sent, "{raw}");
        }
    }

    #[test]
    fn an_extra_origin_admits_exactly_its_scheme_host_and_port() {
        let origins = ResponseOrigins::parse("http://127.0.0.1:9124,http://[::1]:9124").unwrap();
        for raw in [
            "http://127.0.0.1:9124/cfn-response/x?X-Amz-Signature=s",
            "http://[::1]:9124/x",
            "HTTP://127.0.0.1:9124/x",
        ] {
            assert!(ResponseUrl::admit(raw, &origins).is_ok(), "{raw}");
        }
        for (raw, why) in [
            ("https://127.0.0.1:9124/x", Refusal::IpAddress),
            ("http://127.0.0.1:9125/x", Refusal::Scheme),
            ("http://127.0.0.1/x", Refusal::Scheme),
            ("http://127.0.0.2:9124/x", Refusal::Scheme),
            ("http://localhost:9124/x", Refusal::Scheme),
            ("http://[::2]:9124/x", Refusal::Scheme),
        ] {
            match ResponseUrl::admit(raw, &origins) {
                Err(ResponseUrlViolation::NotCloudFormation { why: w, .. }) => {
                    assert_eq!(w, why, "{raw}")
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
        // WHATWG reads `https:///k` as host `k`: refused as a host, not sent anywhere.
        assert_eq!(refused("https:///k"), Some(Refusal::Host));
        // Without CFN_RESPONSE_ORIGINS the local sink is refused like any other host.
        assert_eq!(refused("http://127.0.0.1:9124/x"), Some(Refusal::Scheme));
    }

    #[test]
    fn a_refusal_says_why_and_shows_no_path_query_or_user_info() {
        let e = ResponseUrl::admit(
            "http://127.0.0.1:9/cfn-response/PATHSECRET?X-Amz-Signature=QUERYSECRET",
            &none(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ResponseURL http://127.0.0.1:9 is not CloudFormation's: the scheme is not https. \
             CloudFormation's ResponseURL is https on amazonaws.com or amazonaws.com.cn (or a \
             name under them), and CFN_RESPONSE_ORIGINS does not list http://127.0.0.1:9"
        );
        for raw in [
            "http://127.0.0.1:9/PATHSECRET?X-Amz-Signature=QUERYSECRET#FRAGSECRET",
            "https://USERSECRET:PWSECRET@s3.amazonaws.com/PATHSECRET?QUERYSECRET",
            "https://s3.amazonaws.com:8443/PATHSECRET?QUERYSECRET",
            "ftp://USERSECRET@h/PATHSECRET?QUERYSECRET",
            "https://[::1/PATHSECRET?QUERYSECRET",
            "javascript:PATHSECRET",
        ] {
            let e = ResponseUrl::admit(raw, &none()).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{raw}: {e}");
        }
    }

    // ------------------------------------------------------------------ properties

    /// `name` with each ASCII letter's case chosen by `mask`.
    fn mixed_case(name: &str, mask: u64) -> String {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// `name` with the characters chosen by `mask` percent-encoded.
    fn percent_encoded(name: &str, mask: u64) -> String {
        name.bytes()
            .enumerate()
            .map(|(i, b)| {
                if mask >> (i % 64) & 1 == 1 {
                    format!("%{b:02X}")
                } else {
                    char::from(b).to_string()
                }
            })
            .collect()
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9-]{0,20}"
    }

    /// A host CloudFormation could send: S3's virtual-hosted, regional and China forms.
    fn cloudformation_host() -> impl Strategy<Value = String> {
        (
            // S3 bucket names never start with xn-- (that would be an IDNA label).
            label().prop_filter("not IDNA", |l| !l.starts_with("xn--")),
            prop::option::of("(us|eu|ap|sa|ca|me|af|il|cn)-[a-z]{4,9}-[1-9]"),
            any::<bool>(),
        )
            .prop_map(|(bucket, region, china)| {
                let region = region.map(|r| format!(".{r}")).unwrap_or_default();
                let tld = if china {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("{bucket}.s3{region}.{tld}")
            })
    }

    /// A host that is not under amazonaws.com or amazonaws.com.cn but looks like one.
    fn look_alike_host() -> impl Strategy<Value = String> {
        let tld = prop::sample::select(&["amazonaws.com", "amazonaws.com.cn"][..]);
        let evil = prop::sample::select(
            &[
                "evil.example",
                "evil",
                "localhost",
                "127.0.0.1.nip.io",
                "com",
                "amazonaws.com.evil",
            ][..],
        );
        prop_oneof![
            // s3.amazonaws.com.evil.example: the real domain as a prefix.
            (label(), tld.clone(), evil.clone()).prop_map(|(l, t, e)| format!("{l}.{t}.{e}")),
            // xamazonaws.com: glued to the domain, not a label under it.
            (label(), tld.clone()).prop_map(|(l, t)| format!("{l}{t}")),
            // amazonaws.comx, amazonaws.com-evil: glued after it.
            (tld.clone(), "[a-z0-9-]{1,8}").prop_map(|(t, g)| format!("{t}{g}")),
            // The absolute form with a trailing dot.
            (label(), tld.clone()).prop_map(|(l, t)| format!("{l}.{t}.")),
            // Another label in place of one of the domain's.
            (label(), "[a-z0-9]{1,12}")
                .prop_filter("not amazonaws", |(_, d)| d != "amazonaws")
                .prop_map(|(l, d)| format!("{l}.{d}.com")),
        ]
    }

    /// An IPv4 address in one of the notations WHATWG parsers accept.
    fn ipv4_literal() -> impl Strategy<Value = (Ipv4Addr, String)> {
        (any::<u32>(), 0..6u8).prop_map(|(n, form)| {
            let a = Ipv4Addr::from(n);
            let [o1, o2, o3, o4] = a.octets();
            let text = match form {
                0 => a.to_string(),
                1 => n.to_string(),
                2 => format!("0x{n:x}"),
                3 => format!("0{o1:o}.0{o2:o}.0{o3:o}.0{o4:o}"),
                4 => format!("0x{o1:X}.{o2}.0{o3:o}.{o4}"),
                _ => format!("{a}."),
            };
            (a, text)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn cloudformation_hosts_in_any_case_are_admitted_and_sent_lower_case(
            host in cloudformation_host(),
            mask in any::<u64>(),
            // No `.`/`..` segments: the parser resolves them (S3 keys from CloudFormation
            // have none).
            path in "(/[A-Za-z0-9_~-][A-Za-z0-9%._~-]{0,20}){1,3}",
            query in "[A-Za-z0-9%._~&=-]{0,60}",
        ) {
            let raw = format!("https://{}{path}?{query}", mixed_case(&host, mask));
            let url = ResponseUrl::admit(&raw, &none());
            prop_assert!(url.is_ok(), "{}: {:?}", raw, url);
            let url = url.unwrap();
            prop_assert_eq!(url.uri().host(), Some(host.as_str()));
            prop_assert_eq!(url.uri().to_string(), format!("https://{host}{path}?{query}"));
            prop_assert!(!url.redacted().contains('?'));
        }

        #[test]
        fn look_alike_hosts_are_refused_in_any_case_and_encoding(
            host in look_alike_host(),
            case in any::<u64>(),
            encode in prop_oneof![Just(0u64), any::<u64>()],
            extra in prop_oneof![Just(none()), Just(sink())],
        ) {
            let written = percent_encoded(&mixed_case(&host, case), encode);
            let raw = format!("https://{written}/k?X-Amz-Signature=s");
            match ResponseUrl::admit(&raw, &extra) {
                Err(ResponseUrlViolation::NotCloudFormation { why, .. }) => {
                    prop_assert_eq!(why, Refusal::Host, "{}", raw)
                }
                // A host the parser cannot read (an encoded byte it refuses) is malformed.
                Err(ResponseUrlViolation::Malformed(_)) => {}
                other => prop_assert!(false, "{} -> {:?}", raw, other),
            }
        }

        #[test]
        fn ipv4_literals_in_any_notation_are_refused(
            (addr, text) in ipv4_literal(),
            port in prop::option::of(1..=65535u16),
            scheme in prop::sample::select(&["https", "http"][..]),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let raw = format!("{scheme}://{text}{port}/k");
            match ResponseUrl::admit(&raw, &none()) {
                Err(ResponseUrlViolation::NotCloudFormation { why, origin }) => {
                    let expected = if scheme == "https" { Refusal::IpAddress } else { Refusal::Scheme };
                    prop_assert_eq!(why, expected, "{}", raw);
                    // The parser read the notation as the address it means.
                    prop_assert!(origin.contains(&addr.to_string()), "{} -> {}", raw, origin);
                }
                other => prop_assert!(false, "{} -> {:?}", raw, other),
            }
        }

        #[test]
        fn ipv6_literals_are_refused(bits in any::<u128>(), mapped in any::<u32>(), which in 0..3u8) {
            let host = match which {
                0 => format!("[{}]", Ipv6Addr::from(bits)),
                1 => format!("[::ffff:{}]", Ipv4Addr::from(mapped)),
                _ => format!("[{}]", Ipv6Addr::from(bits).to_ipv4_mapped().map_or_else(
                    || Ipv4Addr::from(mapped).to_ipv6_mapped().to_string(),
                    |v4| v4.to_ipv6_mapped().to_string(),
                )),
            };
            prop_assert_eq!(refused(&format!("https://{host}/k")), Some(Refusal::IpAddress));
        }

        #[test]
        fn user_info_is_always_refused(
            user in "[A-Za-z0-9._~!$&'()*+,;=%-]{0,12}",
            password in prop::option::of("[A-Za-z0-9._~!$&'()*+,;=%:-]{0,12}"),
            host in prop_oneof![
                cloudformation_host(),
                Just("127.0.0.1:9124".to_owned()),
                Just("127.0.0.1".to_owned()),
            ],
        ) {
            prop_assume!(!user.is_empty() || password.as_deref().is_some_and(|p| !p.is_empty()));
            let info = match &password {
                Some(p) => format!("{user}:{p}"),
                None => user.clone(),
            };
            let raw = format!("https://{info}@{host}/k");
            let got = ResponseUrl::admit(&raw, &sink());
            prop_assert!(
                matches!(got, Err(ResponseUrlViolation::UserInfo | ResponseUrlViolation::Malformed(_))),
                "{} -> {:?}", raw, got
            );
        }

        #[test]
        fn only_https_on_the_default_port(
            host in cloudformation_host(),
            scheme in "[a-z][a-z0-9+.-]{0,8}",
            port in 1..=65535u16,
        ) {
            let other_scheme = format!("{scheme}://{host}/k");
            prop_assert!(scheme == "https" || ResponseUrl::admit(&other_scheme, &none()).is_err(), "{}", other_scheme);
            let other_port = format!("https://{host}:{port}/k");
            let got = ResponseUrl::admit(&other_port, &none());
            if port == 443 {
                prop_assert!(got.is_ok());
            } else {
                prop_assert!(
                    matches!(got, Err(ResponseUrlViolation::NotCloudFormation { why: Refusal::Port, .. })),
                    "{} -> {:?}", other_port, got
                );
            }
        }

        /// Whatever the text, an admitted URL (no extra origins) is https to a name under
        /// CloudFormation's domains on the default port, as the HTTP client reads it.
        #[test]
        fn anything_admitted_goes_only_to_cloudformation_s_domains(
            parts in prop::collection::vec(prop_oneof![
                Just("https://"), Just("http://"), Just("s3"), Just("."), Just("amazonaws"),
                Just("com"), Just("cn"), Just("@"), Just(":"), Just("443"), Just("9124"),
                Just("/"), Just("\\"), Just("?"), Just("#"), Just("%2e"), Just("%40"),
                Just("127.0.0.1"), Just("[::1]"), Just("evil"), Just("\t"), Just("\u{3002}"),
                Just("xn--"), Just("-"), Just("0x7f"), Just("localhost"), Just(" "),
            ], 1..16),
        ) {
            let raw: String = parts.concat();
            if let Ok(url) = ResponseUrl::admit(&raw, &none()) {
                let uri = url.uri();
                prop_assert_eq!(uri.scheme_str(), Some("https"), "{}", raw);
                prop_assert_eq!(uri.port_u16(), None, "{}", raw);
                let host = uri.host().unwrap_or_default();
                prop_assert!(is_cloudformation_host(host), "{} -> {}", raw, host);
                prop_assert!(!uri.authority().is_some_and(|a| a.as_str().contains('@')), "{}", raw);
            }
        }
    }
}
