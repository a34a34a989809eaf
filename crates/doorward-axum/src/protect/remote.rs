//! Verifiers of a provider in another process (feature `remote`): by introspection (RFC 7662)
//! and by checking JWT access tokens against its key set (RFC 9068), both through a
//! `doorward_client::Client`.

use super::cache::GrantCache;
use super::{async_trait, AccessGrant, ResourceServer, TokenVerifier, VerifyError};

/// How long a verified JWT access token is kept (never past its `exp`): a token presented
/// again within it costs a digest and a map lookup instead of a signature check. A key the
/// provider withdraws from its set stops validating new tokens at once, and the tokens it
/// signed that were checked already within this bound.
pub const JWT_CACHE_SECONDS: i64 = 300;

impl ResourceServer {
    /// Tokens of a provider in another process, asked by introspection (RFC 7662) with the
    /// credentials of `client` (a client registered as a resource server), for the resource
    /// `audience`: a resource server sees every client's tokens, so a token whose `aud` does
    /// not name this API (one another resource asked for, RFC 8707) is refused. A token
    /// issued without `resource` has the provider's default audience (Doorward: the issuer,
    /// or the client's `access_token_audience`). [`ResourceServer::with_metadata`] replaces it
    /// with the resource identifier.
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn introspection(client: doorward_client::Client, audience: impl Into<String>) -> Self {
        Self::new(IntrospectionVerifier { client }).with_audience(audience)
    }

    /// JWT access tokens (RFC 9068) of a provider in another process, checked against its key
    /// set (fetched again once on an unknown key: rotation), for the resource `audience`. A
    /// token that passed is kept for [`JWT_CACHE_SECONDS`] (never past its `exp`, on the
    /// client's clock) and is not checked again meanwhile; one that failed is checked each time.
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn jwt(client: doorward_client::Client, audience: impl Into<String>) -> Self {
        let audience: String = audience.into();
        Self::new(JwtVerifier {
            client,
            audience: audience.clone(),
            cache: GrantCache::default(),
        })
        .with_audience(audience)
    }
}

struct IntrospectionVerifier {
    client: doorward_client::Client,
}

#[async_trait]
impl TokenVerifier for IntrospectionVerifier {
    async fn verify(&self, token: &str) -> Result<AccessGrant, VerifyError> {
        let answer = self
            .client
            .introspect(token)
            .await
            .map_err(|e| VerifyError::Unavailable(e.to_string()))?;
        if !answer.active {
            return Err(VerifyError::Invalid("the token is not active".into()));
        }
        if answer
            .token_type
            .as_deref()
            // Only access tokens: RFC 7662 §2.2's `token_type` is absent, a bearer token type
            // or DPoP (RFC 9449 §6.2); anything else (a refresh token, however a provider
            // names it) is refused.
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("dpop"))
        {
            return Err(VerifyError::Invalid(
                "the token is not a bearer access token".into(),
            ));
        }
        let audience = match answer.extra.get("aud") {
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            Some(serde_json::Value::Array(many)) => many
                .iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => answer.iss.clone().into_iter().collect(),
        };
        let subject = answer
            .sub
            .clone()
            .ok_or_else(|| VerifyError::Invalid("the token has no subject".into()))?;
        let dpop_jkt = confirmation(answer.extra.get("cnf"))?;
        // RFC 9449 §6.2: a DPoP token says which key; one that does not is refused.
        if dpop_jkt.is_none()
            && answer
                .token_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("dpop"))
        {
            return Err(VerifyError::Invalid(
                "the token is DPoP-bound but names no key (cnf.jkt)".into(),
            ));
        }
        Ok(AccessGrant {
            user: (answer.client_id.as_deref() != Some(subject.as_str())).then(|| subject.clone()),
            subject,
            client_id: answer.client_id.clone(),
            scopes: answer
                .scope
                .as_deref()
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            audience,
            expires_at: answer.exp.unwrap_or(i64::MAX),
            dpop_jkt,
            grant_data: serde_json::Map::new(),
        })
    }
}

struct JwtVerifier {
    client: doorward_client::Client,
    audience: String,
    cache: GrantCache,
}

#[async_trait]
impl TokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<AccessGrant, VerifyError> {
        use doorward_client::IdTokenError;
        let now = self.client.now();
        let key = GrantCache::key(token);
        if let Some(grant) = self.cache.get(&key, now) {
            return Ok(grant);
        }
        let claims = match self
            .client
            .validate_jwt_access_token(token, &self.audience)
            .await
        {
            Ok(claims) => claims,
            Err(IdTokenError::Jwks(e)) => return Err(VerifyError::Unavailable(e.to_string())),
            Err(e) => return Err(VerifyError::Invalid(e.to_string())),
        };
        let grant = AccessGrant {
            dpop_jkt: confirmation(claims.claims.get("cnf"))?,
            user: (claims.client_id.as_deref() != Some(claims.subject.as_str()))
                .then(|| claims.subject.clone()),
            subject: claims.subject,
            client_id: claims.client_id,
            scopes: claims.scopes,
            audience: claims.audience,
            expires_at: claims.expires_at,
            grant_data: serde_json::Map::new(),
        };
        self.cache
            .put(key, &grant, now.saturating_add(JWT_CACHE_SECONDS), now);
        Ok(grant)
    }
}

/// The DPoP key thumbprint of a token's `cnf` claim (RFC 9449 §6.1). A confirmation of
/// another kind (an mTLS certificate's `x5t#S256`, anything unreadable) is refused: taken as
/// no confirmation, the token would pass as a bearer token.
fn confirmation(cnf: Option<&serde_json::Value>) -> Result<Option<String>, VerifyError> {
    let Some(cnf) = cnf else {
        return Ok(None);
    };
    match cnf.get("jkt").and_then(serde_json::Value::as_str) {
        Some(jkt) if cnf.as_object().is_some_and(|o| o.len() == 1) => Ok(Some(jkt.to_owned())),
        _ => Err(VerifyError::Invalid(
            "the token is bound to a key this API cannot check (cnf)".into(),
        )),
    }
}
