//! Authorization-server metadata (OIDC Discovery 1.0, RFC 8414) and the provider's key set,
//! both fetched once and cached; the key set again when an ID token names a key it lacks.

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

/// The cached key set and the lock that makes concurrent refetches one fetch.
#[derive(Debug, Default)]
pub(crate) struct JwksCache {
    current: RwLock<Option<Fetched>>,
    fetch: Mutex<u64>,
}

#[derive(Clone, Debug)]
struct Fetched {
    generation: u64,
    at: std::time::Instant,
    keys: Arc<KeySet>,
}

impl JwksCache {
    /// The cached key set, fetched if there is none yet.
    pub(crate) async fn get(
        &self,
        http: &Http,
        url: &Url,
    ) -> Result<(u64, Arc<KeySet>), DiscoveryError> {
        if let Some(current) = self.current.read().await.clone() {
            return Ok((current.generation, current.keys));
        }
        self.refresh(http, url, 0, std::time::Duration::ZERO).await
    }

    /// Fetches the key set again unless another caller already replaced generation `seen`,
    /// or the current one is younger than `cooldown` (tokens from untrusted callers must not
    /// make the client fetch at will).
    pub(crate) async fn refresh(
        &self,
        http: &Http,
        url: &Url,
        seen: u64,
        cooldown: std::time::Duration,
    ) -> Result<(u64, Arc<KeySet>), DiscoveryError> {
        let mut generation = self.fetch.lock().await;
        if let Some(current) = self.current.read().await.clone() {
            if current.generation > seen || current.at.elapsed() < cooldown {
                return Ok((current.generation, current.keys));
            }
        }
        let response = get(http, url.clone()).await?;
        let document: Value = json_document(url, &response)?;
        *generation += 1;
        let fresh = Fetched {
            generation: *generation,
            at: std::time::Instant::now(),
            keys: Arc::new(KeySet::parse(&document)),
        };
        *self.current.write().await = Some(fresh.clone());
        Ok((fresh.generation, fresh.keys))
    }
}
