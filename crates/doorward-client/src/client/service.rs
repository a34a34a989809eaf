//! A token for the client itself: the `client_credentials` grant (RFC 6749 §4.4), for a
//! backend service calling an API on its own behalf, with no user.

use super::Client;
use crate::error::TokenError;
use crate::token::Token;

impl Client {
    /// Asks for a token for this client itself (RFC 6749 §4.4.2), with its client
    /// authentication (which the grant requires: §4.4, "MUST only be used by confidential
    /// clients"). `scopes` empty: no `scope` parameter, the provider's default for the
    /// client (the configured scopes are a user sign-in's, often `openid`, which such a token
    /// cannot carry). The answer has no refresh token (§4.4.3: "SHOULD NOT be included"): ask
    /// again when it expires. One that comes anyway is kept, an ID token is dropped.
    pub async fn client_credentials(&self, scopes: &[&str]) -> Result<Token, TokenError> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let mut token = self.token_request(form).await?;
        token.id_token = None;
        Ok(token)
    }
}

impl Client {
    /// The resource owner password credentials grant (RFC 6749 §4.3; Authlib's
    /// `fetch_token(username=…, password=…)`): the user's password sent to the token endpoint
    /// with the client's authentication.
    ///
    /// # Security
    /// RFC 9700 §2.4: it "MUST NOT be used". The application sees the user's password, the
    /// user learns to type it anywhere, and nothing but a password can sign them in (no second
    /// factor, no consent). For a provider and a client that offer nothing else.
    pub async fn insecure_password_grant(
        &self,
        username: &str,
        password: &str,
        scopes: &[&str],
    ) -> Result<Token, TokenError> {
        let mut form = vec![
            ("grant_type", "password".to_owned()),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        self.token_request(form).await
    }
}

/// RFC 8693 §3: the token type of an OAuth 2.0 access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What a token exchange asks for (RFC 8693 §2.1), besides the subject token.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TokenExchange {
    /// The services the new token is for, as `audience` values (logical names or URIs).
    pub audiences: Vec<String>,
    /// The resources the new token is for (`resource`, RFC 8707: absolute URIs).
    pub resources: Vec<String>,
    /// The scopes asked for; none: what the provider allows (a narrowing exchange names
    /// fewer than the subject token has).
    pub scopes: Vec<String>,
    /// The type of `subject_token`; default: an access token.
    pub subject_token_type: Option<String>,
}

impl TokenExchange {
    /// For the resource `uri` (RFC 8707 `resource`).
    pub fn for_resource(uri: impl Into<String>) -> Self {
        Self {
            resources: vec![uri.into()],
            ..Self::default()
        }
    }

    /// For the service named `audience` (RFC 8693 `audience`).
    pub fn for_audience(audience: impl Into<String>) -> Self {
        Self {
            audiences: vec![audience.into()],
            ..Self::default()
        }
    }

    /// The same, asking for `scopes` only.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl Client {
    /// Trades `subject_token` (a token this service received, typically a user's access
    /// token) for a token to call another service on the same user's behalf: token exchange
    /// (RFC 8693 §2), with this client's authentication (and a DPoP proof when it has a key).
    /// The answer's `issued_token_type` must be an access token; the new token has no
    /// refresh token: exchange again when it expires.
    pub async fn exchange_token(
        &self,
        subject_token: &str,
        request: &TokenExchange,
    ) -> Result<Token, TokenError> {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token", subject_token.to_owned()),
            (
                "subject_token_type",
                request
                    .subject_token_type
                    .clone()
                    .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned()),
            ),
            ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
        ];
        for audience in &request.audiences {
            form.push(("audience", audience.clone()));
        }
        for resource in &request.resources {
            form.push(("resource", resource.clone()));
        }
        if !request.scopes.is_empty() {
            form.push(("scope", request.scopes.join(" ")));
        }
        let mut token = self.token_request(form).await?;
        match token
            .extra
            .get("issued_token_type")
            .and_then(|t| t.as_str())
        {
            Some(ACCESS_TOKEN_TYPE) => {}
            other => {
                return Err(TokenError::InvalidResponse {
                    reason: format!(
                        "the exchange issued {other:?}, not an access token (RFC 8693 §2.2.1)"
                    ),
                    body: String::new(),
                })
            }
        }
        token.id_token = None;
        Ok(token)
    }
}

/// RFC 7523 §2.1: the JWT bearer grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What a JWT bearer assertion says (RFC 7523 §3), for [`Client::jwt_bearer_grant`]: Authlib's
/// `AssertionSession(issuer=…, subject=…, audience=…, claims=…)`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct JwtBearer {
    /// `iss`; default: the client id (the client signs with its own key).
    pub issuer: Option<String>,
    /// `sub`: whom the token is for; default: the client id (a token for the client itself).
    pub subject: Option<String>,
    /// `aud`; default: the token endpoint's URL (RFC 7523 §3 item 3).
    pub audience: Option<String>,
    /// The scopes asked for (`scope`); none: the provider's default.
    pub scopes: Vec<String>,
    /// Seconds the assertion is valid; default (0): 300. It is used once anyway.
    pub lifetime: u64,
    /// More claims (`iss`, `sub`, `aud`, `exp`, `iat` and `jti` are set by the client).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl JwtBearer {
    /// A token for the user or service `subject`.
    pub fn for_subject(subject: impl Into<String>) -> Self {
        Self {
            subject: Some(subject.into()),
            ..Self::default()
        }
    }

    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl Client {
    /// The JWT bearer grant (RFC 7523 §2.1; Authlib's `AssertionSession`): an assertion signed
    /// here with `key` (a fresh `jti`, `iat`, `exp`) traded for an access token. The request
    /// carries the client authentication the configuration names; a provider that takes the
    /// assertion as the client's proof (RFC 7523 §3.1, as `doorward serve` does for an
    /// assertion signed with the client's registered key) needs [`AuthMethod::None`].
    ///
    /// [`AuthMethod::None`]: crate::AuthMethod::None
    pub async fn jwt_bearer_grant(
        &self,
        key: &crate::PrivateKey,
        request: &JwtBearer,
    ) -> Result<Token, TokenError> {
        let client_id = &self.inner.config.client_id;
        let audience = match &request.audience {
            Some(audience) => audience.clone(),
            None => self.endpoint(super::Endpoint::Token).await?.to_string(),
        };
        let now = self.now();
        let lifetime = if request.lifetime == 0 {
            300
        } else {
            request.lifetime
        };
        let mut claims = request.claims.clone();
        for (name, value) in [
            (
                "iss",
                serde_json::json!(request.issuer.as_ref().unwrap_or(client_id)),
            ),
            (
                "sub",
                serde_json::json!(request.subject.as_ref().unwrap_or(client_id)),
            ),
            ("aud", serde_json::json!(audience)),
            ("jti", serde_json::json!(crate::state::random_token())),
            ("iat", serde_json::json!(now)),
            (
                "exp",
                serde_json::json!(now.saturating_add(lifetime as i64)),
            ),
        ] {
            claims.insert(name.to_owned(), value);
        }
        let mut header = jsonwebtoken::Header::new(key.alg);
        header.kid = key.kid.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &key.key).map_err(|e| {
            TokenError::Configuration(format!("the assertion could not be signed: {e}"))
        })?;
        let scopes: Vec<&str> = request.scopes.iter().map(String::as_str).collect();
        self.jwt_bearer_with_assertion(&assertion, &scopes).await
    }

    /// The JWT bearer grant with an assertion made elsewhere: an identity provider's, a
    /// workload's (a Kubernetes service account token), sent as it is.
    pub async fn jwt_bearer_with_assertion(
        &self,
        assertion: &str,
        scopes: &[&str],
    ) -> Result<Token, TokenError> {
        let mut form = vec![
            ("grant_type", JWT_BEARER_GRANT.to_owned()),
            ("assertion", assertion.to_owned()),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let mut token = self.token_request(form).await?;
        token.id_token = None;
        Ok(token)
    }
}
