//! OAuth 1.0a (RFC 5849), the client side, at Authlib's level (`OAuth1Session`/`OAuth1Client`):
//! temporary credentials (§2.1), the resource owner's authorization (§2.2), token credentials
//! (§2.3), and signed requests (§3) with `HMAC-SHA1`, `RSA-SHA1` or `PLAINTEXT`, the protocol
//! parameters in the `Authorization` header (the default), the form body or the query (§3.5).
//!
//! ```no_run
//! use doorward_client::oauth1::{Oauth1Client, Oauth1Config, SignatureMethod};
//!
//! # async fn demo(callback_query: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let client = Oauth1Client::new(Oauth1Config::new(
//!     "consumer-key",
//!     "consumer-secret",
//!     "https://api.example/oauth/request_token".parse()?,
//!     "https://api.example/oauth/authorize".parse()?,
//!     "https://api.example/oauth/access_token".parse()?,
//! ))?;
//! // 1. Temporary credentials, then send the user to the provider (keep `temporary`).
//! let temporary = client.request_temporary_credentials("https://app.example/callback").await?;
//! let send_user_to = client.authorization_url(&temporary);
//! // 2. Back on the callback: the verifier, checked against the temporary token.
//! let verifier = temporary.verifier_from_callback(callback_query)?;
//! let token = client.request_token_credentials(&temporary, &verifier).await?;
//! // 3. Signed API calls.
//! let me = client.get(&"https://api.example/1/me".parse()?, &token).await?;
//! # let _ = (send_user_to, me);
//! # Ok(())
//! # }
//! ```
//!
//! OAuth 1.0a has no token expiry and no refresh; token credentials last until revoked.

mod signature;

use std::sync::Arc;
use std::time::Duration;

use doorward_proto::Secret;
use rand::RngCore;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use url::Url;

use crate::error::TransportError;
use crate::http::{Channel, Hooks, Http, Method, RawRequest, RawResponse};

pub use signature::{base_string, base_string_uri, encode, normalize, SignatureMethod};

/// Where the protocol parameters go (RFC 5849 §3.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// The `Authorization: OAuth …` header (§3.5.1), the one every provider takes.
    #[default]
    Header,
    /// The form body (§3.5.2): only for requests with a form body.
    Body,
    /// The query (§3.5.3).
    Query,
}

/// A provider and this client's credentials there.
#[derive(Clone, Debug)]
pub struct Oauth1Config {
    /// `oauth_consumer_key` (the client identifier).
    pub consumer_key: String,
    /// The client secret (unused by `RSA-SHA1`).
    pub consumer_secret: Secret,
    pub method: SignatureMethod,
    pub placement: Placement,
    /// The `realm` of the `Authorization` header (§3.5.1), if the provider wants one.
    pub realm: Option<String>,
    /// The temporary credential request endpoint (§2.1).
    pub request_token_url: Url,
    /// The resource owner authorization endpoint (§2.2).
    pub authorize_url: Url,
    /// The token request endpoint (§2.3).
    pub access_token_url: Url,
    pub timeout: Duration,
}

impl Oauth1Config {
    /// `HMAC-SHA1`, parameters in the header, a 30 s timeout.
    pub fn new(
        consumer_key: impl Into<String>,
        consumer_secret: impl Into<String>,
        request_token_url: Url,
        authorize_url: Url,
        access_token_url: Url,
    ) -> Self {
        Self {
            consumer_key: consumer_key.into(),
            consumer_secret: Secret::new(consumer_secret.into()),
            method: SignatureMethod::HmacSha1,
            placement: Placement::Header,
            realm: None,
            request_token_url,
            authorize_url,
            access_token_url,
            timeout: Duration::from_secs(30),
        }
    }

    pub fn with_method(mut self, method: SignatureMethod) -> Self {
        self.method = method;
        self
    }

    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }
}

/// Temporary credentials (§2.1): keep them (in the user's session) until the callback.
#[derive(Clone, Debug)]
pub struct TemporaryCredentials {
    pub token: String,
    pub secret: Secret,
}

impl TemporaryCredentials {
    /// The `oauth_verifier` of the provider's redirect to the callback (§2.2), once its
    /// `oauth_token` is checked to be this temporary token: a callback for another
    /// authorization is refused.
    pub fn verifier_from_callback(&self, query: &str) -> Result<String, Oauth1Error> {
        let params: Vec<(String, String)> =
            form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(problem) = get("oauth_problem").or_else(|| get("error")) {
            return Err(Oauth1Error::Denied(problem));
        }
        let token = get("oauth_token").ok_or(Oauth1Error::Callback("no oauth_token"))?;
        if !doorward_proto::constant_time_eq(token.as_bytes(), self.token.as_bytes()) {
            return Err(Oauth1Error::Callback(
                "the oauth_token is not the one of this authorization",
            ));
        }
        get("oauth_verifier")
            .filter(|v| !v.is_empty())
            .ok_or(Oauth1Error::Callback("no oauth_verifier"))
    }
}

/// Token credentials (§2.3): what signs the user's requests. They do not expire by protocol.
#[derive(Clone, Debug)]
pub struct TokenCredentials {
    pub token: String,
    pub secret: Secret,
    /// The other parameters of the provider's answer (a user id, a screen name …).
    pub extra: Vec<(String, String)>,
}

/// What went wrong in an OAuth 1.0a exchange.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Oauth1Error {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the answer of {url} lacks {what}")]
    Answer { url: String, what: &'static str },
    #[error("the callback is refused: {0}")]
    Callback(&'static str),
    #[error("the user or the provider refused the authorization: {0}")]
    Denied(String),
    #[error("the parameters can go in the body only of a request with a form body, not a GET (RFC 5849 section 3.5.2)")]
    BodyPlacement,
    #[error("PLAINTEXT sends the secrets themselves: only over https (RFC 5849 section 3.4.4)")]
    PlaintextWithoutTls,
    #[error("the HTTP client could not be built: {0}")]
    Build(String),
}

/// An OAuth 1.0a client of one provider. Cheap to clone.
#[derive(Clone)]
pub struct Oauth1Client {
    config: Arc<Oauth1Config>,
    http: Http,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    nonce: Arc<dyn Fn() -> String + Send + Sync>,
}

impl Oauth1Client {
    pub fn new(config: Oauth1Config) -> Result<Self, Oauth1Error> {
        let http = Http::new(None, config.timeout, Hooks::default())
            .map_err(|e| Oauth1Error::Build(e.to_string()))?;
        Ok(Self {
            config: Arc::new(config),
            http,
            clock: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            }),
            // 24 letters and digits (about 143 bits): within what providers accept (oauthlib
            // takes 20 to 30 characters of that set by default).
            nonce: Arc::new(|| {
                const SET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                let mut bytes = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                // 62 does not divide 256: a slight bias, irrelevant for a nonce.
                bytes
                    .iter()
                    .map(|b| SET[usize::from(*b) % SET.len()] as char)
                    .collect()
            }),
        })
    }

    /// A fixed clock and nonce source, for tests and for reproducing a provider's example.
    pub fn with_clock_and_nonce(
        mut self,
        clock: impl Fn() -> i64 + Send + Sync + 'static,
        nonce: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        self.clock = Arc::new(clock);
        self.nonce = Arc::new(nonce);
        self
    }

    pub fn config(&self) -> &Oauth1Config {
        &self.config
    }

    /// §2.1: temporary credentials for an authorization that comes back to `callback` (an
    /// absolute URI, or `oob` when the user copies the verifier by hand). The provider must
    /// confirm the callback (`oauth_callback_confirmed=true`, OAuth 1.0a).
    pub async fn request_temporary_credentials(
        &self,
        callback: &str,
    ) -> Result<TemporaryCredentials, Oauth1Error> {
        let url = self.config.request_token_url.clone();
        let answer = self
            .credentials_request(&url, None, &[("oauth_callback", callback)])
            .await?;
        let confirmed = answer
            .iter()
            .any(|(n, v)| n == "oauth_callback_confirmed" && v == "true");
        if !confirmed {
            return Err(Oauth1Error::Answer {
                url: url.to_string(),
                what: "oauth_callback_confirmed=true (OAuth 1.0a)",
            });
        }
        let TokenCredentials { token, secret, .. } = token_pair(&url, answer)?;
        Ok(TemporaryCredentials { token, secret })
    }

    /// §2.2: where to send the user: the authorization endpoint with `oauth_token`.
    pub fn authorization_url(&self, temporary: &TemporaryCredentials) -> Url {
        let mut url = self.config.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("oauth_token", &temporary.token);
        url
    }

    /// §2.3: token credentials for the temporary ones and the verifier the callback carried.
    pub async fn request_token_credentials(
        &self,
        temporary: &TemporaryCredentials,
        verifier: &str,
    ) -> Result<TokenCredentials, Oauth1Error> {
        let url = self.config.access_token_url.clone();
        let answer = self
            .credentials_request(
                &url,
                Some((&temporary.token, temporary.secret.secret())),
                &[("oauth_verifier", verifier)],
            )
            .await?;
        token_pair(&url, answer)
    }

    /// A signed `GET` with the token credentials.
    pub async fn get(
        &self,
        url: &Url,
        token: &TokenCredentials,
    ) -> Result<RawResponse, Oauth1Error> {
        let request = self.signed(
            Method::GET,
            url,
            &[],
            Some((&token.token, token.secret.secret())),
            &[],
        )?;
        Ok(self.http.send(Channel::Api, request).await?)
    }

    /// A signed `POST` of a form (its parameters are signed too, §3.4.1.3.1).
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(String, String)],
        token: &TokenCredentials,
    ) -> Result<RawResponse, Oauth1Error> {
        let request = self.signed(
            Method::POST,
            url,
            form,
            Some((&token.token, token.secret.secret())),
            &[],
        )?;
        Ok(self.http.send(Channel::Api, request).await?)
    }

    /// Builds a signed request (§3.1): the protocol parameters with a fresh nonce and the
    /// current time, the signature over the query, the form body and those parameters, placed
    /// where the configuration says. `token` is the token and its secret, if any.
    pub fn signed(
        &self,
        method: Method,
        url: &Url,
        form: &[(String, String)],
        token: Option<(&str, &str)>,
        extra_oauth: &[(&str, &str)],
    ) -> Result<RawRequest, Oauth1Error> {
        let config = &self.config;
        if matches!(config.method, SignatureMethod::Plaintext) && url.scheme() != "https" {
            let loopback = url
                .host_str()
                .is_some_and(|h| h == "127.0.0.1" || h == "[::1]" || h == "localhost");
            if !loopback {
                return Err(Oauth1Error::PlaintextWithoutTls);
            }
        }
        if config.placement == Placement::Body && method == Method::GET {
            return Err(Oauth1Error::BodyPlacement);
        }
        let mut oauth: Vec<(String, String)> = vec![
            ("oauth_consumer_key".into(), config.consumer_key.clone()),
            ("oauth_nonce".into(), (self.nonce)()),
            ("oauth_signature_method".into(), config.method.name().into()),
            ("oauth_timestamp".into(), (self.clock)().to_string()),
            ("oauth_version".into(), "1.0".into()),
        ];
        if let Some((token, _)) = token {
            oauth.push(("oauth_token".into(), token.into()));
        }
        oauth.extend(
            extra_oauth
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string())),
        );
        let mut all = signature::query_params(url);
        all.extend(form.iter().cloned());
        all.extend(oauth.iter().cloned());
        let base = base_string(method.as_str(), url, &all);
        let signature = config.method.sign(
            &base,
            config.consumer_secret.secret(),
            token.map_or("", |(_, secret)| secret),
        );
        oauth.push(("oauth_signature".into(), signature));

        let mut request = Http::request(method, url.clone());
        let mut body = form.to_vec();
        match config.placement {
            Placement::Header => {
                let mut fields: Vec<String> = Vec::new();
                if let Some(realm) = &config.realm {
                    fields.push(format!("realm=\"{}\"", encode(realm)));
                }
                fields.extend(
                    oauth
                        .iter()
                        .map(|(n, v)| format!("{}=\"{}\"", encode(n), encode(v))),
                );
                let header = format!("OAuth {}", fields.join(", "));
                let value = HeaderValue::from_str(&header)
                    .expect("percent-encoded values are valid header characters");
                request.headers.insert(AUTHORIZATION, value);
            }
            Placement::Body => body.extend(oauth),
            Placement::Query => {
                let mut pairs = request.url.query_pairs_mut();
                for (name, value) in &oauth {
                    pairs.append_pair(name, value);
                }
            }
        }
        if !body.is_empty() {
            request.body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&body)
                .finish()
                .into_bytes();
            request.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        Ok(request)
    }

    /// A credentials request (§2.1, §2.3): a signed `POST`, answered with a form body.
    async fn credentials_request(
        &self,
        url: &Url,
        token: Option<(&str, &str)>,
        extra_oauth: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, Oauth1Error> {
        let mut request = self.signed(Method::POST, url, &[], token, extra_oauth)?;
        request.headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let response = self.http.send(Channel::Token, request).await?;
        if !response.status.is_success() {
            return Err(Oauth1Error::Status {
                url: url.to_string(),
                status: response.status.as_u16(),
                body: response.text().chars().take(500).collect(),
            });
        }
        Ok(form_urlencoded::parse(&response.body)
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect())
    }
}

impl std::fmt::Debug for Oauth1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oauth1Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `oauth_token` and `oauth_token_secret` of a credentials answer (§2.1, §2.3), and the rest.
fn token_pair(url: &Url, answer: Vec<(String, String)>) -> Result<TokenCredentials, Oauth1Error> {
    let mut token = None;
    let mut secret = None;
    let mut extra = Vec::new();
    for (name, value) in answer {
        match name.as_str() {
            "oauth_token" => token = Some(value),
            "oauth_token_secret" => secret = Some(value),
            "oauth_callback_confirmed" => {}
            _ => extra.push((name, value)),
        }
    }
    let missing = |what| Oauth1Error::Answer {
        url: url.to_string(),
        what,
    };
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("oauth_token"))?;
    let secret = secret.ok_or_else(|| missing("oauth_token_secret"))?;
    Ok(TokenCredentials {
        token,
        secret: Secret::new(secret),
        extra,
    })
}
