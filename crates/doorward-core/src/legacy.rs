//! The legacy grants, off unless [`crate::Grants::insecure_password`] or
//! [`crate::Grants::insecure_implicit`] is on (see their `# Security` sections: RFC 9700 §2.4,
//! §2.1.2 and §4.3 advise against both). They exist for parity with TxOAuth2 and Authlib.
//!
//! Both issue their tokens the way a code is redeemed: a code record opens the grant (so the
//! account page lists it and revoking it revokes them), and is spent in the same transaction
//! that stores the tokens.

use std::collections::HashMap;

use doorward_proto::{OAuthError, Secret, TokenResponse};

use crate::authorize::AuthorizationRequest;
use crate::engine::Error;
use crate::model::{CodeRecord, User};
use crate::opaque::{self, OpaqueKind, TokenHash};
use crate::ports::{Redemption, StoreError, UnixTime};
use crate::token::{Authenticated, Built, Grant};
use crate::Engine;

impl Engine {
    /// The `response_type` values this server answers (its metadata's
    /// `response_types_supported`).
    pub fn supported_response_types(&self) -> Vec<&'static str> {
        let grants = self.config.grants;
        let mut types = Vec::new();
        if grants.authorization_code {
            types.push("code");
        }
        if grants.insecure_implicit {
            types.push("token");
        }
        types
    }

    /// The implicit grant's answer (RFC 6749 §4.2.2): the access token in the redirect URI's
    /// fragment, with `token_type`, `expires_in`, `scope` when it differs from the request,
    /// `state` and `iss`; never a refresh token.
    pub(crate) async fn issue_implicit(
        &self,
        user: &User,
        auth_time: UnixTime,
        request: &AuthorizationRequest,
    ) -> Result<String, StoreError> {
        let audience = request.client.key.clone();
        let client = Authenticated {
            client: &request.client,
            audience: &audience,
        };
        let built = self
            .issue_through_code(
                client,
                user,
                auth_time,
                request.scopes.clone(),
                request.redirect_uri.clone(),
                false,
            )
            .await
            .map_err(|e| match e {
                Error::Store(e) => e,
                other => StoreError::Other(other.to_string().into()),
            })?;
        let expires_in = built.response.expires_in.to_string();
        let mut params = vec![
            ("access_token", built.response.access_token.as_str()),
            ("token_type", "Bearer"),
            ("expires_in", expires_in.as_str()),
        ];
        let scope = request.scopes.to_string();
        if request.scope_requested {
            params.push(("scope", scope.as_str()));
        }
        if let Some(state) = &request.state {
            params.push(("state", state.as_str()));
        }
        params.push(("iss", &self.config.issuer));
        Ok(request.redirect_uri.with_fragment(params))
    }

    /// `grant_type=password` (RFC 6749 §4.3.2): the client is authenticated, the user's
    /// password checked (Argon2, on the limited pool), and tokens issued for the requested
    /// scope within the client's.
    pub(crate) async fn insecure_password_grant(
        &self,
        authenticated: Authenticated<'_>,
        params: &HashMap<String, String>,
    ) -> Result<TokenResponse, Error> {
        let param = |name: &str| params.get(name).map(String::as_str);
        let (Some(username), Some(password)) = (param("username"), param("password")) else {
            return Err(OAuthError::invalid_request("username and password are required").into());
        };
        let (scopes, _) = self.requested_scopes(authenticated.client, param("scope"))?;
        let found = self.store.find_user_by_username(username).await?;
        let phc = found.as_ref().map_or_else(
            || crate::passwords::dummy_hash().to_owned(),
            |u| u.password_hash.clone(),
        );
        let ok = self
            .hashes
            .verify(phc, Secret::new(password))
            .await
            .map_err(|_| {
                OAuthError::new(
                    doorward_proto::ErrorCode::TemporarilyUnavailable,
                    "busy; retry",
                )
            })?;
        let user = match found {
            Some(user) if ok => user,
            _ => return Err(OAuthError::invalid_grant("invalid username or password").into()),
        };
        let redirect_uri = authenticated
            .client
            .redirect_uris
            .first()
            .cloned()
            .ok_or_else(|| OAuthError::invalid_request("the client has no redirect URI"))?;
        let built = self
            .issue_through_code(authenticated, &user, self.now(), scopes, redirect_uri, true)
            .await?;
        Ok(built.response)
    }

    /// Opens a grant with a code record for `user`, builds the tokens and spends the code with
    /// them in one transaction.
    async fn issue_through_code(
        &self,
        authenticated: Authenticated<'_>,
        user: &User,
        auth_time: UnixTime,
        scopes: doorward_proto::ScopeSet,
        redirect_uri: doorward_proto::RedirectUri,
        with_refresh: bool,
    ) -> Result<Built, Error> {
        let now = self.now();
        let code = opaque::generate(OpaqueKind::AuthorizationCode, self.random.as_ref());
        let record = CodeRecord {
            hash: TokenHash::of(&code),
            client_id: authenticated.client.id,
            user_id: user.id,
            redirect_uri,
            scopes: scopes.clone(),
            scope_requested: true,
            challenge: None,
            nonce: None,
            family_id: self.new_time_ordered_uuid(),
            auth_time,
            issued_at: now,
            expires_at: now + self.config.lifetimes.code,
        };
        self.store.insert_code(&record).await?;
        let client_id = authenticated.client.id;
        let built = self
            .build_tokens(
                authenticated,
                Grant {
                    user_id: user.id,
                    family_id: record.family_id,
                    scopes: &scopes,
                    auth_time,
                    nonce: None,
                },
                &scopes,
                &scopes,
            )
            .await?;
        let built = if with_refresh {
            built
        } else {
            built.without_refresh()
        };
        match self
            .store
            .redeem_code(&record.hash, client_id, now, Some(built.issue()))
            .await?
        {
            Redemption::Fresh(_) => Ok(built),
            _ => Err(OAuthError::server_error().into()),
        }
    }
}
