//! Calls with a bearer token (RFC 6750 §2.1): [`Authorized`], a token in use that is refreshed
//! shortly before it expires, its API verbs, and the userinfo endpoint (OIDC Core §5.3).

use std::fmt;
use std::sync::Arc;

use reqwest::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use super::{Client, Endpoint, TokenUpdate};
use crate::config::TokenPlacement;
use crate::error::{ApiError, RefreshError};
use crate::http::{Channel, Http, Method, RawResponse};
use crate::id_token;
use crate::token::Token;

/// A token in use: API calls with it, refreshed shortly before it expires (then the client's
/// `on_token_updated` hook runs). Clones share the token.
///
/// ```
/// use doorward_client::{Client, ProviderConfig, Token};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use axum::routing::{get, post};
/// # use serde_json::json;
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let origin = format!("http://{}", listener.local_addr()?);
/// # let provider = axum::Router::new()
/// #     .route("/token", post(|| async {
/// #         axum::Json(json!({"access_token": "fresh", "token_type": "Bearer", "expires_in": 3600}))
/// #     }))
/// #     .route("/api/me", get(|headers: axum::http::HeaderMap| async move {
/// #         axum::Json(json!({"authorization": headers["authorization"].to_str().unwrap()}))
/// #     }));
/// # tokio::spawn(async move { axum::serve(listener, provider).await });
/// let mut config = ProviderConfig::oauth2(
///     format!("{origin}/authorize").parse()?,
///     format!("{origin}/token").parse()?,
///     "my-app",
/// )
/// .with_secret("my-secret");
/// config.api_base = Some(format!("{origin}/api/").parse()?);
/// let client = Client::builder(config).build()?;
///
/// // A token kept from an earlier sign-in, expired: the first call refreshes it.
/// let token = Token::new("stale", Some(0)).with_refresh_token("refresh-me");
/// let api = client.authorized(token);
/// let me: serde_json::Value = api.get("me").await?.error_for_status()?.json()?;
/// assert_eq!(me["authorization"], "Bearer fresh");
/// assert_eq!(api.token().await?.refresh_token(), Some("refresh-me"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Authorized {
    client: Client,
    token: Arc<Mutex<Token>>,
    /// Run after the client's own hook: the registry's token store
    /// ([`crate::Registry::authorized`]).
    on_update: Option<super::TokenHook>,
}

impl fmt::Debug for Authorized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorized")
            .field("client", &self.client.inner.name)
            .finish_non_exhaustive()
    }
}

impl Authorized {
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The current token, refreshed first when it expires within the refresh margin and can
    /// be refreshed. Concurrent callers share one refresh.
    pub async fn token(&self) -> Result<Token, RefreshError> {
        let mut token = self.token.lock().await;
        let margin = self.client.inner.config.refresh_margin;
        if token.refresh_token().is_some() && token.expires_within(self.client.now(), margin) {
            self.refresh_locked(&mut token).await?;
        }
        Ok(token.clone())
    }

    /// Refreshes now, whatever the expiry.
    pub async fn refresh(&self) -> Result<Token, RefreshError> {
        let mut token = self.token.lock().await;
        self.refresh_locked(&mut token).await?;
        Ok(token.clone())
    }

    /// Refreshes the token held under the lock and tells the `on_token_updated` hook.
    async fn refresh_locked(&self, token: &mut Token) -> Result<(), RefreshError> {
        let fresh = self.client.refresh(token).await?;
        let previous = std::mem::replace(token, fresh.clone());
        let update = TokenUpdate {
            previous,
            current: fresh,
        };
        if let Some(hook) = &self.client.inner.on_token_updated {
            hook(update.clone()).await;
        }
        if let Some(hook) = &self.on_update {
            hook(update).await;
        }
        Ok(())
    }

    pub async fn get(&self, path: &str) -> Result<ApiResponse, ApiError> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Body) -> Result<ApiResponse, ApiError> {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Body) -> Result<ApiResponse, ApiError> {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<ApiResponse, ApiError> {
        self.request(Method::DELETE, path, None).await
    }

    /// A call to `path`, relative to the provider's API base (an absolute URL must be on the
    /// same origin; with no API base configured, `path` must be an absolute URL).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<ApiResponse, ApiError> {
        let base = &self.client.inner.config.api_base;
        let url = match (Url::parse(path), base) {
            (Ok(url), _) => url,
            (Err(_), Some(base)) => base
                .join(path)
                .map_err(|_| ApiError::BadPath(path.to_owned()))?,
            (Err(_), None) => return Err(ApiError::BadPath(path.to_owned())),
        };
        // The token goes to the provider's API only: not to another origin named by an
        // absolute URL or a `//host` path (RFC 6750 §5.2: do not hand bearer tokens around).
        if base
            .as_ref()
            .is_some_and(|base| base.origin() != url.origin())
        {
            return Err(ApiError::BadPath(path.to_owned()));
        }
        let token = self.token().await?;
        let response = self.client.bearer_call(method, url, &token, body).await?;
        Ok(ApiResponse {
            status: response.status.as_u16(),
            headers: response.headers,
            body: response.body,
        })
    }

    /// The userinfo endpoint's claims with the current token.
    pub async fn userinfo(&self) -> Result<UserInfo, ApiError> {
        let token = self.token().await?;
        self.client.userinfo(&token).await
    }
}

impl Client {
    /// A handle that calls the provider's API with this token, refreshing it when needed.
    pub fn authorized(&self, token: Token) -> Authorized {
        Authorized {
            client: self.clone(),
            token: Arc::new(Mutex::new(token)),
            on_update: None,
        }
    }

    /// [`Client::authorized`] that also tells `on_update` of each refresh.
    pub(crate) fn authorized_saving(
        &self,
        token: Token,
        on_update: super::TokenHook,
    ) -> Authorized {
        Authorized {
            on_update: Some(on_update),
            ..self.authorized(token)
        }
    }

    /// The userinfo endpoint's claims (OIDC Core §5.3), checked to be about the ID token's
    /// subject (§5.3.2).
    pub async fn userinfo(&self, token: &Token) -> Result<UserInfo, ApiError> {
        let url = self.endpoint(Endpoint::Userinfo).await?;
        let response = self.bearer_call(Method::GET, url, token, None).await?;
        check_bearer_status(&response)?;
        if response.media_type() == "application/jwt" {
            return Err(ApiError::UnexpectedResponse(
                "signed userinfo responses are not supported".into(),
            ));
        }
        let claims: Map<String, Value> = response.json().map_err(ApiError::Json)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::UnexpectedResponse("the userinfo response has no sub".into()))?
            .to_owned();
        if let Some(expected) = token.id_token().and_then(id_token::unverified_subject) {
            if expected != subject {
                return Err(ApiError::SubjectMismatch {
                    expected,
                    got: subject,
                });
            }
        }
        Ok(UserInfo { subject, claims })
    }

    /// A call with `Authorization: Bearer` (RFC 6750 §2.1), or for a DPoP-bound token
    /// (`token_type` `DPoP`) `Authorization: DPoP` and a proof for this call carrying the
    /// token's hash (RFC 9449 §7.1), retried once with the nonce of a `use_dpop_nonce` answer
    /// (§9).
    async fn bearer_call(
        &self,
        method: Method,
        url: Url,
        token: &Token,
        body: Option<Body>,
    ) -> Result<RawResponse, ApiError> {
        let dpop = if token.token_type().eq_ignore_ascii_case("dpop") {
            Some(self.inner.dpop.as_ref().ok_or_else(|| {
                ApiError::UnexpectedResponse(
                    "the token is DPoP-bound and this client has no DPoP key".into(),
                )
            })?)
        } else {
            None
        };
        let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
        let placement = match dpop {
            Some(_) => TokenPlacement::Header,
            None => self.inner.config.token_placement,
        };
        let (url, body) = place_token(placement, &method, url, body, token.access_token())?;
        let mut attempt = 0;
        loop {
            let mut request = Http::request(method.clone(), url.clone());
            match placement {
                TokenPlacement::Header => {
                    let value =
                        HeaderValue::from_str(&format!("{scheme} {}", token.access_token()))
                            .map_err(|_| ApiError::InvalidToken)?;
                    request.headers.insert(AUTHORIZATION, value);
                }
                // RFC 6750 §2.3: the answer must not be cached with the token in its URL.
                TokenPlacement::Uri => {
                    request
                        .headers
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                TokenPlacement::Body => {}
            }
            if let Some(key) = dpop {
                let nonce = self.inner.dpop_nonces.get(&url);
                let proof = key
                    .proof(
                        method.as_str(),
                        &url,
                        Some(token.access_token()),
                        nonce.as_deref(),
                        self.now(),
                    )
                    .map_err(|e| ApiError::UnexpectedResponse(format!("the DPoP proof: {e}")))?;
                if let Some(value) = crate::dpop::header_value(&proof) {
                    request.headers.insert("dpop", value);
                }
            }
            if let Some(body) = &body {
                request
                    .headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type));
                request.body = body.bytes.clone();
            }
            let response = self.inner.http.send(Channel::Api, request).await?;
            attempt += 1;
            if dpop.is_none() {
                return Ok(response);
            }
            self.inner.dpop_nonces.remember(&url, &response.headers);
            let wants_nonce =
                crate::dpop::resource_wants_nonce(response.status.as_u16(), &response.headers);
            if !(wants_nonce && attempt == 1) {
                return Ok(response);
            }
        }
    }
}

/// The URL and body of a call with the token placed as `placement` says (RFC 6750 §2.2, §2.3).
fn place_token(
    placement: TokenPlacement,
    method: &Method,
    mut url: Url,
    body: Option<Body>,
    token: &str,
) -> Result<(Url, Option<Body>), ApiError> {
    match placement {
        TokenPlacement::Header => Ok((url, body)),
        TokenPlacement::Uri => {
            url.query_pairs_mut().append_pair("access_token", token);
            Ok((url, body))
        }
        TokenPlacement::Body => {
            // §2.2: a form body, and never with GET.
            if *method == Method::GET {
                return Err(ApiError::UnexpectedResponse(
                    "the token goes in the body (token placement `body`): not with GET \
                     (RFC 6750 section 2.2)"
                        .into(),
                ));
            }
            let mut pairs: Vec<(String, String)> =
                match &body {
                    None => Vec::new(),
                    Some(body) if body.content_type == "application/x-www-form-urlencoded" => {
                        form_urlencoded::parse(&body.bytes).into_owned().collect()
                    }
                    Some(_) => return Err(ApiError::UnexpectedResponse(
                        "the token goes in the body (token placement `body`): the body must be \
                         a form (RFC 6750 section 2.2)"
                            .into(),
                    )),
                };
            pairs.push(("access_token".into(), token.into()));
            Ok((url, Some(Body::form(&pairs))))
        }
    }
}

/// RFC 6750 §3.1: 401 means the token was not accepted.
fn check_bearer_status(response: &RawResponse) -> Result<(), ApiError> {
    if response.status.as_u16() == 401 {
        return Err(ApiError::InvalidToken);
    }
    if !response.status.is_success() {
        return Err(ApiError::Status {
            status: response.status.as_u16(),
            body: response.text(),
        });
    }
    Ok(())
}

/// A request body for API calls.
#[derive(Clone, Debug)]
pub struct Body {
    content_type: &'static str,
    bytes: Vec<u8>,
}

impl Body {
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            content_type: "application/json",
            bytes: serde_json::to_vec(value)?,
        })
    }

    pub fn form<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Self {
        Self {
            content_type: "application/x-www-form-urlencoded",
            bytes: form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
                .finish()
                .into_bytes(),
        }
    }
}

/// An API answer. Any status is an answer; [`ApiResponse::error_for_status`] turns the
/// unsuccessful ones into errors.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(ApiError::Json)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn error_for_status(self) -> Result<Self, ApiError> {
        match self.status {
            200..=299 => Ok(self),
            401 => Err(ApiError::InvalidToken),
            status => Err(ApiError::Status {
                status,
                body: self.text(),
            }),
        }
    }
}

/// The answer of the userinfo endpoint (OIDC Core §5.3).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UserInfo {
    pub subject: String,
    pub claims: Map<String, Value>,
}
