//! Resource indicators (RFC 8707): which protected resources a token is meant for, and so its
//! audience. Values and rules only; the authorization and token flows apply them.
//!
//! - A `resource` is an absolute URI without a fragment (§2), repeatable; anything else is
//!   `invalid_target`.
//! - The server knows a resource when it is the issuer's own API (named by the issuer
//!   identifier) or among [`EngineConfig::resources`]; a client may ask only for those of
//!   [`ClientPolicy::resources`] (absent: all of them). Otherwise `invalid_target` (§2).
//! - The resources of the authorization request are the grant's: kept with the code and the
//!   refresh tokens of its family. A token request may narrow them to a subset (§2.2); one
//!   beyond the grant is `invalid_target`. A grant that named none leaves the token request
//!   free to name any resource the client may have.
//! - An access token for resources has them as its audience (`aud`, RFC 9068 §2.2 and RFC 7662
//!   §2.2: one string, or an array for several). Without resources the audience is the
//!   client's `access_token_audience`, else the issuer: what every token had before.
//!
//! [`ClientPolicy::resources`]: crate::model::ClientPolicy::resources

use doorward_proto::{ErrorCode, OAuthError, ResourceUri};
use serde_json::{json, Value};

use crate::config::EngineConfig;
use crate::model::Client;

/// The most `resource` parameters one request may carry.
pub const MAX_RESOURCES: usize = 16;

/// The resources a request names, parsed (RFC 8707 §2) and checked against what the server
/// knows and `client` may have; duplicates are kept once, in order.
pub(crate) fn requested(
    config: &EngineConfig,
    client: &Client,
    values: &[&str],
) -> Result<Vec<ResourceUri>, OAuthError> {
    if values.len() > MAX_RESOURCES {
        return Err(invalid_target(format!(
            "at most {MAX_RESOURCES} resource parameters"
        )));
    }
    let mut resources: Vec<ResourceUri> = Vec::with_capacity(values.len());
    for value in values {
        let resource =
            ResourceUri::parse(value).map_err(|e| invalid_target(format!("resource: {e}")))?;
        if !allowed(config, client, &resource) {
            return Err(invalid_target(
                "a resource is unknown to this server or not allowed to this client",
            ));
        }
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    Ok(resources)
}

/// The audience of an access token issued at the token endpoint from a grant of `granted`
/// resources, for the `resource` parameters `values` of the token request (RFC 8707 §2.2):
/// none named keeps the grant's; named ones must be within it (any the client may have when
/// the grant named none).
pub(crate) fn narrowed(
    config: &EngineConfig,
    client: &Client,
    granted: &[ResourceUri],
    values: &[&str],
) -> Result<Vec<ResourceUri>, OAuthError> {
    let asked = requested(config, client, values)?;
    if asked.is_empty() {
        // The grant's, still known and allowed (the configuration may have changed since).
        if granted.iter().any(|r| !allowed(config, client, r)) {
            return Err(invalid_target(
                "a resource of this grant is no longer allowed to this client",
            ));
        }
        return Ok(granted.to_vec());
    }
    if !granted.is_empty() && asked.iter().any(|r| !granted.contains(r)) {
        return Err(invalid_target(
            "a resource beyond those of the authorization grant (RFC 8707 section 2.2)",
        ));
    }
    Ok(asked)
}

/// Whether the server knows `resource` and `client` may ask for it.
pub fn allowed(config: &EngineConfig, client: &Client, resource: &ResourceUri) -> bool {
    if is_own_api(config, resource) {
        return true;
    }
    config.resources.contains(resource)
        && client
            .policy
            .resources
            .as_ref()
            .is_none_or(|mine| mine.contains(resource))
}

/// The issuer's own API (its UserInfo and Eternaltwin endpoints): named by the issuer
/// identifier itself.
pub fn is_own_api(config: &EngineConfig, resource: &ResourceUri) -> bool {
    resource.as_str() == config.issuer
}

/// The audience of an access token narrowed to `resources` (none: the default audience, the
/// client's `access_token_audience`, else the issuer).
pub fn audience(resources: &[ResourceUri], client: &Client, issuer: &str) -> Vec<String> {
    if resources.is_empty() {
        let default = client.policy.access_token_audience.as_deref();
        vec![default.unwrap_or(issuer).to_owned()]
    } else {
        resources.iter().map(|r| r.as_str().to_owned()).collect()
    }
}

/// An audience as the `aud` claim or member carries it: a string for one, an array for several
/// (RFC 7519 §4.1.3).
pub fn aud_value(audience: &[String]) -> Value {
    match audience {
        [one] => json!(one),
        many => json!(many),
    }
}

/// Whether an access token narrowed to `resources` may be used at the issuer's own API: one
/// with the default audience (as before resource indicators), or one naming the issuer.
pub fn for_own_api(config: &EngineConfig, resources: &[ResourceUri]) -> bool {
    resources.is_empty() || resources.iter().any(|r| is_own_api(config, r))
}

fn invalid_target(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientPolicy, ClientSource};

    const API: &str = "https://api.example/";
    const OTHER: &str = "https://other.example/v1";

    fn config() -> EngineConfig {
        EngineConfig {
            issuer: "https://id.example".into(),
            resources: vec![r(API), r(OTHER)],
            ..EngineConfig::default()
        }
    }

    fn r(s: &str) -> ResourceUri {
        ResourceUri::parse(s).expect("a valid resource")
    }

    fn client(resources: Option<&[&str]>) -> Client {
        Client {
            id: uuid::Uuid::nil(),
            key: "app@clients".into(),
            display_name: "App".into(),
            app_uri: "https://app.example".into(),
            redirect_uris: vec![],
            secret_hash: None,
            previous_secret: None,
            policy: ClientPolicy {
                resources: resources.map(|list| list.iter().map(|s| r(s)).collect()),
                ..ClientPolicy::default()
            },
            source: ClientSource::Config,
            created_at: 0,
        }
    }

    fn code(result: Result<Vec<ResourceUri>, OAuthError>) -> Option<ErrorCode> {
        result.err().map(|e| e.code)
    }

    #[test]
    fn known_resources_are_granted_once_each_in_order() {
        let got = requested(&config(), &client(None), &[OTHER, API, OTHER]);
        assert_eq!(got, Ok(vec![r(OTHER), r(API)]));
        // The issuer's own API is always known, to every client.
        let own = requested(&config(), &client(Some(&[API])), &["https://id.example"]);
        assert_eq!(own, Ok(vec![r("https://id.example")]));
        assert_eq!(requested(&config(), &client(None), &[]), Ok(vec![]));
    }

    #[test]
    fn malformed_unknown_and_forbidden_resources_are_invalid_target() {
        let target = Some(ErrorCode::InvalidTarget);
        let c = client(Some(&[API]));
        for bad in [
            "/relative",
            "https://api.example/#frag",
            "https://unknown.example/",
            // Known to the server, not allowed to this client.
            OTHER,
            // Exact strings: another spelling is another resource.
            "https://api.example",
            "https://id.example/",
        ] {
            assert_eq!(code(requested(&config(), &c, &[API, bad])), target, "{bad}");
        }
        let many = vec![API; MAX_RESOURCES + 1];
        assert_eq!(code(requested(&config(), &c, &many)), target);
    }

    #[test]
    fn a_token_request_narrows_within_the_grant() {
        let (cfg, c) = (config(), client(None));
        let granted = [r(API), r(OTHER)];
        assert_eq!(narrowed(&cfg, &c, &granted, &[]), Ok(granted.to_vec()));
        assert_eq!(narrowed(&cfg, &c, &granted, &[OTHER]), Ok(vec![r(OTHER)]));
        // Beyond the grant, though known and allowed: RFC 8707 §2.2.
        assert_eq!(
            code(narrowed(&cfg, &c, &[r(API)], &[OTHER])),
            Some(ErrorCode::InvalidTarget)
        );
        // A grant that named none: any the client may have.
        assert_eq!(narrowed(&cfg, &c, &[], &[OTHER]), Ok(vec![r(OTHER)]));
        assert_eq!(narrowed(&cfg, &c, &[], &[]), Ok(vec![]));
        // A resource the configuration no longer has is not issued from an older grant.
        let gone = [r("https://gone.example/")];
        assert_eq!(
            code(narrowed(&cfg, &c, &gone, &[])),
            Some(ErrorCode::InvalidTarget)
        );
    }

    #[test]
    fn the_audience_is_the_resources_else_the_default() {
        let mut c = client(None);
        assert_eq!(
            audience(&[], &c, "https://id.example"),
            ["https://id.example"]
        );
        c.policy.access_token_audience = Some("https://legacy.example".into());
        assert_eq!(
            audience(&[], &c, "https://id.example"),
            ["https://legacy.example"]
        );
        assert_eq!(audience(&[r(API)], &c, "https://id.example"), [API]);
        assert_eq!(aud_value(&[API.to_owned()]), json!(API));
        assert_eq!(
            aud_value(&[API.to_owned(), OTHER.to_owned()]),
            json!([API, OTHER])
        );
    }

    #[test]
    fn the_own_api_takes_default_tokens_and_tokens_naming_it() {
        let cfg = config();
        assert!(for_own_api(&cfg, &[]));
        assert!(for_own_api(&cfg, &[r(API), r("https://id.example")]));
        assert!(!for_own_api(&cfg, &[r(API)]));
    }
}
