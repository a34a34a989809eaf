//! [`Client`]: one provider, one concrete type to keep in application state.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use doorward_proto::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};
use url::Url;

use crate::config::{AuthMethod, BasicEncoding, BodyFormat, ProviderConfig};
use crate::discovery::{fetch_metadata, JwksCache, Metadata};
use crate::error::{
    ApiError, ConfigError, DiscoveryError, FinishError, IdTokenError, ProviderError, RefreshError,
    StartError, TokenError, TokenManagementError,
};
use crate::http::{Channel, Hooks, Http, Method, RawResponse};
use crate::id_token::{self, Expectations, IdTokenClaims, JwtAccessToken};
use crate::state::{random_token, StateKey, StateMode, StateParams, StateStore};
use crate::token::{body_object, parse_token_response, provider_error, Token};

/// The least time between two fetches of the key set caused by JWT access tokens.
const JWKS_COOLDOWN: Duration = Duration::from_secs(10);

/// Unix time in seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The future a token-update hook returns.
pub type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

type TokenHook = Arc<dyn Fn(TokenUpdate) -> HookFuture + Send + Sync>;

/// A refresh replaced a token (Authlib's `update_token`): persist `current` where `previous`
/// was kept.
#[derive(Clone, Debug)]
pub struct TokenUpdate {
    pub previous: Token,
    pub current: Token,
}

/// A client of one provider. Cheap to clone (an `Arc`); keep it in your application state.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: ProviderConfig,
    state: StateMode,
    http: Http,
    clock: Clock,
    on_token_updated: Option<TokenHook>,
    unbound_callbacks: bool,
    metadata: RwLock<Option<Arc<Metadata>>>,
    metadata_fetch: Mutex<()>,
    jwks: JwksCache,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    name: String,
    config: ProviderConfig,
    state: Option<StateMode>,
    http: Option<reqwest::Client>,
    hooks: Hooks,
    clock: Option<Clock>,
    on_token_updated: Option<TokenHook>,
    unbound_callbacks: bool,
}

impl ClientBuilder {
    /// Lets [`Client::finish_authorization`] accept a callback without the state sent to the
    /// browser (`sent_state: None`), checking the returned state alone, as seed 000's client
    /// does with `expected_state=None`.
    ///
    /// # Security
    /// Nothing then ties the callback to the browser that started the sign-in: an attacker can
    /// send a victim to the callback URL of the attacker's own sign-in and the victim ends up
    /// signed in as the attacker (login CSRF, RFC 6749 §10.12, RFC 9700 §4.7.1). PKCE does not
    /// help: a signed state's verifier is derived from the state itself.
    pub fn insecure_unbound_callbacks(mut self) -> Self {
        self.unbound_callbacks = true;
        self
    }

    /// A name for messages and the registry (default: the client id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Signed states (the default) with this key. Without it a random key is made, which only
    /// the current process knows: set one when callbacks may reach another process.
    pub fn state_key(mut self, key: StateKey) -> Self {
        self.state = Some(StateMode::Signed(key));
        self
    }

    /// Opaque random states, kept in `store` until the callback.
    pub fn opaque_state(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = Some(StateMode::Opaque(store));
        self
    }

    /// A reqwest client of your own (proxies, TLS roots). Configure it not to follow redirects:
    /// the default client never does.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Compliance hooks that rewrite requests or responses for a provider that needs it.
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Unix time in seconds (tests inject a fixed clock).
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Called after every refresh with the old and new tokens, to persist the new one.
    pub fn on_token_updated<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(TokenUpdate) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_token_updated = Some(Arc::new(move |update| Box::pin(hook(update))));
        self
    }

    pub fn build(self) -> Result<Client, ConfigError> {
        self.config.check().map_err(|reason| ConfigError::Invalid {
            provider: self.name.clone(),
            reason,
        })?;
        let http = Http::new(self.http, self.config.timeout, self.hooks)
            .map_err(ConfigError::HttpClient)?;
        Ok(Client {
            inner: Arc::new(Inner {
                name: self.name,
                state: self
                    .state
                    .unwrap_or_else(|| StateMode::Signed(StateKey::generate())),
                http,
                clock: self.clock.unwrap_or_else(|| Arc::new(system_now)),
                on_token_updated: self.on_token_updated,
                unbound_callbacks: self.unbound_callbacks,
                metadata: RwLock::new(None),
                metadata_fetch: Mutex::new(()),
                jwks: JwksCache::default(),
                config: self.config,
            }),
        })
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An authorization to send the user's browser to.
#[derive(Clone, Debug)]
pub struct Authorization {
    /// The provider's authorization URL: answer `302 Found` with it.
    pub url: Url,
    /// The `state` sent: keep it in the user's session (cookie) and give it back to
    /// [`Client::finish_authorization`] to bind the callback to this browser.
    pub state: String,
}

/// Per-request additions to the authorization request.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AuthorizationOptions {
    /// Instead of the configured scopes.
    pub scopes: Option<Vec<String>>,
    /// OIDC `prompt` (`login`, `consent`, `none`, `select_account`).
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub max_age: Option<u64>,
    pub extra_params: Vec<(String, String)>,
}

/// The query of the request that reached the callback (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207).
/// Deserialize it with your framework's query extractor, or use [`Callback::from_query`].
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_uri: Option<String>,
    pub iss: Option<String>,
}

impl Callback {
    /// Parses a raw query string (`code=…&state=…`).
    pub fn from_query(query: &str) -> Self {
        let mut callback = Self::default();
        for (key, value) in form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            let slot = match &*key {
                "code" => &mut callback.code,
                "state" => &mut callback.state,
                "error" => &mut callback.error,
                "error_description" => &mut callback.error_description,
                "error_uri" => &mut callback.error_uri,
                "iss" => &mut callback.iss,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        callback
    }
}

/// A finished sign-in.
#[derive(Clone, Debug)]
pub struct SignIn {
    pub token: Token,
    /// The validated ID token's claims, when `openid` was requested.
    pub id_token: Option<IdTokenClaims>,
}

/// The answer of the userinfo endpoint (OIDC Core §5.3).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UserInfo {
    pub subject: String,
    pub claims: Map<String, Value>,
}

/// The answer of an introspection endpoint (RFC 7662 §2.2).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    pub active: bool,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `token_type_hint` (RFC 7009 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }
}

#[derive(Clone, Copy)]
enum Endpoint {
    Authorization,
    Token,
    Userinfo,
    Jwks,
    Revocation,
    Introspection,
}

impl Client {
    pub fn builder(config: ProviderConfig) -> ClientBuilder {
        ClientBuilder {
            name: config.client_id.clone(),
            config,
            state: None,
            http: None,
            hooks: Hooks::default(),
            clock: None,
            on_token_updated: None,
            unbound_callbacks: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    fn state_params(&self, oidc: bool) -> StateParams<'_> {
        let config = &self.inner.config;
        StateParams {
            authorization_server: "",
            ttl: config.state_ttl,
            pkce: config.pkce,
            oidc,
            leeway: config.leeway,
            bound: !self.inner.unbound_callbacks,
            max_age: None,
        }
    }

    /// Starts an authorization with the configured scopes.
    pub async fn start_authorization(&self) -> Result<Authorization, StartError> {
        self.start_authorization_with(AuthorizationOptions::default())
            .await
    }

    /// Starts an authorization (RFC 6749 §4.1.1): a fresh state, a PKCE challenge (RFC 7636
    /// §4.2, S256) and, when `openid` is requested, an OIDC nonce.
    pub async fn start_authorization_with(
        &self,
        options: AuthorizationOptions,
    ) -> Result<Authorization, StartError> {
        let config = &self.inner.config;
        let redirect_uri = config
            .redirect_uri
            .as_ref()
            .ok_or(StartError::MissingRedirectUri)?;
        let mut url = self.endpoint(Endpoint::Authorization).await?;
        let scopes = options.scopes.as_ref().unwrap_or(&config.scopes);
        let oidc = scopes.iter().any(|s| s == "openid");
        let server = config.authorization_server_id();
        let params = StateParams {
            authorization_server: &server,
            max_age: options.max_age,
            ..self.state_params(oidc)
        };
        let (state, secrets) = self
            .inner
            .state
            .issue(&params, self.now())
            .await
            .map_err(StartError::StateStore)?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &config.client_id)
                .append_pair("redirect_uri", redirect_uri.as_str());
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
            query.append_pair("state", &state);
            if let Some(verifier) = &secrets.code_verifier {
                let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if let Some(nonce) = &secrets.nonce {
                query.append_pair("nonce", nonce);
            }
            if let Some(prompt) = &options.prompt {
                query.append_pair("prompt", prompt);
            }
            if let Some(hint) = &options.login_hint {
                query.append_pair("login_hint", hint);
            }
            if let Some(max_age) = options.max_age {
                query.append_pair("max_age", &max_age.to_string());
            }
            for (key, value) in config
                .extra_authorize_params
                .iter()
                .chain(&options.extra_params)
            {
                query.append_pair(key, value);
            }
        }
        Ok(Authorization { url, state })
    }

    /// Finishes an authorization from the callback's query: checks the state and that it is
    /// the one `sent_state` to this browser (kept in its session or a cookie; `None` is refused
    /// with [`InvalidState::NotBound`](crate::InvalidState::NotBound) unless the client was
    /// built with `insecure_unbound_callbacks`), the issuer (RFC 9207), turns `error=`
    /// into [`FinishError::Authorization`], redeems the code with the PKCE verifier, and
    /// validates the ID token when `openid` was requested.
    pub async fn finish_authorization(
        &self,
        callback: &Callback,
        sent_state: Option<&str>,
    ) -> Result<SignIn, FinishError> {
        let config = &self.inner.config;
        let server = config.authorization_server_id();
        let params = StateParams {
            authorization_server: &server,
            ..self.state_params(false)
        };
        let secrets = self
            .inner
            .state
            .verify(callback.state.as_deref(), sent_state, &params, self.now())
            .await?;
        if let Some(issuer) = &config.issuer {
            match &callback.iss {
                Some(iss) if iss != issuer => {
                    return Err(FinishError::IssuerMismatch {
                        expected: issuer.clone(),
                        got: iss.clone(),
                    })
                }
                Some(_) => {}
                None if config.discovery
                    && self
                        .metadata()
                        .await?
                        .authorization_response_iss_parameter_supported =>
                {
                    return Err(FinishError::MissingIssuer)
                }
                None => {}
            }
        }
        if let Some(error) = &callback.error {
            return Err(FinishError::Authorization(ProviderError::new(
                error.clone(),
                callback.error_description.clone(),
                callback.error_uri.clone(),
            )));
        }
        let code = callback.code.as_deref().ok_or(FinishError::MissingCode)?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
        ];
        if let Some(redirect_uri) = &config.redirect_uri {
            form.push(("redirect_uri", redirect_uri.to_string()));
        }
        if let Some(verifier) = secrets.code_verifier {
            form.push(("code_verifier", verifier));
        }
        let token = self.token_request(form).await?;
        let id_token = match (token.id_token(), secrets.nonce.as_deref()) {
            (None, Some(_)) => return Err(FinishError::MissingIdToken),
            (None, None) => None,
            (Some(raw), nonce) => {
                let claims = self
                    .validate_id_token(raw, nonce, Some(token.access_token()))
                    .await?;
                // OIDC Core §3.1.3.7 step 13: with max_age, auth_time is required and must be
                // recent enough.
                if let Some(max_age) = secrets.max_age {
                    let auth_time = claims
                        .auth_time
                        .ok_or(IdTokenError::MissingClaim("auth_time"))?;
                    let limit = max_age.saturating_add(self.inner.config.leeway);
                    if self.now().saturating_sub(auth_time) > limit as i64 {
                        return Err(IdTokenError::AuthTooOld { auth_time, max_age }.into());
                    }
                }
                Some(claims)
            }
        };
        Ok(SignIn { token, id_token })
    }

    /// Validates an ID token from this provider (OIDC Core §3.1.3.7). An unknown `kid` makes
    /// the client fetch the key set again, once.
    pub async fn validate_id_token(
        &self,
        raw: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let config = &self.inner.config;
        let issuer = config.issuer.as_deref().ok_or(IdTokenError::NoIssuer)?;
        // RFC 8725 §3.11: an access token (`typ: at+jwt`) is never an ID token.
        let typ = id_token::header_type(raw);
        if typ.as_deref().is_some_and(|t| t.ends_with("at+jwt")) {
            return Err(IdTokenError::WrongType { got: typ });
        }
        let (alg, keys) = self.signing_keys(raw, Duration::ZERO).await?;
        id_token::validate(
            raw,
            alg,
            &keys,
            &Expectations {
                issuer,
                client_id: &config.client_id,
                nonce,
                access_token,
                leeway: config.leeway,
                now: self.now(),
            },
        )
    }

    /// Validates a JWT access token of this provider (RFC 9068 §4), for a resource server
    /// known as `audience`: signature with the provider's keys, `typ: at+jwt`, `iss`, `aud`, `exp`.
    pub async fn validate_jwt_access_token(
        &self,
        raw: &str,
        audience: &str,
    ) -> Result<JwtAccessToken, IdTokenError> {
        let config = &self.inner.config;
        let issuer = config.issuer.as_deref().ok_or(IdTokenError::NoIssuer)?;
        // Access tokens come from anyone who calls the resource server: an unknown key makes
        // the client fetch the key set again at most every JWKS_COOLDOWN.
        let (alg, keys) = self.signing_keys(raw, JWKS_COOLDOWN).await?;
        let claims = id_token::verify_signature(raw, alg, &keys)?;
        id_token::check_access_token(raw, claims, issuer, audience, config.leeway, self.now())
    }

    /// The allowed algorithm of a JWS and the provider's keys that may have signed it (the key
    /// set is fetched again once when none fits: a rotation).
    async fn signing_keys(
        &self,
        raw: &str,
        cooldown: Duration,
    ) -> Result<(Algorithm, Vec<jsonwebtoken::DecodingKey>), IdTokenError> {
        let (alg, kid) = id_token::header(raw, &self.inner.config.id_token_algorithms)?;
        let jwks_uri = self.endpoint(Endpoint::Jwks).await?;
        let (generation, set) = self.inner.jwks.get(&self.inner.http, &jwks_uri).await?;
        let mut keys = id_token::candidate_keys(&set, alg, kid.as_deref());
        if keys.is_empty() {
            let (_, set) = self
                .inner
                .jwks
                .refresh(&self.inner.http, &jwks_uri, generation, cooldown)
                .await?;
            keys = id_token::candidate_keys(&set, alg, kid.as_deref());
        }
        if keys.is_empty() {
            return Err(IdTokenError::NoMatchingKey {
                kid,
                alg: format!("{alg:?}"),
            });
        }
        Ok((alg, keys))
    }

    /// Refreshes a token (RFC 6749 §6). A rotated refresh token replaces the old one; when the
    /// provider sends none, the old one is kept.
    pub async fn refresh(&self, token: &Token) -> Result<Token, RefreshError> {
        let refresh_token = token.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let mut fresh = self
            .token_request(vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh_token.to_owned()),
            ])
            .await?;
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = token.refresh_token.clone();
        }
        match fresh.id_token().map(str::to_owned) {
            Some(raw) => {
                let claims = self
                    .validate_id_token(&raw, None, Some(fresh.access_token()))
                    .await?;
                let previous = token.id_token().and_then(id_token::unverified_subject);
                if previous.is_some_and(|sub| sub != claims.subject) {
                    return Err(RefreshError::SubjectChanged);
                }
            }
            None => fresh.id_token = token.id_token.clone(),
        }
        Ok(fresh)
    }

    /// A handle that calls the provider's API with this token, refreshing it when needed.
    pub fn authorized(&self, token: Token) -> Authorized {
        Authorized {
            client: self.clone(),
            token: Arc::new(Mutex::new(token)),
        }
    }

    /// Revokes a token (RFC 7009): the refresh token when there is one (which revokes its
    /// access tokens at most providers), else the access token.
    pub async fn revoke(&self, token: &Token) -> Result<(), TokenManagementError> {
        match token.refresh_token() {
            Some(refresh) => {
                self.revoke_token(refresh, Some(TokenTypeHint::RefreshToken))
                    .await
            }
            None => {
                self.revoke_token(token.access_token(), Some(TokenTypeHint::AccessToken))
                    .await
            }
        }
    }

    /// Revokes one token value (RFC 7009 §2.1).
    pub async fn revoke_token(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<(), TokenManagementError> {
        let url = self.endpoint(Endpoint::Revocation).await?;
        let mut form = vec![("token", token.to_owned())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint.as_str().to_owned()));
        }
        let response = self.authenticated_post(url, form).await?;
        if response.status.is_success() {
            Ok(())
        } else {
            Err(error_response(&response).into())
        }
    }

    /// Asks the provider about a token (RFC 7662).
    pub async fn introspect(&self, token: &str) -> Result<Introspection, TokenManagementError> {
        let url = self.endpoint(Endpoint::Introspection).await?;
        let response = self
            .authenticated_post(url, vec![("token", token.to_owned())])
            .await?;
        if !response.status.is_success() {
            return Err(error_response(&response).into());
        }
        response
            .json()
            .map_err(TokenManagementError::InvalidResponse)
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

    /// The provider's metadata (fetched once, then cached).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, DiscoveryError> {
        if let Some(metadata) = self.inner.metadata.read().await.clone() {
            return Ok(metadata);
        }
        let _one_fetch = self.inner.metadata_fetch.lock().await;
        if let Some(metadata) = self.inner.metadata.read().await.clone() {
            return Ok(metadata);
        }
        let issuer = self
            .inner
            .config
            .issuer
            .as_deref()
            .ok_or(DiscoveryError::NoIssuer)?;
        let metadata = Arc::new(fetch_metadata(&self.inner.http, issuer).await?);
        *self.inner.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    async fn endpoint(&self, which: Endpoint) -> Result<Url, DiscoveryError> {
        let configured = &self.inner.config.endpoints;
        let (name, configured) = match which {
            Endpoint::Authorization => ("authorization endpoint", &configured.authorization),
            Endpoint::Token => ("token endpoint", &configured.token),
            Endpoint::Userinfo => ("userinfo endpoint", &configured.userinfo),
            Endpoint::Jwks => ("jwks_uri", &configured.jwks_uri),
            Endpoint::Revocation => ("revocation endpoint", &configured.revocation),
            Endpoint::Introspection => ("introspection endpoint", &configured.introspection),
        };
        if let Some(url) = configured {
            return Ok(url.clone());
        }
        if !self.inner.config.discovery {
            return Err(DiscoveryError::MissingEndpoint(name));
        }
        let metadata = self.metadata().await?;
        let discovered = match which {
            Endpoint::Authorization => &metadata.authorization_endpoint,
            Endpoint::Token => &metadata.token_endpoint,
            Endpoint::Userinfo => &metadata.userinfo_endpoint,
            Endpoint::Jwks => &metadata.jwks_uri,
            Endpoint::Revocation => &metadata.revocation_endpoint,
            Endpoint::Introspection => &metadata.introspection_endpoint,
        };
        discovered
            .clone()
            .ok_or(DiscoveryError::MissingEndpoint(name))
    }

    /// A token-endpoint call (code or refresh grant).
    async fn token_request(&self, form: Vec<(&str, String)>) -> Result<Token, TokenError> {
        let url = self.endpoint(Endpoint::Token).await?;
        let response = self.authenticated_post(url, form).await?;
        parse_token_response(&response, self.now())
    }

    /// POSTs `form` to a token, revocation or introspection endpoint with client
    /// authentication.
    async fn authenticated_post(
        &self,
        url: Url,
        mut form: Vec<(&str, String)>,
    ) -> Result<RawResponse, TokenError> {
        let config = &self.inner.config;
        let mut request = Http::request(Method::POST, url);
        let secret = config.client_secret.as_ref().map(Secret::secret);
        let missing_secret = || TokenError::Configuration("no client secret is configured".into());
        match &config.auth_method {
            AuthMethod::ClientSecretBasic => {
                let secret = secret.ok_or_else(missing_secret)?;
                let credentials = match config.basic_encoding {
                    BasicEncoding::FormUrlEncoded => {
                        format!("{}:{}", form_encode(&config.client_id), form_encode(secret))
                    }
                    BasicEncoding::Raw => format!("{}:{secret}", config.client_id),
                };
                let value = format!("Basic {}", STANDARD.encode(credentials));
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    TokenError::Configuration(
                        "the client credentials are not valid in a header".into(),
                    )
                })?;
                request.headers.insert(AUTHORIZATION, value);
            }
            AuthMethod::ClientSecretPost => {
                form.push(("client_id", config.client_id.clone()));
                form.push((
                    "client_secret",
                    secret.ok_or_else(missing_secret)?.to_owned(),
                ));
            }
            AuthMethod::ClientSecretJwt => {
                let key = EncodingKey::from_secret(secret.ok_or_else(missing_secret)?.as_bytes());
                let assertion = self.client_assertion(Algorithm::HS256, None, &key).await?;
                push_assertion(&mut form, &config.client_id, assertion);
            }
            AuthMethod::PrivateKeyJwt(private) => {
                let assertion = self
                    .client_assertion(private.alg, private.kid.clone(), &private.key)
                    .await?;
                push_assertion(&mut form, &config.client_id, assertion);
            }
            AuthMethod::None => form.push(("client_id", config.client_id.clone())),
        }
        let (content_type, body) = match config.body_format {
            BodyFormat::Form => (
                "application/x-www-form-urlencoded",
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish()
                    .into_bytes(),
            ),
            BodyFormat::Json => (
                "application/json",
                serde_json::to_vec(
                    &form
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                        .collect::<Map<_, _>>(),
                )
                .unwrap_or_default(),
            ),
        };
        request
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        request.body = body;
        Ok(self.inner.http.send(Channel::Token, request).await?)
    }

    /// A client assertion (RFC 7523 §3): `iss` = `sub` = client id, `aud` = the token
    /// endpoint, a fresh `jti`, valid one minute.
    async fn client_assertion(
        &self,
        alg: Algorithm,
        kid: Option<String>,
        key: &EncodingKey,
    ) -> Result<String, TokenError> {
        let audience = self.endpoint(Endpoint::Token).await?;
        let now = self.now();
        let claims = serde_json::json!({
            "iss": self.inner.config.client_id,
            "sub": self.inner.config.client_id,
            "aud": audience.as_str(),
            "jti": random_token(),
            "iat": now,
            "exp": now + 60,
        });
        let mut header = Header::new(alg);
        header.kid = kid;
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| {
            TokenError::Configuration(format!("the client assertion could not be signed: {e}"))
        })
    }

    /// A call with `Authorization: Bearer` (RFC 6750 §2.1).
    async fn bearer_call(
        &self,
        method: Method,
        url: Url,
        token: &Token,
        body: Option<Body>,
    ) -> Result<RawResponse, ApiError> {
        let mut request = Http::request(method, url);
        let value = HeaderValue::from_str(&format!("Bearer {}", token.access_token()))
            .map_err(|_| ApiError::InvalidToken)?;
        request.headers.insert(AUTHORIZATION, value);
        if let Some(body) = body {
            request
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type));
            request.body = body.bytes;
        }
        Ok(self.inner.http.send(Channel::Api, request).await?)
    }
}

fn push_assertion(form: &mut Vec<(&str, String)>, client_id: &str, assertion: String) {
    form.push(("client_id", client_id.to_owned()));
    form.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
    ));
    form.push(("client_assertion", assertion));
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A non-success answer of a token, revocation or introspection endpoint.
fn error_response(response: &RawResponse) -> TokenError {
    let status = response.status.as_u16();
    match body_object(response).as_ref().and_then(provider_error) {
        Some(error) => TokenError::Provider { status, error },
        None => TokenError::UnexpectedResponse {
            status,
            body: response.text(),
        },
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

/// A token in use: API calls with it, refreshed shortly before it expires (then the client's
/// `on_token_updated` hook runs). Clones share the token.
#[derive(Clone)]
pub struct Authorized {
    client: Client,
    token: Arc<Mutex<Token>>,
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
        if let Some(hook) = &self.client.inner.on_token_updated {
            hook(TokenUpdate {
                previous,
                current: fresh,
            })
            .await;
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
