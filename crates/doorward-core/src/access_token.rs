//! Access tokens as they are minted: the format a client's tokens take (opaque, RFC 9068 JWT,
//! or the application's through [`crate::token_format::AccessTokenIssuer`]), and the JWT
//! access token itself with its added claims. Every grant mints through
//! `Engine::mint_access_token`.

use std::sync::Arc;

use doorward_proto::{OAuthError, ResourceUri, ScopeSet, TokenResponse};
use uuid::Uuid;

use crate::claims::{AccessTokenClaims, AccessTokenExtras};
use crate::claims_hook::{ClaimsRequest, ClaimsTarget};
use crate::error::Error;
use crate::grant::{token_type, AuthenticatedClient, Built};
use crate::jose::SigningAlg;
use crate::model::{AccessTokenFormat, AccessTokenRecord, Client, User};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::ports::StoreError;
use crate::token_format::{check_token, AccessTokenIssuer, NewAccessToken};
use crate::Engine;

impl Engine {
    /// Makes the access tokens of [`AccessTokenFormat::Application`] clients (module
    /// documentation).
    pub fn with_access_token_issuer(mut self, issuer: Arc<dyn AccessTokenIssuer>) -> Self {
        self.token_issuer = Some(issuer);
        self
    }

    /// One access token and nothing else (no refresh or ID token: `client_credentials`,
    /// extension grants), in a grant family of its own, for `user` or the client itself,
    /// built but not stored; the response says `scope` when it differs from `requested` (RFC
    /// 6749 §5.1).
    pub(crate) async fn lone_access_token(
        &self,
        authenticated: AuthenticatedClient<'_>,
        user: Option<&User>,
        scopes: &ScopeSet,
        requested: &ScopeSet,
        audience: Vec<ResourceUri>,
    ) -> Result<Built, Error> {
        let client = authenticated.client;
        let user_id = user.map(|user| user.id);
        let now = self.now();
        let lifetime = self.config.lifetimes.access_token;
        let access = self
            .mint_access_token(
                client,
                user_id,
                scopes,
                &audience,
                AccessTokenExtras {
                    dpop_jkt: authenticated.dpop_jkt,
                    user,
                    ..AccessTokenExtras::default()
                },
            )
            .await?;
        let record = AccessTokenRecord {
            hash: TokenHash::of(&access),
            family_id: self.new_time_ordered_uuid(),
            client_id: client.id,
            user_id,
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: now + lifetime,
            revoked: false,
            resources: audience,
            dpop_jkt: authenticated.dpop_jkt.map(str::to_owned),
            act: None,
        };
        Ok(Built {
            response: TokenResponse {
                access_token: access,
                token_type: token_type(authenticated.dpop_jkt),
                expires_in: lifetime.max(0) as u64,
                refresh_token: None,
                scope: (scopes != requested).then(|| scopes.to_string()),
                id_token: None,
                issued_token_type: None,
            },
            access: record,
            refresh: None,
        })
    }

    /// A new access token for `client` in its format: opaque, an RFC 9068 JWT, or the
    /// application's. The one place that chooses.
    pub(crate) async fn mint_access_token(
        &self,
        client: &Client,
        user_id: Option<Uuid>,
        scopes: &ScopeSet,
        resources: &[ResourceUri],
        extras: AccessTokenExtras<'_>,
    ) -> Result<String, Error> {
        match (client.policy.access_token_format, &self.token_issuer) {
            (AccessTokenFormat::Jwt, _) => {
                self.jwt_access_token(client, user_id, scopes, resources, extras)
                    .await
            }
            (AccessTokenFormat::Application, Some(issuer)) => {
                let now = self.now();
                let mut random = [0u8; 32];
                self.random.fill(&mut random);
                let unique = {
                    use base64::Engine as _;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
                };
                let token = issuer.issue(&NewAccessToken {
                    client,
                    user_id,
                    scopes,
                    resources,
                    issued_at: now,
                    expires_at: extras
                        .expires_at
                        .unwrap_or(now + self.config.lifetimes.access_token),
                    dpop_jkt: extras.dpop_jkt,
                    unique: &unique,
                })?;
                check_token(&token, &unique).map_err(|e| StoreError::Other(Box::new(e)))?;
                Ok(token)
            }
            _ => Ok(self.new_credential(OpaqueKind::AccessToken)),
        }
    }

    /// A JWT access token (RFC 9068 §2) signed with the server's first algorithm. `sub` is the
    /// user's id, or without a user the client's Key (a `client_credentials` token, RFC 9068
    /// §2.2, which has no `auth_time`). `aud` names `resources` (RFC 8707 §2; a string for
    /// one, an array for several), or without any the client's `access_token_audience`, else
    /// the issuer. The added claims ([`crate::claims_hook`]) follow.
    pub(crate) async fn jwt_access_token(
        &self,
        client: &Client,
        user_id: Option<uuid::Uuid>,
        scopes: &ScopeSet,
        resources: &[ResourceUri],
        extras: AccessTokenExtras<'_>,
    ) -> Result<String, Error> {
        let read;
        let user = match (extras.user, user_id) {
            (Some(user), _) => Some(user),
            (None, Some(id)) => {
                read = self
                    .store
                    .find_user(id)
                    .await?
                    .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
                Some(&read)
            }
            (None, None) => None,
        };
        let sub = match user {
            Some(user) => user.id.to_string(),
            None => client.key.clone(),
        };
        let added = self
            .added_claims(ClaimsRequest {
                target: ClaimsTarget::AccessToken,
                client,
                user,
                scopes,
                grant_data: extras.grant_data.unwrap_or(&crate::grant::NO_DATA),
            })
            .await?;
        let now = self.now();
        let first = self.config.keys.algorithms.first().copied();
        let alg = self.effective_alg(first.unwrap_or(SigningAlg::Es256));
        let claims = AccessTokenClaims {
            iss: &self.config.issuer,
            sub,
            aud: crate::resource_indicators::aud_value(&crate::resource_indicators::audience(
                resources,
                client,
                &self.config.issuer,
            )),
            exp: extras
                .expires_at
                .unwrap_or(now + self.config.lifetimes.access_token),
            iat: now,
            jti: self.new_uuid().to_string(),
            client_id: &client.key,
            scope: scopes.to_string(),
            auth_time: extras.auth_time,
            cnf: extras.dpop_jkt.map(|jkt| serde_json::json!({ "jkt": jkt })),
            act: extras.act.and_then(|act| serde_json::from_str(act).ok()),
            added,
        };
        self.sign_jws(alg, Some("at+jwt"), &claims)
    }
}
