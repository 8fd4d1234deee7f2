//! `CFN_RESPONSE_ORIGINS`: the exact origins, besides CloudFormation's own, that a
//! custom resource's `ResponseURL` may point at (a local sink for demos and tests).
//!
//! Hosts are read by the same WHATWG URL parser that reads a `ResponseURL` (the `url`
//! crate), so an origin and a URL name the same host exactly when they would reach it:
//! `http://LOCALHOST:9124` is `http://localhost:9124`, and `http://2130706433:9124` is
//! `http://127.0.0.1:9124`. There are no wildcards and no suffixes: an origin matches
//! one scheme, one host and one port.

use std::fmt;

use url::{Host, Url};

/// `http` or `https`: the only schemes a response is ever PUT over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// One `scheme://host[:port]`, the port made explicit (the scheme's default when none
/// is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: Scheme,
    host: Host<String>,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginViolation {
    #[error("is not an absolute URL ({0})")]
    Malformed(String),
    #[error("must be http or https, not {0:?}")]
    Scheme(String),
    #[error("must not carry user info (a name or password before '@')")]
    UserInfo,
    #[error("must be scheme://host:port alone, without a path, query or fragment")]
    NotAnOrigin,
    #[error("must name one host: '*' is not a wildcard here, origins are matched exactly")]
    Wildcard,
    #[error("must have a port other than 0")]
    PortZero,
}

impl Origin {
    /// Reads `scheme://host[:port]` (one trailing `/` is tolerated).
    pub fn parse(raw: &str) -> Result<Self, OriginViolation> {
        let url = Url::parse(raw).map_err(|e| OriginViolation::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OriginViolation::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OriginViolation::UserInfo);
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(OriginViolation::NotAnOrigin);
        }
        if url.host_str().is_some_and(|h| h.contains('*')) {
            return Err(OriginViolation::Wildcard);
        }
        if url.port() == Some(0) {
            return Err(OriginViolation::PortZero);
        }
        Self::of(&url).ok_or(OriginViolation::NotAnOrigin)
    }

    /// The origin `url` would be sent to, when it is an http(s) URL with a host.
    pub fn of(url: &Url) -> Option<Self> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return None,
        };
        Some(Self {
            scheme,
            host: url.host()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn host(&self) -> &Host<String> {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// `scheme://host:port`, the port always written, an IPv6 host in brackets.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// The origins of `CFN_RESPONSE_ORIGINS` (none when it is unset: then only
/// CloudFormation's own URLs are answered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseOrigins(Vec<Origin>);

impl ResponseOrigins {
    /// Only CloudFormation's own URLs (what a deployed function runs with).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(origins: Vec<Origin>) -> Self {
        Self(origins)
    }

    /// Reads a comma-separated list; every bad entry is returned with its violation.
    pub fn parse(raw: &str) -> Result<Self, Vec<(String, OriginViolation)>> {
        let mut origins = Vec::new();
        let mut bad = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Origin::parse(entry) {
                Ok(o) => origins.push(o),
                Err(e) => bad.push((entry.to_owned(), e)),
            }
        }
        if bad.is_empty() {
            Ok(Self(origins))
        } else {
            Err(bad)
        }
    }

    pub fn contains(&self, origin: &Origin) -> bool {
        self.0.contains(origin)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Origin> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let o = Origin::parse("http://127.0.0.1:9124").unwrap();
        assert_eq!(o.to_string(), "http://127.0.0.1:9124");
        assert_eq!(o.scheme(), Scheme::Http);
        assert_eq!(o.port(), 9124);
        assert_eq!(
            Origin::parse("https://Sink.Example/").unwrap().to_string(),
            "https://sink.example:443",
            "host lower-cased, default port made explicit, one trailing / tolerated"
        );
        assert_eq!(
            Origin::parse("http://[::1]:8080").unwrap().to_string(),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn the_same_host_written_another_way_is_the_same_origin() {
        let canonical = Origin::parse("http://127.0.0.1:9124").unwrap();
        for other in [
            "http://2130706433:9124",
            "http://0x7f000001:9124",
            "http://127.1:9124",
            "HTTP://127.0.0.1:9124/",
        ] {
            assert_eq!(Origin::parse(other).unwrap(), canonical, "{other}");
        }
        assert_ne!(Origin::parse("http://127.0.0.2:9124").unwrap(), canonical);
        assert_ne!(Origin::parse("https://127.0.0.1:9124").unwrap(), canonical);
        assert_ne!(Origin::parse("http://127.0.0.1:9125").unwrap(), canonical);
        assert_ne!(Origin::parse("http://localhost:9124").unwrap(), canonical);
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        let cases = [
            ("127.0.0.1:9124", "not a URL: a scheme of its own"),
            ("localhost", "relative"),
            ("*", "relative"),
            ("ftp://127.0.0.1:21", "scheme"),
            ("file:///tmp", "scheme"),
            ("http://user@127.0.0.1:9124", "user info"),
            ("http://u:p@127.0.0.1:9124", "user info"),
            ("http://127.0.0.1:9124/cfn-response", "path"),
            ("http://127.0.0.1:9124?x=1", "query"),
            ("http://127.0.0.1:9124#x", "fragment"),
            ("http://*.example:9124", "wildcard"),
            ("http://127.0.0.1:99999", "port out of range"),
            ("http://127.0.0.1:0", "port 0"),
            ("http://", "no host"),
        ];
        for (raw, why) in cases {
            assert!(Origin::parse(raw).is_err(), "{raw} ({why})");
        }
        assert_eq!(
            Origin::parse("http://u@h:1"),
            Err(OriginViolation::UserInfo)
        );
        assert_eq!(
            Origin::parse("ftp://h:1"),
            Err(OriginViolation::Scheme("ftp".into()))
        );
    }

    #[test]
    fn a_list_reports_every_bad_entry() {
        let ok = ResponseOrigins::parse(" http://127.0.0.1:9124 , ,https://[::1]:8443 ").unwrap();
        assert_eq!(
            ok.iter().map(Origin::to_string).collect::<Vec<_>>(),
            ["http://127.0.0.1:9124", "https://[::1]:8443"]
        );
        assert!(ResponseOrigins::parse("").unwrap().is_empty());
        let bad = ResponseOrigins::parse("http://a:1,ftp://b,http://c:1/x").unwrap_err();
        assert_eq!(
            bad.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(),
            ["ftp://b", "http://c:1/x"]
        );
    }
}
