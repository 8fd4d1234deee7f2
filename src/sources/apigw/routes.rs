//! The API's routes, matched on the request path itself.
//!
//! Matching the path (not `resource` / `routeKey` / `pathParameters`) makes the function
//! answer the same behind a `{proxy+}` / `$default` integration as behind explicit
//! routes. The path is split on its raw `/` first and each segment is then decoded
//! exactly once: `alice%40example.com` is `alice@example.com`, and `%2F` stays inside
//! its segment (where it makes an invalid name) instead of becoming a new segment.

use percent_encoding::percent_decode_str;

use crate::domain::TargetKind;

/// The routes, as the 404 body names them.
pub const ROUTES: &str = "GET|PUT /servers/{ServerId}/users/{UserName}, \
                          GET|PUT /servers/{ServerId}/accesses/{ExternalId}";

/// The methods every route accepts (the `Allow` header of a 405).
pub const ALLOW: &str = "GET, PUT";

/// The route's template for a kind of target.
pub fn pattern(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::User => "/servers/{ServerId}/users/{UserName}",
        TargetKind::Access => "/servers/{ServerId}/accesses/{ExternalId}",
    }
}

/// A matched route with its path parameters, decoded but not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: TargetKind,
    pub server: String,
    pub subject: String,
}

/// One path segment, percent-decoded once. Invalid UTF-8 becomes U+FFFD, which no
/// identifier admits, so it is reported as an invalid value rather than lost.
fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Matches `path` against the routes. A REST API called on its execute-api address
/// and an HTTP API on a named stage put the stage name in front of the path
/// (`/prod/servers/...`); that one leading segment is dropped when it is the stage.
pub fn route(path: &str, stage: Option<&str>) -> Option<Route> {
    let path = path.strip_prefix('/')?;
    let mut segments: Vec<&str> = path.split('/').collect();
    // One trailing slash is tolerated: `/servers/s-1/users/alice/`.
    if segments.len() > 1 && segments.last() == Some(&"") {
        segments.pop();
    }
    if let (5, Some(stage)) = (segments.len(), stage.filter(|s| *s != "$default"))
        && segments[0] == stage
    {
        segments.remove(0);
    }
    let kind = match segments.as_slice() {
        ["servers", _, "users", _] => TargetKind::User,
        ["servers", _, "accesses", _] => TargetKind::Access,
        _ => return None,
    };
    Some(Route {
        kind,
        server: decode(segments[1]),
        subject: decode(segments[3]),
    })
}

/// The route from an explicit API Gateway route (`/servers/{ServerId}/users/{UserName}`)
/// and its path parameters, for an event whose path does not match by itself. Each
/// parameter is decoded once, as a path segment would be.
pub fn from_template(template: &str, params: &[(String, String)]) -> Option<Route> {
    let kind = [TargetKind::User, TargetKind::Access]
        .into_iter()
        .find(|k| pattern(*k) == template)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| decode(v))
    };
    Some(Route {
        kind,
        server: param("ServerId")?,
        subject: param(kind.field())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "s-0123456789abcdef0";

    fn user(subject: &str) -> Option<Route> {
        Some(Route {
            kind: TargetKind::User,
            server: S.into(),
            subject: subject.into(),
        })
    }

    #[test]
    fn user_and_access_routes() {
        assert_eq!(
            route(&format!("/servers/{S}/users/alice"), None),
            user("alice")
        );
        assert_eq!(
            route(
                &format!("/servers/{S}/accesses/S-1-5-21-1"),
                Some("$default")
            ),
            Some(Route {
                kind: TargetKind::Access,
                server: S.into(),
                subject: "S-1-5-21-1".into()
            })
        );
        assert_eq!(
            route(&format!("/servers/{S}/users/alice/"), None),
            user("alice")
        );
    }

    #[test]
    fn segments_are_decoded_once_after_splitting() {
        assert_eq!(
            route(&format!("/servers/{S}/users/dave%40example.com"), None),
            user("dave@example.com")
        );
        // An encoded slash stays in the name (and makes it invalid later).
        assert_eq!(
            route(&format!("/servers/{S}/users/alice%2Fbob"), None),
            user("alice/bob")
        );
        // Decoded once only: %2540 is the literal text %40.
        assert_eq!(
            route(&format!("/servers/{S}/users/a%2540b"), None),
            user("a%40b")
        );
        assert_eq!(
            route(&format!("/servers/{S}/users/%FF%FE"), None),
            user("\u{FFFD}\u{FFFD}")
        );
    }

    #[test]
    fn stage_prefix_is_dropped_only_when_it_is_the_stage() {
        assert_eq!(
            route(&format!("/prod/servers/{S}/users/alice"), Some("prod")),
            user("alice")
        );
        assert_eq!(
            route(&format!("/prod/servers/{S}/users/alice"), Some("dev")),
            None
        );
        assert_eq!(route(&format!("/prod/servers/{S}/users/alice"), None), None);
        assert_eq!(
            route(
                &format!("/$default/servers/{S}/users/alice"),
                Some("$default")
            ),
            None
        );
    }

    #[test]
    fn explicit_routes_with_path_parameters() {
        let params = |s: &str, u: &str| {
            vec![
                ("ServerId".to_owned(), s.to_owned()),
                ("UserName".to_owned(), u.to_owned()),
            ]
        };
        assert_eq!(
            from_template(
                "/servers/{ServerId}/users/{UserName}",
                &params(S, "dave%40example.com")
            ),
            user("dave@example.com")
        );
        assert_eq!(from_template("/{proxy+}", &params(S, "alice")), None);
        assert_eq!(
            from_template(
                "/servers/{ServerId}/accesses/{ExternalId}",
                &params(S, "alice")
            ),
            None
        );
        assert_eq!(
            from_template("/servers/{ServerId}/users/{UserName}", &[]),
            None
        );
    }

    #[test]
    fn anything_else_is_no_route() {
        for path in [
            "",
            "/",
            "/servers",
            &format!("/servers/{S}"),
            &format!("/servers/{S}/users"),
            &format!("/servers/{S}/groups/x"),
            &format!("/servers/{S}/users/alice/extra"),
            &format!("servers/{S}/users/alice"),
            "/hello/world",
        ] {
            assert_eq!(route(path, Some("prod")), None, "{path}");
        }
        // An empty segment still matches: the empty id is then reported as invalid.
        assert_eq!(
            route("/servers//users/alice", None).map(|r| r.server),
            Some(String::new())
        );
    }
}
