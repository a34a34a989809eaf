//! The legacy grants, off unless [`crate::Grants::insecure_password`] or
//! [`crate::Grants::insecure_implicit`] is on (see their `# Security` sections: RFC 9700 §2.4,
//! §2.1.2 and §4.3 advise against both). They exist for parity with TxOAuth2 and Authlib.
//!
//! Both need the server's switch and the client's (`ClientPolicy::insecure_*`). Both issue
//! their tokens the way a code is redeemed: a code record opens the grant (so that revoking the
//! client on the account page revokes them; the password grant records a consent so the page
//! lists it), and is spent in the same transaction that stores the tokens.

use std::collections::HashMap;

use doorward_proto::{OAuthError, Secret, TokenResponse};

use crate::error::Error;
use crate::grant::{AuthenticatedClient, Built, Grant};
use crate::model::{CodeRecord, User};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::ports::{Redemption, StoreError, UnixTime};
use crate::request::{AuthorizationRequest, AuthorizationResponse};
use crate::throttle::{self, Guard};
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
        amr: &[String],
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationResponse, StoreError> {
        let audience = request.client.key.clone();
        let client = AuthenticatedClient {
            client: &request.client,
            audience: &audience,
            dpop_jkt: None,
        };
        let built = self
            .issue_through_code(
                client,
                user,
                (auth_time, amr),
                Opening {
                    scopes: request.scopes.clone(),
                    redirect_uri: request.redirect_uri.clone(),
                    resources: &request.resources,
                },
                false,
            )
            .await
            .map_err(|e| match e {
                Error::Store(e) => e,
                other => StoreError::Other(other.to_string().into()),
            })?;
        // `scope` is always sent: RFC 6749 §4.2.2 requires it whenever it differs from the
        // request, which it does when the request named none and got the defaults.
        let params = vec![
            (
                "access_token".to_owned(),
                built.response.access_token.clone(),
            ),
            ("token_type".to_owned(), "Bearer".to_owned()),
            (
                "expires_in".to_owned(),
                built.response.expires_in.to_string(),
            ),
            ("scope".to_owned(), request.scopes.to_string()),
        ];
        Ok(request.success(params, &self.config.issuer))
    }

    /// `grant_type=password` (RFC 6749 §4.3.2): the client is authenticated, the user's
    /// password checked (Argon2, on the limited pool), and tokens issued for the requested
    /// scope within the client's.
    pub(crate) async fn insecure_password_grant(
        &self,
        authenticated: AuthenticatedClient<'_>,
        params: &HashMap<String, String>,
        resources: &[&str],
        from: Option<std::net::IpAddr>,
    ) -> Result<TokenResponse, Error> {
        let param = |name: &str| params.get(name).map(String::as_str);
        let (Some(username), Some(password)) = (param("username"), param("password")) else {
            return Err(OAuthError::invalid_request("username and password are required").into());
        };
        let (scopes, requested) = self.requested_scopes(authenticated.client, param("scope"))?;
        let resources =
            crate::resource_indicators::requested(&self.config, authenticated.client, resources)?;
        // RFC 6749 §4.3.2 and §10.10: guard against brute force, with the same counters as
        // the sign-in page (per username and per address, in the store): past the limit, the
        // password is not even checked.
        let guard = Guard::check(
            &*self.store,
            throttle::password_counters(username, from),
            self.now(),
        )
        .await?;
        let found = self.store.find_user_by_username(username).await?;
        let phc =
            crate::passwords::verifiable_hash(found.as_ref().map(|u| u.password_hash.as_str()));
        let ok = self
            .hashes
            .verify(phc, Secret::new(password), guard.owners())
            .await?;
        let user = match found {
            Some(user) if ok => user,
            _ => {
                guard.failed(&*self.store, self.now()).await?;
                return Err(OAuthError::invalid_grant("invalid username or password").into());
            }
        };
        guard.succeeded(&*self.store).await?;
        if user.is_disabled() {
            return Err(OAuthError::invalid_grant("this account is disabled").into());
        }
        // A password alone does not sign in an account with a second factor.
        if self.second_factor_step(&user).await.is_err() {
            return Err(OAuthError::invalid_grant(
                "this account signs in with a second factor: use the authorization code flow",
            )
            .into());
        }
        // The grant is listed on the user's account page, where it can be revoked.
        self.store
            .record_consent(&crate::model::ConsentRecord {
                user_id: user.id,
                client_id: authenticated.client.id,
                scopes: scopes.clone(),
                granted_at: self.now(),
            })
            .await?;
        let redirect_uri = authenticated
            .client
            .redirect_uris
            .first()
            .cloned()
            .ok_or_else(|| OAuthError::invalid_request("the client has no redirect URI"))?;
        let mut built = self
            .issue_through_code(
                authenticated,
                &user,
                (self.now(), &["pwd".to_owned()]),
                Opening {
                    scopes: scopes.clone(),
                    redirect_uri,
                    resources: &resources,
                },
                true,
            )
            .await?;
        // `scope` when it differs from the request (RFC 6749 §5.1): defaults were substituted.
        if !requested {
            built.response.scope = Some(scopes.to_string());
        }
        self.note_issued("password", authenticated.client, Some(user.id), &scopes);
        Ok(built.response)
    }

    /// Opens a grant with a code record for `user`, builds the tokens and spends the code with
    /// them in one transaction.
    async fn issue_through_code(
        &self,
        authenticated: AuthenticatedClient<'_>,
        user: &User,
        (auth_time, amr): (UnixTime, &[String]),
        opening: Opening<'_>,
        with_refresh: bool,
    ) -> Result<Built, Error> {
        let Opening {
            scopes,
            redirect_uri,
            resources,
        } = opening;
        let now = self.now();
        let code = self.new_credential(OpaqueKind::AuthorizationCode);
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
            resources: resources.to_vec(),
            dpop_jkt: None,
            scope_narrowed: false,
            grant_data: serde_json::Map::new(),
            amr: amr.to_vec(),
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
                    resources,
                    data: &crate::grant::NO_DATA,
                    amr,
                },
                &scopes,
                &scopes,
                resources,
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

/// What the code record that opens a legacy grant holds besides its client and user.
struct Opening<'a> {
    scopes: doorward_proto::ScopeSet,
    redirect_uri: doorward_proto::RedirectUri,
    /// The resources named (RFC 8707), the grant's and its access token's audience.
    resources: &'a [doorward_proto::ResourceUri],
}
