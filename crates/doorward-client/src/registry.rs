//! Named providers (Authlib's `oauth.register` / `create_client`), built in code or from TOML.
//!
//! Mix-up defence (RFC 9700 §4.4.2): a provider without an issuer cannot name itself in the
//! callback (RFC 9207 `iss`), so each gets a redirect URI of its own. From TOML, a provider
//! without `redirect_uri` gets `callback_base` followed by its name; two providers sharing a
//! redirect URI are refused when either has no issuer; and the clients of providers without
//! an issuer require the callback's path ([`ClientBuilder::require_callback_path`]). Route the
//! callback with [`Registry::for_callback`] and finish with the client it names.
//!
//! ```toml
//! callback_base = "https://myapp.example/oauth/callback/"   # + the provider's name
//!
//! [providers.eternaltwin]
//! preset = "eternaltwin"               # endpoints, Basic + JSON, scope "base"
//! url = "https://eternaltwin.org"
//! client_id = "myapp@clients"
//! client_secret = "…"
//! # redirect_uri: https://myapp.example/oauth/callback/eternaltwin, from callback_base
//!
//! [providers.doorward]
//! issuer = "https://login.example"      # any OpenID provider: discovery
//! client_id = "myapp"
//! client_secret = "…"
//! redirect_uri = "https://myapp.example/oauth/callback"
//! scopes = ["openid", "profile", "email"]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use doorward_proto::Secret;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use url::Url;

use std::sync::Arc;

use crate::client::{Authorized, Callback, Client, TokenUpdate};
use crate::config::{AuthMethod, BasicEncoding, BodyFormat, PrivateKey, ProviderConfig};
use crate::error::ConfigError;
use crate::state::StateKey;
use crate::token::Token;
use crate::tokens::{TokenStore, TokenStoreError};

/// Clients by name.
///
/// ```
/// use doorward_client::{Registry, StateKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let toml = r#"
///     [providers.login]
///     issuer = "https://login.example"
///     client_id = "my-app"
///     client_secret = "my-secret"
///     redirect_uri = "https://app.example/callback"
///     scopes = ["openid", "email"]
/// "#;
/// let registry = Registry::from_toml(toml, &StateKey::new([7; 32])?)?;
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["login"]);
/// let login = registry.get("login").expect("configured above");
/// assert_eq!(login.config().scopes, ["openid", "email"]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    clients: BTreeMap<String, Client>,
    tokens: Option<Arc<dyn TokenStore>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("clients", &self.clients)
            .field("tokens", &self.tokens.is_some())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a client under `name`.
    pub fn register(&mut self, name: impl Into<String>, client: Client) -> &mut Self {
        self.clients.insert(name.into(), client);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Client> {
        self.clients.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.clients.keys().map(String::as_str)
    }

    /// Where the users' tokens are kept, for every provider ([`crate::tokens`]; Authlib's
    /// `fetch_token` / `update_token`).
    pub fn set_token_store(&mut self, store: Arc<dyn TokenStore>) -> &mut Self {
        self.tokens = Some(store);
        self
    }

    /// Keeps `token` for the application's `user` at `provider` (after a sign-in).
    pub async fn save_token(
        &self,
        provider: &str,
        user: &str,
        token: &Token,
    ) -> Result<(), TokenStoreError> {
        self.token_store()?.save(provider, user, token).await
    }

    /// API calls for the application's `user` at `provider`, with the token kept for them;
    /// `None` when the provider is unknown or no token is kept. A refresh saves the new token
    /// in the store (and runs the client's own `on_token_updated` hook too).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use doorward_client::{Client, MemoryTokenStore, ProviderConfig, Registry, Token};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let config = ProviderConfig::oauth2(
    ///     "https://login.example/authorize".parse()?,
    ///     "https://login.example/token".parse()?,
    ///     "my-app",
    /// )
    /// .with_secret("my-secret");
    /// let mut registry = Registry::new();
    /// registry
    ///     .register("login", Client::builder(config).build()?)
    ///     .set_token_store(Arc::new(MemoryTokenStore::default()));
    /// registry.save_token("login", "user-42", &Token::new("at", None)).await?;
    /// let api = registry.authorized("login", "user-42").await?.expect("kept above");
    /// assert_eq!(api.token().await?.access_token(), "at");
    /// assert!(registry.authorized("login", "someone-else").await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn authorized(
        &self,
        provider: &str,
        user: &str,
    ) -> Result<Option<Authorized>, TokenStoreError> {
        let store = self.token_store()?;
        let Some(client) = self.clients.get(provider) else {
            return Ok(None);
        };
        let Some(token) = store.load(provider, user).await? else {
            return Ok(None);
        };
        let (provider, user) = (provider.to_owned(), user.to_owned());
        let store = Arc::clone(store);
        Ok(Some(client.authorized_saving(
            token,
            Arc::new(move |update: TokenUpdate| {
                let (store, provider, user) = (Arc::clone(&store), provider.clone(), user.clone());
                Box::pin(async move {
                    // A refreshed token that cannot be kept is used all the same; the next
                    // process will refresh again from the old one, or sign the user in.
                    let _ = store.save(&provider, &user, &update.current).await;
                })
            }),
        )))
    }

    fn token_store(&self) -> Result<&Arc<dyn TokenStore>, TokenStoreError> {
        self.tokens
            .as_ref()
            .ok_or_else(|| "the registry has no token store (Registry::set_token_store)".into())
    }

    /// The provider whose redirect URI the callback came to (by [`Callback::path`]), with its
    /// name: finish with this client, not with the one the session remembers, and the state
    /// check refuses a state made for another provider (RFC 9700 §4.4.2).
    ///
    /// ```
    /// use doorward_client::{Callback, Registry, StateKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let toml = r#"
    ///     callback_base = "https://app.example/oauth/callback/"
    ///     [providers.eternaltwin]
    ///     preset = "eternaltwin"
    ///     url = "https://eternaltwin.org"
    ///     client_id = "app@clients"
    ///     client_secret = "s"
    /// "#;
    /// let registry = Registry::from_toml(toml, &StateKey::new([7; 32])?)?;
    /// let callback = Callback::from_uri("/oauth/callback/eternaltwin?code=c&state=s");
    /// let (name, _client) = registry.for_callback(&callback).expect("its redirect URI");
    /// assert_eq!(name, "eternaltwin");
    /// assert!(registry.for_callback(&Callback::from_uri("/elsewhere?code=c")).is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_callback(&self, callback: &Callback) -> Option<(&str, &Client)> {
        let path = callback.path.as_deref()?;
        let mut found = self.clients.iter().filter(|(_, client)| {
            client.config().redirect_uri.as_ref().map(Url::path) == Some(path)
        });
        match (found.next(), found.next()) {
            (Some((name, client)), None) => Some((name, client)),
            // Several providers share that path: the callback alone does not tell which.
            _ => None,
        }
    }

    /// Every `[providers.NAME]` table of `text`, each signing its states with `state_key`.
    pub fn from_toml(text: &str, state_key: &StateKey) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text)?;
        let mut registry = Self::new();
        for (name, raw) in file.providers {
            let invalid = |reason| ConfigError::Invalid {
                provider: name.clone(),
                reason,
            };
            let mut config = raw.into_config().map_err(invalid)?;
            if config.redirect_uri.is_none() {
                config.redirect_uri = file
                    .callback_base
                    .as_ref()
                    .map(|base| callback_uri(base, &name));
            }
            if let Some(other) = registry.shared_redirect_uri(&config) {
                return Err(invalid(format!(
                    "redirect_uri is also {other}'s: a provider without an issuer needs a redirect URI of its own (RFC 9700 §4.4.2)"
                )));
            }
            let no_issuer = config.issuer.is_none();
            let mut builder = Client::builder(config)
                .name(name.clone())
                .state_key(state_key.clone());
            if no_issuer {
                builder = builder.require_callback_path();
            }
            registry.register(name, builder.build()?);
        }
        Ok(registry)
    }

    /// A provider already registered with the redirect URI of `config`, when either of them has
    /// no issuer (nothing would then tell their callbacks apart).
    fn shared_redirect_uri(&self, config: &ProviderConfig) -> Option<&str> {
        let redirect_uri = config.redirect_uri.as_ref()?;
        self.clients
            .iter()
            .find(|(_, client)| {
                let other = client.config();
                other.redirect_uri.as_ref() == Some(redirect_uri)
                    && (other.issuer.is_none() || config.issuer.is_none())
            })
            .map(|(name, _)| name.as_str())
    }
}

/// `base` followed by the path segment `name`.
fn callback_uri(base: &Url, name: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(name);
    }
    url
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Providers without `redirect_uri` get this URL followed by their name.
    callback_base: Option<Url>,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Preset {
    Eternaltwin,
    Oidc,
    Oauth2,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    preset: Option<Preset>,
    url: Option<Url>,
    issuer: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: Option<Url>,
    scopes: Option<Vec<String>>,
    authorization_endpoint: Option<Url>,
    token_endpoint: Option<Url>,
    userinfo_endpoint: Option<Url>,
    jwks_uri: Option<Url>,
    revocation_endpoint: Option<Url>,
    introspection_endpoint: Option<Url>,
    api_base: Option<Url>,
    discovery: Option<bool>,
    token_endpoint_auth_method: Option<String>,
    private_key: Option<RawPrivateKey>,
    token_request_format: Option<String>,
    basic_encoding: Option<String>,
    pkce: Option<bool>,
    #[serde(default)]
    extra_authorize_params: BTreeMap<String, String>,
    id_token_algorithms: Option<Vec<String>>,
    leeway: Option<u64>,
    state_ttl: Option<u64>,
    timeout: Option<u64>,
    refresh_margin: Option<u64>,
    push_authorization_requests: Option<bool>,
    dpop: Option<bool>,
    /// The provider's key set as JSON, instead of `jwks_uri`.
    jwks: Option<String>,
    /// `header` (the default), `body` or `uri` (RFC 6750 §2).
    token_placement: Option<String>,
    lenient_token_type: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivateKey {
    alg: String,
    pem_file: String,
    kid: Option<String>,
}

impl RawProvider {
    fn into_config(self) -> Result<ProviderConfig, String> {
        let preset = self.preset.unwrap_or(if self.issuer.is_some() {
            Preset::Oidc
        } else {
            Preset::Oauth2
        });
        let mut config = match preset {
            Preset::Eternaltwin => {
                let url = self
                    .url
                    .as_ref()
                    .ok_or("the eternaltwin preset needs url")?;
                ProviderConfig::eternaltwin(url, self.client_id.clone())
            }
            Preset::Oidc => {
                let issuer = self.issuer.clone().ok_or("the oidc preset needs issuer")?;
                ProviderConfig::oidc(issuer, self.client_id.clone())
            }
            Preset::Oauth2 => {
                let (Some(authorization), Some(token)) = (
                    self.authorization_endpoint.clone(),
                    self.token_endpoint.clone(),
                ) else {
                    return Err(
                        "an oauth2 provider needs authorization_endpoint and token_endpoint".into(),
                    );
                };
                ProviderConfig::oauth2(authorization, token, self.client_id.clone())
            }
        };
        if preset != Preset::Oidc {
            config.issuer = self.issuer;
        }
        config.client_secret = self.client_secret.map(Secret::new);
        config.redirect_uri = self.redirect_uri;
        if let Some(scopes) = self.scopes {
            config.scopes = scopes;
        }
        let endpoints = &mut config.endpoints;
        for (slot, value) in [
            (&mut endpoints.authorization, self.authorization_endpoint),
            (&mut endpoints.token, self.token_endpoint),
            (&mut endpoints.userinfo, self.userinfo_endpoint),
            (&mut endpoints.jwks_uri, self.jwks_uri),
            (&mut endpoints.revocation, self.revocation_endpoint),
            (&mut endpoints.introspection, self.introspection_endpoint),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        if self.api_base.is_some() {
            config.api_base = self.api_base;
        }
        if let Some(discovery) = self.discovery {
            config.discovery = discovery;
        }
        let private_key = match self.private_key {
            Some(raw) => {
                let alg = raw
                    .alg
                    .parse::<Algorithm>()
                    .map_err(|_| format!("unknown private key algorithm {:?}", raw.alg))?;
                let pem = std::fs::read(&raw.pem_file)
                    .map_err(|e| format!("cannot read {}: {e}", raw.pem_file))?;
                Some(PrivateKey::from_pem(alg, &pem, raw.kid).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        if let Some(method) = self.token_endpoint_auth_method {
            config.auth_method = AuthMethod::parse(&method, private_key)?;
        }
        if let Some(format) = self.token_request_format {
            config.body_format = match format.as_str() {
                "form" => BodyFormat::Form,
                "json" => BodyFormat::Json,
                other => {
                    return Err(format!(
                        "token_request_format must be form or json, not {other:?}"
                    ))
                }
            };
        }
        if let Some(encoding) = self.basic_encoding {
            config.basic_encoding = match encoding.as_str() {
                "form_urlencoded" => BasicEncoding::FormUrlEncoded,
                "raw" => BasicEncoding::Raw,
                other => {
                    return Err(format!(
                        "basic_encoding must be form_urlencoded or raw, not {other:?}"
                    ))
                }
            };
        }
        if let Some(pkce) = self.pkce {
            config.pkce = pkce;
        }
        config
            .extra_authorize_params
            .extend(self.extra_authorize_params);
        if let Some(algorithms) = self.id_token_algorithms {
            config.id_token_algorithms = algorithms
                .iter()
                .map(|a| {
                    a.parse::<Algorithm>()
                        .map_err(|_| format!("unknown algorithm {a:?}"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(leeway) = self.leeway {
            config.leeway = leeway;
        }
        if let Some(ttl) = self.state_ttl {
            config.state_ttl = ttl;
        }
        if let Some(timeout) = self.timeout {
            config.timeout = Duration::from_secs(timeout);
        }
        if let Some(margin) = self.refresh_margin {
            config.refresh_margin = margin;
        }
        if let Some(push) = self.push_authorization_requests {
            config.push_authorization_requests = push;
        }
        if let Some(dpop) = self.dpop {
            config.dpop = dpop;
        }
        if let Some(jwks) = &self.jwks {
            config.jwks = Some(
                serde_json::from_str(jwks).map_err(|e| format!("jwks is not a JWK Set: {e}"))?,
            );
        }
        if let Some(placement) = self.token_placement.as_deref() {
            config.token_placement = match placement {
                "header" => crate::TokenPlacement::Header,
                "body" => crate::TokenPlacement::Body,
                "uri" => crate::TokenPlacement::Uri,
                other => {
                    return Err(format!(
                        "token_placement `{other}` is not header, body or uri"
                    ))
                }
            };
        }
        if let Some(lenient) = self.lenient_token_type {
            config.lenient_token_type = lenient;
        }
        config.check()?;
        Ok(config)
    }
}
