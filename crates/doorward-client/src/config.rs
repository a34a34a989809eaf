//! What the client knows about one provider, and the presets that fill it in.

use std::fmt;
use std::time::Duration;

use doorward_proto::Secret;
use jsonwebtoken::{Algorithm, EncodingKey};
use url::Url;

use crate::error::ConfigError;
use crate::id_token::DEFAULT_ALGORITHMS;

/// One provider and this application's registration with it. Start from a preset
/// ([`ProviderConfig::oidc`], [`ProviderConfig::eternaltwin`], [`ProviderConfig::oauth2`]) and
/// adjust the public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProviderConfig {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// This application's callback, registered with the provider (compared exactly).
    pub redirect_uri: Option<Url>,
    /// The OIDC / RFC 8414 issuer identifier; ID tokens must carry it in `iss`.
    pub issuer: Option<String>,
    /// Fetch the issuer's metadata for the endpoints not configured below.
    pub discovery: bool,
    pub endpoints: Endpoints,
    /// Base URL for [`Authorized::get`](crate::Authorized::get) and friends.
    pub api_base: Option<Url>,
    pub scopes: Vec<String>,
    pub auth_method: AuthMethod,
    pub body_format: BodyFormat,
    pub basic_encoding: BasicEncoding,
    /// PKCE S256 (RFC 7636; RFC 9700 §2.1.1 wants it for every client). On by default.
    pub pkce: bool,
    /// Extra authorization-request parameters (Eternaltwin's `access_type=offline`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// ID-token signature algorithms accepted; never `none` or HMAC.
    pub id_token_algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `iat`, in seconds (default 60).
    pub leeway: u64,
    /// How long an authorization may take, in seconds (default 600).
    pub state_ttl: u64,
    /// Timeout of every HTTP call (default 10 s).
    pub timeout: Duration,
    /// Refresh an access token this many seconds before it expires (default 60).
    pub refresh_margin: u64,
    /// Push every authorization request to the provider first (RFC 9126) and send the browser
    /// with its `request_uri` only. Off by default; requests are pushed anyway when the
    /// provider's metadata says `require_pushed_authorization_requests`.
    pub push_authorization_requests: bool,
    /// Bind tokens to a DPoP key (RFC 9449) the client generates when it is built (or the one
    /// given to [`crate::ClientBuilder::dpop`]). Off by default.
    pub dpop: bool,
    /// The provider's keys, given here instead of fetched from `jwks_uri` (a provider without
    /// discovery, a pinned set): ID tokens and JWT access tokens are checked against these
    /// only.
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
    /// Where a bearer token goes on API and userinfo calls (Authlib's `token_placement`).
    /// A DPoP-bound token always goes in the header.
    pub token_placement: TokenPlacement,
    /// Accept a token response without `token_type` (a bare `{"access_token": …}`, as some
    /// odd providers answer), taking it as `Bearer`.
    ///
    /// # Security
    /// Off by default: RFC 6749 §5.1 requires `token_type`, and a client that assumes Bearer
    /// could send a token meant for another scheme (DPoP, MAC) as a bearer token. Turn it on
    /// only for a provider known to omit it (auth-code-flow's "works with any odd provider").
    pub lenient_token_type: bool,
}

/// Where a bearer token goes on a call (RFC 6750 §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenPlacement {
    /// `Authorization: Bearer …` (§2.1): the default, and the only form every resource must
    /// accept.
    #[default]
    Header,
    /// `access_token` in an `application/x-www-form-urlencoded` body (§2.2): for calls with a
    /// form body or none (a GET call is refused: §2.2 forbids it).
    Body,
    /// `access_token` in the query (§2.3), with `Cache-Control: no-store`.
    ///
    /// # Security
    /// The token lands in server logs, browser history and `Referer` headers (RFC 6750 §5.3,
    /// RFC 9700 §4.3.2): for a provider that accepts nothing else.
    Uri,
}

/// Endpoints configured by hand; the ones left `None` come from discovery.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Endpoints {
    pub authorization: Option<Url>,
    pub token: Option<Url>,
    pub userinfo: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub revocation: Option<Url>,
    pub introspection: Option<Url>,
    /// RFC 8628 §3.1.
    pub device_authorization: Option<Url>,
    /// RFC 9126 §2.
    pub pushed_authorization_request: Option<Url>,
}

/// How the client authenticates to the token endpoint (OIDC Core §9, RFC 6749 §2.3).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic with the id and secret (RFC 6749 §2.3.1). The default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
    /// A JWT signed with the client secret (HS256, RFC 7523 §2.2).
    ClientSecretJwt,
    /// A JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt(PrivateKey),
    /// A public client: only `client_id` (PKCE stands in for the secret).
    None,
}

impl AuthMethod {
    pub fn parse(name: &str, private_key: Option<PrivateKey>) -> Result<Self, String> {
        Ok(match name {
            "client_secret_basic" => Self::ClientSecretBasic,
            "client_secret_post" => Self::ClientSecretPost,
            "client_secret_jwt" => Self::ClientSecretJwt,
            "private_key_jwt" => {
                Self::PrivateKeyJwt(private_key.ok_or("private_key_jwt needs a private key")?)
            }
            "none" => Self::None,
            other => return Err(format!("unknown token endpoint auth method {other:?}")),
        })
    }

    pub(crate) fn needs_secret(&self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }
}

/// A private key for `private_key_jwt`.
#[derive(Clone)]
pub struct PrivateKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: EncodingKey,
    pub(crate) kid: Option<String>,
}

impl PrivateKey {
    /// A PEM key (PKCS#8, or PKCS#1 for RSA) for `RS256`/`PS256`…, `ES256`/`ES384` or `EdDSA`.
    pub fn from_pem(alg: Algorithm, pem: &[u8], kid: Option<String>) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            provider: String::new(),
            reason,
        };
        let key = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            other => return Err(invalid(format!("{other:?} is not a private-key algorithm"))),
        }
        .map_err(|e| invalid(format!("the private key is not a valid PEM key: {e}")))?;
        Ok(Self { alg, key, kid })
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The token request's body encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749 §4.1.3). The default.
    #[default]
    Form,
    /// A JSON object of strings, as the Eternaltwin client sends.
    Json,
}

/// How the id and secret are put in the Basic header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BasicEncoding {
    /// Form-urlencoded before base64, as RFC 6749 §2.3.1 says. The default.
    #[default]
    FormUrlEncoded,
    /// As they are: Eternaltwin does not decode them (`python_client@clients` must stay so).
    Raw,
}

impl ProviderConfig {
    fn base(client_id: String) -> Self {
        Self {
            client_id,
            client_secret: None,
            redirect_uri: None,
            issuer: None,
            discovery: false,
            endpoints: Endpoints::default(),
            api_base: None,
            scopes: Vec::new(),
            auth_method: AuthMethod::default(),
            body_format: BodyFormat::default(),
            basic_encoding: BasicEncoding::default(),
            pkce: true,
            extra_authorize_params: Vec::new(),
            id_token_algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: 60,
            state_ttl: 600,
            timeout: Duration::from_secs(10),
            refresh_margin: 60,
            push_authorization_requests: false,
            dpop: false,
            jwks: None,
            token_placement: TokenPlacement::Header,
            lenient_token_type: false,
        }
    }

    /// Any OpenID Connect provider, by issuer URL: endpoints and keys come from discovery,
    /// scope `openid`.
    ///
    /// ```
    /// use doorward_client::ProviderConfig;
    ///
    /// let config = ProviderConfig::oidc("https://login.example", "my-app")
    ///     .with_secret("my-secret")
    ///     .with_scopes(["openid", "profile", "email"]);
    /// assert!(config.discovery);
    /// assert_eq!(config.issuer.as_deref(), Some("https://login.example"));
    /// assert!(config.endpoints.token.is_none(), "found by discovery");
    /// ```
    pub fn oidc(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: Some(issuer.into()),
            discovery: true,
            scopes: vec!["openid".into()],
            ..Self::base(client_id.into())
        }
    }

    /// A plain OAuth 2.0 provider with the two endpoints given.
    ///
    /// ```
    /// use doorward_client::ProviderConfig;
    ///
    /// # fn main() -> Result<(), url::ParseError> {
    /// let config = ProviderConfig::oauth2(
    ///     "https://github.com/login/oauth/authorize".parse()?,
    ///     "https://github.com/login/oauth/access_token".parse()?,
    ///     "my-app",
    /// )
    /// .with_secret("my-secret")
    /// .with_scopes(["read:user"]);
    /// assert!(!config.discovery);
    /// assert!(config.pkce, "PKCE is on unless turned off");
    /// # Ok(())
    /// # }
    /// ```
    pub fn oauth2(authorization: Url, token: Url, client_id: impl Into<String>) -> Self {
        let mut config = Self::base(client_id.into());
        config.endpoints.authorization = Some(authorization);
        config.endpoints.token = Some(token);
        config
    }

    /// Eternaltwin (or `doorward serve`, which speaks its wire): endpoints at the origin of
    /// `url` (`/oauth/authorize`, `/oauth/token`, API under `/api/v1`; any path in `url` is
    /// dropped, like the eternaltwin client does), Basic with raw credentials, JSON token body,
    /// scope `base`, `access_type=offline`. No discovery, no ID token.
    ///
    /// ```
    /// use doorward_client::ProviderConfig;
    ///
    /// # fn main() -> Result<(), url::ParseError> {
    /// let url = "https://eternaltwin.org/any/path".parse()?;
    /// let config = ProviderConfig::eternaltwin(&url, "my-app@clients").with_secret("my-secret");
    /// let token = config.endpoints.token.as_ref().map(|url| url.as_str());
    /// assert_eq!(token, Some("https://eternaltwin.org/oauth/token"));
    /// assert_eq!(config.scopes, ["base"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn eternaltwin(url: &Url, client_id: impl Into<String>) -> Self {
        let origin = |path: &str| {
            let mut u = url.clone();
            u.set_path(path);
            u.set_query(None);
            u.set_fragment(None);
            u
        };
        let mut config = Self::base(client_id.into());
        config.endpoints.authorization = Some(origin("/oauth/authorize"));
        config.endpoints.token = Some(origin("/oauth/token"));
        config.api_base = Some(origin("/"));
        config.scopes = vec!["base".into()];
        config.body_format = BodyFormat::Json;
        config.basic_encoding = BasicEncoding::Raw;
        config.extra_authorize_params = vec![("access_type".into(), "offline".into())];
        config
    }

    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret.into()));
        self
    }

    pub fn with_redirect_uri(mut self, redirect_uri: Url) -> Self {
        self.redirect_uri = Some(redirect_uri);
        self
    }

    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// What the signed state names as the authorization server: the issuer, else the
    /// authorization endpoint.
    pub(crate) fn authorization_server_id(&self) -> String {
        match (&self.issuer, &self.endpoints.authorization) {
            (Some(issuer), _) => issuer.clone(),
            (None, Some(endpoint)) => endpoint.to_string(),
            (None, None) => self.client_id.clone(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.auth_method.needs_secret() && self.client_secret.is_none() {
            return Err("this token endpoint auth method needs a client secret".into());
        }
        if self
            .id_token_algorithms
            .iter()
            .any(|alg| matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err("HMAC algorithms are never accepted for ID tokens".into());
        }
        if !self.pkce && matches!(self.auth_method, AuthMethod::None) {
            return Err(
                "a public client (auth method none) must use PKCE (RFC 9700 §2.1.1)".into(),
            );
        }
        if self.issuer.is_none() && self.endpoints.authorization.is_none() {
            return Err("an issuer or an authorization endpoint is needed".into());
        }
        if self.discovery && self.issuer.is_none() {
            return Err("discovery needs an issuer".into());
        }
        Ok(())
    }
}
