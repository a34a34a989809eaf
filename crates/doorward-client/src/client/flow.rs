//! The authorization code flow (RFC 6749 §4.1, with PKCE and OIDC): the authorization URL to
//! send the browser to, the callback's checks, and the code exchange.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::{Client, Endpoint};
use crate::error::{FinishError, IdTokenError, ProviderError, StartError};
use crate::id_token::IdTokenClaims;
use crate::state::StateParams;
use crate::token::Token;

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
    /// Instead of the configured redirect URI, for this request (Authlib's
    /// `authorize_redirect(request, redirect_uri)`): finish with
    /// [`Client::finish_authorization_at`] and the same URI, which the provider must have
    /// registered.
    pub redirect_uri: Option<Url>,
}

/// The request that reached the callback: its query (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207) and,
/// for the mix-up defence of providers without `iss`, its path. Use [`Callback::from_uri`] with
/// the request target, or deserialize the query with your framework's extractor and add the
/// path with [`Callback::at_path`].
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_uri: Option<String>,
    pub iss: Option<String>,
    /// The path the callback request came to (never read from the query).
    /// [`Client::finish_authorization`] refuses a callback that came to another path than the
    /// provider's redirect URI (RFC 9700 §4.4.2).
    #[serde(skip)]
    pub path: Option<String>,
}

impl Callback {
    /// Parses a request target (`/oauth/callback/name?code=…&state=…`) or an absolute URL:
    /// its path and its query.
    ///
    /// ```
    /// use doorward_client::Callback;
    ///
    /// let callback = Callback::from_uri("/oauth/callback/eternaltwin?code=c&state=s");
    /// assert_eq!(callback.path.as_deref(), Some("/oauth/callback/eternaltwin"));
    /// assert_eq!(callback.code.as_deref(), Some("c"));
    /// ```
    pub fn from_uri(uri: &str) -> Self {
        let uri = uri.split('#').next().unwrap_or_default();
        let (target, query) = uri.split_once('?').unwrap_or((uri, ""));
        let path = match Url::parse(target) {
            Ok(url) if url.has_host() => url.path().to_owned(),
            _ => target.to_owned(),
        };
        Self::from_query(query).at_path(path)
    }

    /// The same callback, known to have come to `path`.
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

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

impl Client {
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
        let redirect_uri = options
            .redirect_uri
            .as_ref()
            .or(config.redirect_uri.as_ref())
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
            // RFC 9449 §10: the code is bound to the client's DPoP key.
            if let Some(key) = &self.inner.dpop {
                query.append_pair("dpop_jkt", key.thumbprint());
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
        if self.pushes_requests().await? {
            url = self.push(url).await?;
        }
        Ok(Authorization { url, state })
    }

    /// Whether authorization requests go through the pushed authorization request endpoint:
    /// configured so, or required by the provider's metadata (RFC 9126 §5).
    async fn pushes_requests(&self) -> Result<bool, StartError> {
        let config = &self.inner.config;
        if config.push_authorization_requests {
            return Ok(true);
        }
        if !config.discovery || config.issuer.is_none() {
            return Ok(false);
        }
        Ok(self.metadata().await?.require_pushed_authorization_requests)
    }

    /// Pushes the authorization request `url` carries (RFC 9126 §2), with the client's
    /// authentication, and answers the URL that carries only `client_id` and the
    /// `request_uri` (§4).
    async fn push(&self, url: Url) -> Result<Url, StartError> {
        let endpoint = self.endpoint(Endpoint::PushedAuthorization).await?;
        let params: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "client_id")
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        let form = params
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let response = self
            .proven_post(endpoint, form)
            .await
            .map_err(StartError::Push)?;
        #[derive(Deserialize)]
        struct Pushed {
            request_uri: String,
        }
        let invalid = |reason: String| {
            StartError::Push(crate::error::TokenError::InvalidResponse {
                reason,
                body: response.text().chars().take(512).collect(),
            })
        };
        if response.status.as_u16() != 201 && !response.status.is_success() {
            return Err(StartError::Push(
                crate::token::parse_token_response(&response, self.now())
                    .err()
                    .unwrap_or_else(|| crate::error::TokenError::UnexpectedResponse {
                        status: response.status.as_u16(),
                        body: response.text(),
                    }),
            ));
        }
        let pushed: Pushed =
            serde_json::from_slice(&response.body).map_err(|e| invalid(e.to_string()))?;
        let mut front = url;
        front.set_query(None);
        front
            .query_pairs_mut()
            .append_pair("client_id", &self.inner.config.client_id)
            .append_pair("request_uri", &pushed.request_uri);
        Ok(front)
    }

    /// Finishes an authorization from the callback's query: checks that the callback came to
    /// this provider's redirect URI when its path is known, the state and that it is the one
    /// `sent_state` to this browser (kept in its session or a cookie; `None` is refused
    /// with [`InvalidState::NotBound`](crate::InvalidState::NotBound) unless the client was
    /// built with `insecure_unbound_callbacks`), the issuer (RFC 9207), turns `error=`
    /// into [`FinishError::Authorization`], redeems the code with the PKCE verifier, and
    /// validates the ID token when `openid` was requested.
    ///
    /// # Mix-up attacks (RFC 9700 §4.4)
    /// With several providers, a malicious one can send the user to an honest one under this
    /// application's name, and receive the code the honest one issued if the application
    /// finishes with the client the user picked. A provider that sends `iss` (RFC 9207) is
    /// defended by it. One without an issuer (the Eternaltwin and plain OAuth 2 presets) needs
    /// its own redirect URI (§4.4.2), and the application must give the callback's path
    /// ([`Callback::from_uri`], [`Callback::at_path`]): a callback that came to another
    /// provider's redirect URI is refused with [`FinishError::WrongCallbackPath`] before any
    /// request is sent. Clients built with
    /// [`require_callback_path`](crate::ClientBuilder::require_callback_path) (a
    /// [`Registry`](crate::Registry) does it for providers without an issuer) refuse a callback
    /// whose path is unknown.
    pub async fn finish_authorization(
        &self,
        callback: &Callback,
        sent_state: Option<&str>,
    ) -> Result<SignIn, FinishError> {
        self.finish(
            callback,
            sent_state,
            self.inner.config.redirect_uri.as_ref(),
        )
        .await
    }

    /// [`Client::finish_authorization`] for an authorization started with another redirect URI
    /// than the configured one ([`AuthorizationOptions::redirect_uri`]): the token request
    /// names it (RFC 6749 §4.1.3), and the callback must have come to its path.
    pub async fn finish_authorization_at(
        &self,
        callback: &Callback,
        sent_state: Option<&str>,
        redirect_uri: &Url,
    ) -> Result<SignIn, FinishError> {
        self.finish(callback, sent_state, Some(redirect_uri)).await
    }

    async fn finish(
        &self,
        callback: &Callback,
        sent_state: Option<&str>,
        redirect_uri: Option<&Url>,
    ) -> Result<SignIn, FinishError> {
        let config = &self.inner.config;
        self.check_callback_path(callback, redirect_uri)?;
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
        if let Some(redirect_uri) = redirect_uri {
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

    /// RFC 9700 §4.4.2: the authorization response must come to the redirect URI this client
    /// sent, the one of its provider.
    fn check_callback_path(
        &self,
        callback: &Callback,
        redirect_uri: Option<&Url>,
    ) -> Result<(), FinishError> {
        let expected = redirect_uri.map(Url::path);
        match (&callback.path, expected) {
            (Some(got), Some(expected)) if got != expected => Err(FinishError::WrongCallbackPath {
                expected: expected.to_owned(),
                got: got.clone(),
            }),
            (None, _) if self.inner.require_callback_path => Err(FinishError::UnknownCallbackPath),
            _ => Ok(()),
        }
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
}
