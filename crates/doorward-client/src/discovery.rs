//! Authorization-server metadata (OIDC Discovery 1.0, RFC 8414) and the provider's key set,
//! the metadata fetched once and cached, the key set cached for its HTTP lifetime (within
//! bounds) and fetched again, at most once per cooldown, when a token names a key it lacks.

use std::sync::Arc;

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use url::Url;

use crate::error::DiscoveryError;
use crate::http::{Channel, Http, Method, RawResponse};

/// The metadata members the client uses; the rest is kept in `extra`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<Url>,
    #[serde(default)]
    pub token_endpoint: Option<Url>,
    #[serde(default)]
    pub userinfo_endpoint: Option<Url>,
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    #[serde(default)]
    pub introspection_endpoint: Option<Url>,
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
    /// RFC 8628 §4.
    #[serde(default)]
    pub device_authorization_endpoint: Option<Url>,
    /// RFC 9126 §5.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<Url>,
    /// RFC 9126 §5: every authorization request must be pushed.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9207 §3: the provider adds `iss` to its authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Fetches the metadata of `issuer`: `/.well-known/openid-configuration` first (OIDC Discovery
/// §4), then RFC 8414's `/.well-known/oauth-authorization-server` with the issuer's path after it.
pub(crate) async fn fetch_metadata(http: &Http, issuer: &str) -> Result<Metadata, DiscoveryError> {
    let trimmed = issuer.trim_end_matches('/');
    let oidc = parse_url(&format!("{trimmed}/.well-known/openid-configuration"))?;
    let response = get(http, oidc.clone()).await?;
    let (url, response) = if response.status.as_u16() == 404 {
        let base = parse_url(issuer)?;
        let path = base.path().trim_end_matches('/').to_owned();
        let mut rfc8414 = base;
        rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        let response = get(http, rfc8414.clone()).await?;
        (rfc8414, response)
    } else {
        (oidc, response)
    };
    let metadata: Metadata = json_document(&url, &response)?;
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            got: metadata.issuer,
        });
    }
    Ok(metadata)
}

fn parse_url(value: &str) -> Result<Url, DiscoveryError> {
    Url::parse(value).map_err(|_| DiscoveryError::NotJson {
        url: value.to_owned(),
        content_type: "(not a URL)".into(),
    })
}

async fn get(http: &Http, url: Url) -> Result<RawResponse, DiscoveryError> {
    Ok(http
        .send(Channel::Metadata, Http::request(Method::GET, url))
        .await?)
}

fn json_document<T: serde::de::DeserializeOwned>(
    url: &Url,
    response: &RawResponse,
) -> Result<T, DiscoveryError> {
    if !response.status.is_success() {
        return Err(DiscoveryError::Status {
            url: url.to_string(),
            status: response.status.as_u16(),
        });
    }
    if !response.is_json() {
        return Err(DiscoveryError::NotJson {
            url: url.to_string(),
            content_type: response.media_type(),
        });
    }
    response
        .json()
        .map_err(|source| DiscoveryError::InvalidDocument {
            url: url.to_string(),
            source,
        })
}

/// The provider's signing keys. Keys of a type or curve this client cannot use are skipped, so
/// one odd key does not hide the others.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Jwk>,
}

impl KeySet {
    pub(crate) fn parse(document: &Value) -> Self {
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        Self { keys }
    }
}

/// How long a fetched key set is trusted, in seconds, when its response names no lifetime.
pub(crate) const JWKS_DEFAULT_LIFETIME: i64 = 600;
/// The shortest lifetime honoured: `max-age=0` or `no-store` must not mean a fetch per token.
pub(crate) const JWKS_MIN_LIFETIME: i64 = 60;
/// The longest lifetime honoured: a key the provider withdraws stops being trusted within an
/// hour, whatever its `Cache-Control` said.
pub(crate) const JWKS_MAX_LIFETIME: i64 = 3600;

/// The freshness lifetime of a key-set response (RFC 9111 §4.2.1): its `Cache-Control: max-age`
/// less its `Age` (§4.2.3), `no-store` and `no-cache` counting as zero, within
/// [`JWKS_MIN_LIFETIME`, `JWKS_MAX_LIFETIME`]; [`JWKS_DEFAULT_LIFETIME`] without `max-age`.
pub(crate) fn key_set_lifetime(headers: &reqwest::header::HeaderMap) -> i64 {
    use reqwest::header::{AGE, CACHE_CONTROL};
    let mut max_age: Option<i64> = None;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            max_age = Some(0);
            break;
        }
        if name.eq_ignore_ascii_case("max-age") {
            // RFC 9111 §1.2.2: a delta too large to represent counts as a very long time.
            let seconds = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .map(|v| v.parse::<i64>().unwrap_or(i64::MAX));
            if let Some(seconds) = seconds {
                max_age = Some(max_age.map_or(seconds, |m| m.min(seconds)));
            }
        }
    }
    let Some(max_age) = max_age else {
        return JWKS_DEFAULT_LIFETIME;
    };
    let age = headers
        .get(AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok())
        .unwrap_or(0);
    max_age
        .saturating_sub(age)
        .clamp(JWKS_MIN_LIFETIME, JWKS_MAX_LIFETIME)
}

/// The cached key set and the lock that makes concurrent refetches one fetch. Times are the
/// client's clock (Unix seconds), so tests move time instead of sleeping.
#[derive(Debug, Default)]
pub(crate) struct JwksCache {
    current: RwLock<Option<Fetched>>,
    fetch: Mutex<u64>,
}

#[derive(Clone, Debug)]
struct Fetched {
    generation: u64,
    fetched_at: i64,
    expires_at: i64,
    keys: Arc<KeySet>,
}

impl JwksCache {
    /// The cached key set while it is fresh; fetched when there is none or it has expired, so
    /// a key the provider withdrew stops verifying once the set's lifetime is over.
    pub(crate) async fn get(
        &self,
        http: &Http,
        url: &Url,
        now: i64,
    ) -> Result<(u64, Arc<KeySet>), DiscoveryError> {
        let seen = match self.current.read().await.clone() {
            Some(current) if now < current.expires_at => {
                return Ok((current.generation, current.keys))
            }
            Some(stale) => stale.generation,
            None => 0,
        };
        self.refresh(http, url, seen, 0, now).await
    }

    /// Fetches the key set again unless another caller already replaced generation `seen`
    /// with a fresh one, or the current one was fetched less than `cooldown` seconds ago
    /// (tokens with an unknown `kid` may come from anyone: they must not make the client fetch
    /// at will).
    pub(crate) async fn refresh(
        &self,
        http: &Http,
        url: &Url,
        seen: u64,
        cooldown: i64,
        now: i64,
    ) -> Result<(u64, Arc<KeySet>), DiscoveryError> {
        let mut generation = self.fetch.lock().await;
        if let Some(current) = self.current.read().await.clone() {
            let fresh = now < current.expires_at;
            let replaced = current.generation > seen && fresh;
            let cooling = fresh && now.saturating_sub(current.fetched_at) < cooldown;
            if replaced || cooling {
                return Ok((current.generation, current.keys));
            }
        }
        let response = get(http, url.clone()).await?;
        let document: Value = json_document(url, &response)?;
        *generation += 1;
        let fetched = Fetched {
            generation: *generation,
            fetched_at: now,
            expires_at: now.saturating_add(key_set_lifetime(&response.headers)),
            keys: Arc::new(KeySet::parse(&document)),
        };
        *self.current.write().await = Some(fetched.clone());
        Ok((fetched.generation, fetched.keys))
    }
}
