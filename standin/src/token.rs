//! `NextToken`s: opaque to the client, a listing's position bound to its operation and
//! server and sealed with a key only this stand-in holds.
//!
//! A token is URL-safe base64 (no padding) of `version, operation, server, after, tag`:
//! each text length-prefixed (two bytes, big-endian), `after` the last name or id the
//! previous page returned, `tag` eight bytes of SipHash keyed per stand-in instance over
//! everything before it. The position is a key, not an index, so a listing stays exact
//! while entries are added or removed between pages (the listing resumes after the key,
//! wherever it now sits). A token that does not decode, whose tag does not match (edited,
//! or issued by another stand-in), or that names another operation or server, is refused
//! with `InvalidNextTokenException`.

use std::hash::{BuildHasher, RandomState};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ApiError;

const VERSION: u8 = 1;
const TAG: usize = 8;

fn tag(key: &RandomState, payload: &[u8]) -> [u8; TAG] {
    key.hash_one(payload).to_be_bytes()
}

/// The token that resumes `operation` on `server` (`""` for ListServers) after `after`.
pub(crate) fn encode(key: &RandomState, operation: &str, server: &str, after: &str) -> String {
    let mut payload =
        Vec::with_capacity(1 + 6 + operation.len() + server.len() + after.len() + TAG);
    payload.push(VERSION);
    for part in [operation, server, after] {
        // Operation names, server ids, user names (<= 100) and external ids (<= 256) all
        // fit in two bytes of length.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        payload.extend_from_slice(&len.to_be_bytes());
        payload.extend_from_slice(&part.as_bytes()[..usize::from(len)]);
    }
    let sealed = tag(key, &payload);
    payload.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(payload)
}

fn invalid_token(why: &str) -> ApiError {
    ApiError {
        status: 400,
        kind: "InvalidNextTokenException",
        message: format!("Invalid NextToken: {why}"),
        extra: serde_json::json!({}),
    }
}

/// The key to resume after, when `token` was issued by this stand-in for `operation` on
/// `server`.
pub(crate) fn decode(
    key: &RandomState,
    token: &str,
    operation: &str,
    server: &str,
) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid_token("not a token this service issued"))?;
    if bytes.len() < 1 + TAG {
        return Err(invalid_token("not a token this service issued"));
    }
    let (payload, sealed) = bytes.split_at(bytes.len() - TAG);
    if tag(key, payload) != sealed {
        return Err(invalid_token("not a token this service issued"));
    }
    // Sealed by this instance, so well formed; read it carefully all the same.
    let malformed = || invalid_token("malformed");
    let (&version, mut rest) = payload.split_first().ok_or_else(malformed)?;
    if version != VERSION {
        return Err(malformed());
    }
    let mut parts = Vec::with_capacity(3);
    for _ in 0..3 {
        let (len, tail) = rest.split_at_checked(2).ok_or_else(malformed)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (text, tail) = tail.split_at_checked(len).ok_or_else(malformed)?;
        parts.push(std::str::from_utf8(text).map_err(|_| malformed())?);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    if parts[0] != operation {
        return Err(invalid_token("issued for another operation"));
    }
    if parts[1] != server {
        return Err(invalid_token("issued for another server"));
    }
    Ok(parts[2].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_operation_and_server() {
        let key = RandomState::new();
        let t = encode(&key, "ListUsers", "s-0123456789abcdef0", "bob");
        assert_eq!(
            decode(&key, &t, "ListUsers", "s-0123456789abcdef0").ok(),
            Some("bob".to_owned())
        );
        assert!(decode(&key, &t, "ListAccesses", "s-0123456789abcdef0").is_err());
        assert!(decode(&key, &t, "ListUsers", "s-00000000000000000").is_err());
        assert!(decode(&RandomState::new(), &t, "ListUsers", "s-0123456789abcdef0").is_err());
    }

    #[test]
    fn every_single_byte_change_is_refused() {
        let key = RandomState::new();
        let t = encode(&key, "ListServers", "", "s-0123456789abcdef0");
        let bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let edited = URL_SAFE_NO_PAD.encode(&b);
            assert!(
                decode(&key, &edited, "ListServers", "").is_err(),
                "byte {i}"
            );
        }
    }
}
