//! Past 700 lines, still one idea: the token endpoint's one path for the code and refresh
//! grants (authenticate, check the DPoP proof, check, build, spend and store in one step,
//! revoke the family on a replay), whose pieces call each other; split, each half would
//! import the other.
//!
//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6): client authentication and the
//! `authorization_code` and `refresh_token` grants (`client_credentials` is in
//! [`crate::client_credentials`]).

use std::collections::HashMap;
use std::sync::Arc;

use doorward_proto::{
    form_decode, CodeVerifier, ErrorCode, OAuthError, ResourceUri, ScopeSet, Secret, TokenResponse,
};

use crate::audit::{kinds, Actor, AuditEvent};
use crate::claims::{user_claims, AccessTokenExtras, IdTokenClaims, IdTokenInput};
use crate::claims_hook::{ClaimsRequest, ClaimsTarget};
use crate::dpop::{ProofAt, ProofTarget};
use crate::error::Error;
use crate::grant::{token_type, AuthenticatedClient, Built, Grant};
use crate::jose::SigningAlg;
use crate::model::{
    AccessTokenRecord, AuthMethod, Client, CodeRecord, GrantType, RefreshTokenRecord,
};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::ports::{Change, ClientRef, Redemption};
use crate::request::{BasicCredentials, ClientEndpoint, TokenRequest};
use crate::Engine;

const SPENT_OR_UNKNOWN_CODE: &str = "the authorization code is invalid, expired or already used";

impl Engine {
    /// Answers a token request (RFC 6749 §5.1) or says why not (§5.2).
    pub async fn token(&self, request: &TokenRequest) -> Result<TokenResponse, Error> {
        let answer = self.answer_token(request).await;
        if let Err(error) = &answer {
            self.note_refusal(request, error);
        }
        answer
    }

    /// A refused token request: its error code, the grant type and the `client_id` it named
    /// (as printable text of at most 128 characters: it is not authenticated).
    fn note_refusal(&self, request: &TokenRequest, error: &Error) {
        if self.audit.is_none() {
            self.counters.count_event(kinds::TOKEN_REFUSED);
            return;
        }
        let code = match error {
            Error::OAuth(e) => e.code.as_str(),
            Error::Throttled(_) => "throttled",
            Error::Store(_) | Error::EndSession(_) => "server_error",
        };
        let printable =
            |text: &str| -> String { text.chars().filter(|c| !c.is_control()).take(128).collect() };
        let named = request
            .basic
            .as_ref()
            .map(|b| b.id.as_str())
            .or_else(|| request.params.get("client_id").map(String::as_str));
        let mut event = AuditEvent::new(kinds::TOKEN_REFUSED, Actor::Anonymous)
            .from_address(request.client_address)
            .with("error", code);
        if let Some(grant) = request.params.get("grant_type") {
            event = event.with("grant_type", printable(grant));
        }
        if let Some(named) = named {
            event = event.with("client_id", printable(named));
        }
        self.note(event);
    }

    async fn answer_token(&self, request: &TokenRequest) -> Result<TokenResponse, Error> {
        // RFC 7523 §3.1: an extension grant's own parameters may prove which client sends a
        // request that carries no client authentication.
        let by_grant = if request.carries_no_client_authentication() {
            self.client_by_grant(&request.params).await?
        } else {
            None
        };
        let proven_by_grant = by_grant.is_some();
        let (client, audience) = match by_grant {
            Some(client) => {
                if let Some(id) = request.params.get("client_id") {
                    if !names_client(&client, id) {
                        return Err(OAuthError::invalid_request(
                            "client_id names another client than the grant's assertion",
                        )
                        .into());
                    }
                }
                let key = client.key.clone();
                (Arc::new(client), key)
            }
            None => {
                self.authenticate_client(request, ClientEndpoint::Token)
                    .await?
            }
        };
        // Most requests carry no proof: the endpoint's URL is not even formatted for them.
        let proof = if request.dpop.is_absent() {
            None
        } else {
            self.check_dpop(
                &request.dpop,
                ProofTarget {
                    method: "POST",
                    url: &self.endpoint_url(crate::config::paths::TOKEN),
                    access_token: None,
                },
                ProofAt::AuthorizationServer,
            )
            .await?
        };
        // RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens` gets no bearer
        // token.
        if proof.is_none() && client.policy.dpop_bound_access_tokens && self.config.dpop.enabled {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this client's tokens are bound to its DPoP key: send a DPoP proof",
            )
            .into());
        }
        let client = AuthenticatedClient {
            client: &client,
            audience: &audience,
            dpop_jkt: proof.as_ref().map(|p| p.jkt.as_str()),
        };
        let param = |name: &str| request.params.get(name).map(String::as_str);
        let resources: Vec<&str> = request.resources.iter().map(String::as_str).collect();
        let grants = self.config.grants;
        // The client's own list of grant types (RFC 6749 §5.2 `unauthorized_client`), for a
        // grant the server answers (another is `unsupported_grant_type` below).
        if let Some(grant) = param("grant_type").and_then(GrantType::parse) {
            let answered = self.supported_grant_types().contains(&grant.as_str());
            if answered && !client.client.policy.allows_grant(grant) {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    format!("this client may not use the {} grant", grant.as_str()),
                )
                .into());
            }
        }
        match param("grant_type") {
            None | Some("") => Err(OAuthError::invalid_request("grant_type is missing").into()),
            Some("authorization_code") if grants.authorization_code => {
                self.redeem_code(client, &request.params, &resources).await
            }
            Some("refresh_token") if grants.refresh_token => {
                self.refresh(client, &request.params, &resources).await
            }
            Some("client_credentials") if grants.client_credentials => {
                self.client_credentials(client, &request.params, &resources)
                    .await
            }
            Some(grant) if grants.device_code && grant == GrantType::DeviceCode.as_str() => {
                self.device_code_grant(client, param("device_code")).await
            }
            Some(grant) if grants.token_exchange && grant == GrantType::TokenExchange.as_str() => {
                self.token_exchange(client, &request.params, &resources)
                    .await
            }
            Some("password")
                if grants.insecure_password && client.client.policy.insecure_password =>
            {
                self.insecure_password_grant(
                    client,
                    &request.params,
                    &resources,
                    request.client_address,
                )
                .await
            }
            Some(grant) => match self.extension(grant) {
                Some(extension) => {
                    self.extension_grant(
                        std::sync::Arc::clone(extension),
                        client,
                        proven_by_grant,
                        &request.params,
                        &resources,
                    )
                    .await
                }
                None => Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!(
                        "supported grant types: {}",
                        self.supported_grant_types().join(", ")
                    ),
                )
                .into()),
            },
        }
    }

    /// The `grant_type` values this server answers (also its metadata's `grant_types_supported`).
    pub fn supported_grant_types(&self) -> Vec<&str> {
        let grants = self.config.grants;
        let mut names = Vec::new();
        if grants.authorization_code {
            names.push("authorization_code");
        }
        if grants.refresh_token {
            names.push("refresh_token");
        }
        if grants.client_credentials {
            names.push("client_credentials");
        }
        if grants.device_code {
            names.push(GrantType::DeviceCode.as_str());
        }
        if grants.token_exchange {
            names.push(GrantType::TokenExchange.as_str());
        }
        if grants.insecure_password {
            names.push("password");
        }
        if grants.insecure_implicit {
            names.push("implicit");
        }
        names.extend(self.extension_grants.iter().map(|g| g.grant_type()));
        names
    }

    /// Client authentication (RFC 6749 section 2.3): HTTP Basic (`client_secret_basic`) or
    /// `client_id` and `client_secret` in the body (`client_secret_post`), never both at once
    /// (§2.3: "MUST NOT use more than one authentication method in each request").
    ///
    /// RFC 6749 §2.3.1 form-encodes the id and secret inside Basic; the Eternaltwin client
    /// sends them raw. Both are accepted: the raw value is tried first, then the decoded one
    /// when it differs.
    ///
    /// Returns the client and the `client_id` it named itself with (the `aud` of its ID
    /// tokens). A client registered with a `token_endpoint_auth_method` must use that one.
    ///
    /// A `client_assertion` (`private_key_jwt`, `client_secret_jwt`) is checked by
    /// [`crate::client_assertion`], with `endpoint` as an `aud` it may name.
    pub(crate) async fn authenticate_client(
        &self,
        request: &TokenRequest,
        endpoint: ClientEndpoint,
    ) -> Result<(Arc<Client>, String), Error> {
        let (client, method, asserted) =
            match self.authenticate_assertion(request, endpoint).await? {
                Some(a) => (a.client, a.method, Some(a.named)),
                None => {
                    let (client, method) = self.authenticate_client_any(request).await?;
                    (client, method, None)
                }
            };
        if client.policy.auth_method.is_some_and(|m| m != method) {
            return Err(OAuthError::invalid_client(format!(
                "this client must authenticate with {}",
                client.policy.auth_method.map_or("", |m| m.as_str())
            ))
            .into());
        }
        // The `aud` of ID tokens: the client's Key, or its Id when it names itself by Id, in
        // one spelling whatever the request's (OIDC Core §12.2: a refreshed ID token keeps
        // the same `aud`).
        let named = match (asserted, &request.basic) {
            (Some(sub), _) => sub,
            (None, Some(basic)) => basic.id.clone(),
            (None, None) => request.params.get("client_id").cloned().unwrap_or_default(),
        };
        let by_id = matches!(ClientRef::parse(&named), ClientRef::Id(_))
            || form_decode(&named)
                .is_some_and(|decoded| matches!(ClientRef::parse(&decoded), ClientRef::Id(_)));
        let audience = if by_id {
            client.id.to_string()
        } else {
            client.key.clone()
        };
        Ok((client, audience))
    }

    async fn authenticate_client_any(
        &self,
        request: &TokenRequest,
    ) -> Result<(Arc<Client>, AuthMethod), Error> {
        let failed = || OAuthError::invalid_client("client authentication failed");
        let body_id = request.params.get("client_id").map(String::as_str);
        let body_secret = request.params.get("client_secret");
        match (&request.basic, body_secret) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(
                "the client used more than one authentication method (RFC 6749 section 2.3)",
            )
            .into()),
            (Some(basic), None) => {
                let client = self
                    .authenticate_basic(basic, request.client_address)
                    .await?
                    .ok_or_else(failed)?;
                if let Some(id) = body_id {
                    if !names_client(&client, id) {
                        return Err(OAuthError::invalid_request(
                            "client_id in the body names another client than the Authorization header",
                        )
                        .into());
                    }
                }
                Ok((client, AuthMethod::ClientSecretBasic))
            }
            (None, Some(secret)) => {
                let id = body_id.ok_or_else(|| {
                    OAuthError::invalid_request("client_secret was sent without client_id")
                })?;
                let client = self.find_client(id).await?.ok_or_else(failed)?;
                let secret = Secret::new(secret.as_str());
                if self
                    .verify_client_secret(&client, &[&secret], request.client_address)
                    .await?
                {
                    Ok((client, AuthMethod::ClientSecretPost))
                } else {
                    Err(failed().into())
                }
            }
            (None, None) => match self.public_client(body_id).await? {
                Some(client) => Ok((client, AuthMethod::None)),
                None => Err(OAuthError::invalid_client(
                    "client authentication is required (HTTP Basic, client_secret_post, a client_assertion, or client_id alone for a public client)",
                )
                .into()),
            },
        }
    }

    /// A public client (`token_endpoint_auth_method = "none"`) names itself by `client_id`
    /// in the body and has nothing else to show (RFC 6749 §3.2.1); any other client named so
    /// without a secret is not authenticated.
    async fn public_client(&self, body_id: Option<&str>) -> Result<Option<Arc<Client>>, Error> {
        let Some(id) = body_id.filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        Ok(self
            .resolve_client(id)
            .await?
            .filter(|client| client.policy.is_public()))
    }

    async fn authenticate_basic(
        &self,
        basic: &BasicCredentials,
        from: Option<std::net::IpAddr>,
    ) -> Result<Option<Arc<Client>>, Error> {
        let raw_secret = basic.secret.secret();
        let decoded_id = form_decode(&basic.id).filter(|d| d != &basic.id);
        let decoded_secret = form_decode(raw_secret)
            .filter(|d| d != raw_secret)
            .map(Secret::new);
        let client = match self.find_client(&basic.id).await? {
            Some(client) => client,
            None => match &decoded_id {
                Some(id) => match self.find_client(id).await? {
                    Some(client) => client,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        let mut candidates = vec![&basic.secret];
        candidates.extend(decoded_secret.as_ref());
        Ok(self
            .verify_client_secret(&client, &candidates, from)
            .await?
            .then_some(client))
    }

    /// The `authorization_code` grant (RFC 6749 §4.1.3). The code is read, checked, the tokens
    /// built, and then the code is spent and the tokens stored in one transaction
    /// ([`crate::ports::CodeStore::redeem_code`]): a database failure in between leaves the
    /// code unspent for a retry, never spent with nothing issued.
    async fn redeem_code(
        &self,
        authenticated: AuthenticatedClient<'_>,
        params: &HashMap<String, String>,
        resources: &[&str],
    ) -> Result<TokenResponse, Error> {
        let client = authenticated.client;
        let param = |name: &str| params.get(name).map(String::as_str);
        let code = param("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let now = self.now();
        let hash = TokenHash::of(code);
        // A device authorization's code record is redeemed by its device code only (RFC
        // 8628), and is no code here: nothing of it is spent or revoked by this request.
        let record = self
            .store
            .find_code(&hash, client.id)
            .await?
            .filter(|record| record.redirect_uri.as_str() != crate::model::DEVICE_REDIRECT)
            .ok_or_else(|| OAuthError::invalid_grant(SPENT_OR_UNKNOWN_CODE))?;
        if let Err(error) = check_code(client, &record, now, param)
            .and_then(|()| check_bound_key(record.dpop_jkt.as_deref(), authenticated.dpop_jkt))
        {
            // A failed attempt spends the code, so that a verifier cannot be guessed twice;
            // one that finds it spent already is a replay.
            if let Redemption::Spent(spent) =
                self.store.redeem_code(&hash, client.id, now, None).await?
            {
                self.writing(
                    Change::Family(spent.family_id),
                    self.store.revoke_family(spent.family_id, now),
                )
                .await?;
                self.note_replay(
                    kinds::CODE_REPLAYED,
                    client.id,
                    spent.user_id,
                    spent.family_id,
                );
            }
            return Err(error.into());
        }
        // RFC 8707 §2.2: within the grant's resources. Not a guess at the code, so the code
        // is left unspent for a corrected request.
        let audience = crate::resource_indicators::narrowed(
            &self.config,
            client,
            &record.resources,
            resources,
        )?;
        // RFC 6749 §5.1: `scope` is said when the application granted fewer scopes than asked.
        let asked = if record.scope_narrowed {
            ScopeSet::default()
        } else {
            record.scopes.clone()
        };
        let built = self
            .build_tokens(
                authenticated,
                Grant::of_code(&record),
                &record.scopes,
                &asked,
                &audience,
            )
            .await?;
        match self
            .store
            .redeem_code(&hash, client.id, now, Some(built.issue()))
            .await?
        {
            Redemption::Fresh(_) => {
                self.note_issued(
                    "authorization_code",
                    client,
                    Some(record.user_id),
                    &record.scopes,
                );
                Ok(built.response)
            }
            Redemption::Spent(spent) => {
                // A replayed code: revoke what was issued from it (RFC 6749 §4.1.2).
                self.writing(
                    Change::Family(spent.family_id),
                    self.store.revoke_family(spent.family_id, now),
                )
                .await?;
                self.note_replay(
                    kinds::CODE_REPLAYED,
                    client.id,
                    spent.user_id,
                    spent.family_id,
                );
                Err(OAuthError::invalid_grant(SPENT_OR_UNKNOWN_CODE).into())
            }
            Redemption::Unknown => Err(OAuthError::invalid_grant(SPENT_OR_UNKNOWN_CODE).into()),
        }
    }

    /// The `refresh_token` grant (RFC 6749 section 6) with rotation: each refresh token works once,
    /// and presenting a spent one revokes its whole family (RFC 9700 §4.14.2), except within
    /// the grace window (see [`Engine::replayed_refresh`]). Like a code, the token is spent
    /// and the new pair stored in one transaction.
    async fn refresh(
        &self,
        authenticated: AuthenticatedClient<'_>,
        params: &HashMap<String, String>,
        resources: &[&str],
    ) -> Result<TokenResponse, Error> {
        let client = authenticated.client;
        let invalid =
            || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
        let token = params
            .get("refresh_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let now = self.now();
        let hash = TokenHash::of(token);
        let record = match self.store.find_refresh_token(&hash).await? {
            Some(record) if record.client_id == client.id => record,
            _ => return Err(invalid().into()),
        };
        // RFC 9449 §5: a public client's refresh token is bound to its DPoP key, first of all:
        // within the grace window a spent one returns its first answer (with an ID token).
        check_bound_key(record.dpop_jkt.as_deref(), authenticated.dpop_jkt)?;
        if record.used_at.is_some() {
            return self.replayed_refresh(token, &record, now).await;
        }
        if record.revoked || record.expires_at <= now {
            return Err(invalid().into());
        }
        let family_ends =
            Grant::of_refresh(&record).started_at() + self.config.lifetimes.refresh_family;
        if family_ends <= now {
            return Err(OAuthError::invalid_grant(
                "the grant has reached its absolute lifetime; the user must sign in again",
            )
            .into());
        }
        let scopes = match params.get("scope").map(|s| ScopeSet::parse(s)) {
            None => record.scopes.clone(),
            Some(Err(e)) => return Err(OAuthError::invalid_scope(e.to_string()).into()),
            Some(Ok(s)) if s.is_empty() => record.scopes.clone(),
            Some(Ok(s)) if s.is_subset(&record.scopes) => s,
            Some(Ok(_)) => return Err(OAuthError::invalid_scope(
                "a refresh cannot ask for scopes beyond the original grant (RFC 6749 section 6)",
            )
            .into()),
        };
        // RFC 8707 §2.2: the access token may be narrowed to some of the grant's resources,
        // and the new refresh token keeps them all, as it keeps the grant's scope.
        let audience = crate::resource_indicators::narrowed(
            &self.config,
            client,
            &record.resources,
            resources,
        )?;
        // The access token may be narrowed; the new refresh token keeps the grant's scope
        // (RFC 6749 §6: "identical to that of the refresh token included by the client").
        let built = self
            .build_tokens(
                authenticated,
                Grant::of_refresh(&record),
                &scopes,
                &scopes,
                &audience,
            )
            .await?;
        let sealed = (self.config.lifetimes.refresh_grace > 0)
            .then(|| seal_successor(token, &built.response, self.random.as_ref()));
        match self
            .store
            .rotate_refresh_token(
                &hash,
                client.id,
                now,
                Some(built.issue()),
                sealed.as_deref(),
            )
            .await?
        {
            Redemption::Fresh(_) => {
                self.note_issued("refresh_token", client, Some(record.user_id), &scopes);
                Ok(built.response)
            }
            // Another request spent it a moment ago.
            Redemption::Spent(spent) => self.replayed_refresh(token, &spent, now).await,
            Redemption::Unknown => Err(invalid().into()),
        }
    }

    /// A spent refresh token presented again. Within `refresh_grace` seconds of its first use,
    /// by its client, it is not a replay by a thief but the client racing itself (two tabs,
    /// two instances behind a load balancer, a retry after a lost answer; Hydra #1831): it gets
    /// the answer of the first use, so the grant stays one family. That answer was stored with
    /// the spent token in the same transaction, sealed with a key derived from the token, so
    /// only a holder of the token can read it, and only for the window (the purge forgets it
    /// afterwards). Otherwise it is a replay: the family is revoked (RFC 9700 §4.14.2).
    async fn replayed_refresh(
        &self,
        token: &str,
        record: &RefreshTokenRecord,
        now: i64,
    ) -> Result<TokenResponse, Error> {
        let grace = self.config.lifetimes.refresh_grace;
        let within =
            grace > 0 && !record.revoked && record.used_at.is_some_and(|used| now - used <= grace);
        if within {
            if let Some(answer) = record
                .successor
                .as_deref()
                .and_then(|sealed| open_successor(token, sealed))
            {
                return Ok(answer);
            }
        }
        self.writing(
            Change::Family(record.family_id),
            self.store.revoke_family(record.family_id, now),
        )
        .await?;
        self.note_replay(
            kinds::REFRESH_REPLAYED,
            record.client_id,
            record.user_id,
            record.family_id,
        );
        Err(OAuthError::invalid_grant(
            "the refresh token was already used; its grant has been revoked",
        )
        .into())
    }

    /// Builds an access token for `access_scopes` and `audience` (its resources, RFC 8707;
    /// none: the default audience) and a refresh token for the whole grant, without storing
    /// them; `scope` goes in the response only when it differs from `requested` (RFC 6749
    /// §5.1).
    ///
    /// With `openid` in the answer's scope the response carries an ID token (OIDC Core
    /// §3.1.3.3, and §12.2 on refresh, where the nonce is left out).
    pub(crate) async fn build_tokens(
        &self,
        authenticated: AuthenticatedClient<'_>,
        grant: Grant<'_>,
        access_scopes: &ScopeSet,
        requested: &ScopeSet,
        audience: &[ResourceUri],
    ) -> Result<Built, Error> {
        let client = authenticated.client;
        let family_ends = grant.started_at() + self.config.lifetimes.refresh_family;
        let Grant {
            user_id,
            family_id,
            scopes: grant_scopes,
            auth_time,
            nonce,
            resources: grant_resources,
            data: grant_data,
            amr,
        } = grant;
        let now = self.now();
        let lifetimes = &self.config.lifetimes;
        // The ID token follows the scope of this answer: a refresh narrowed to `openid` gets
        // no `profile` or `email` claims, and one narrowed without `openid` no ID token (the
        // claims are released per scope, OIDC Core §5.4). Its user is read once, for a JWT
        // access token's claims too.
        let user = if access_scopes.contains("openid") {
            Some(
                self.store
                    .find_user(user_id)
                    .await?
                    // A grant that raced the user's disabling gets no ID token.
                    .filter(|user| !user.is_disabled())
                    .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?,
            )
        } else {
            None
        };
        let access = self
            .mint_access_token(
                client,
                Some(user_id),
                access_scopes,
                audience,
                AccessTokenExtras {
                    auth_time: Some(auth_time),
                    dpop_jkt: authenticated.dpop_jkt,
                    grant_data: Some(grant_data),
                    user: user.as_ref(),
                    ..AccessTokenExtras::default()
                },
            )
            .await?;
        let id_token = if let Some(user) = &user {
            Some(
                self.id_token(IdTokenInput {
                    client,
                    audience: authenticated.audience,
                    user,
                    scopes: access_scopes,
                    auth_time,
                    amr,
                    nonce,
                    access_token: &access,
                    grant_data,
                })
                .await?,
            )
        } else {
            None
        };
        let refresh = (self.config.grants.refresh_token
            && client.policy.allows_grant(GrantType::RefreshToken))
        .then(|| self.new_credential(OpaqueKind::RefreshToken));
        let scope = (access_scopes != requested).then(|| access_scopes.to_string());
        let access_record = AccessTokenRecord {
            hash: TokenHash::of(&access),
            family_id,
            client_id: client.id,
            user_id: Some(user_id),
            scopes: access_scopes.clone(),
            issued_at: now,
            expires_at: now + lifetimes.access_token,
            revoked: false,
            resources: audience.to_vec(),
            dpop_jkt: authenticated.dpop_jkt.map(str::to_owned),
            act: None,
        };
        let refresh_record = refresh.as_ref().map(|refresh| RefreshTokenRecord {
            hash: TokenHash::of(refresh),
            family_id,
            client_id: client.id,
            user_id,
            scopes: grant_scopes.clone(),
            auth_time,
            issued_at: now,
            expires_at: (now + lifetimes.refresh_token).min(family_ends),
            revoked: false,
            used_at: None,
            successor: None,
            resources: grant_resources.to_vec(),
            // RFC 9449 §5: bound for a public client, which has nothing else to prove
            // possession with; a confidential client's is protected by its authentication.
            dpop_jkt: authenticated
                .dpop_jkt
                .filter(|_| client.policy.is_public())
                .map(str::to_owned),
            // Kept in the family's row, not with the token.
            grant_data: serde_json::Map::new(),
            amr: Vec::new(),
        });
        Ok(Built {
            response: TokenResponse {
                access_token: access,
                token_type: token_type(authenticated.dpop_jkt),
                expires_in: lifetimes.access_token.max(0) as u64,
                refresh_token: refresh,
                scope,
                id_token,
                issued_token_type: None,
            },
            access: access_record,
            refresh: refresh_record,
        })
    }
}

impl Engine {
    /// The algorithm of `client`'s ID tokens.
    pub fn id_token_alg(&self, client: &Client) -> SigningAlg {
        self.effective_alg(client.policy.id_token_alg.unwrap_or(SigningAlg::Rs256))
    }

    pub(crate) async fn id_token(&self, input: IdTokenInput<'_>) -> Result<String, Error> {
        let alg = self.id_token_alg(input.client);
        let now = self.now();
        let mut user = user_claims(input.user, input.scopes);
        self.add_claims(
            &mut user,
            ClaimsRequest {
                target: ClaimsTarget::IdToken,
                client: input.client,
                user: Some(input.user),
                scopes: input.scopes,
                grant_data: input.grant_data,
            },
        )
        .await?;
        let claims = IdTokenClaims {
            iss: &self.config.issuer,
            aud: input.audience,
            exp: now + self.config.lifetimes.id_token,
            iat: now,
            auth_time: input.auth_time,
            nonce: input.nonce,
            at_hash: (alg != SigningAlg::Ed25519)
                .then(|| doorward_proto::at_hash(alg.as_str(), input.access_token)),
            amr: (!input.amr.is_empty()).then_some(input.amr),
            acr: crate::acr::of(input.amr),
            user,
        };
        self.sign_jws(alg, None, &claims)
    }
}

/// The checks of a code at the token endpoint: expiry, the redirect URI (RFC 6749 §4.1.3) and
/// PKCE (RFC 7636 §4.6).
fn check_code<'a>(
    client: &Client,
    record: &CodeRecord,
    now: i64,
    param: impl Fn(&str) -> Option<&'a str>,
) -> Result<(), OAuthError> {
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant(SPENT_OR_UNKNOWN_CODE));
    }
    // RFC 6749 §4.1.3 requires redirect_uri when the authorization request had one. The
    // Eternaltwin client never sends it, so Doorward lets it be left out when the client
    // has exactly one registered redirect URI: the code is bound to that URI anyway.
    match param("redirect_uri") {
        Some(sent) if sent != record.redirect_uri.as_str() => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ))
        }
        Some(_) => {}
        None if client.redirect_uris.len() == 1 => {}
        None => return Err(OAuthError::invalid_request("redirect_uri is missing")),
    }
    check_pkce(&record.challenge, param("code_verifier"))
}

/// A code or refresh token bound to a DPoP key (RFC 9449 §5, §10) is redeemed only with a
/// proof of that key.
fn check_bound_key(bound: Option<&str>, proof: Option<&str>) -> Result<(), OAuthError> {
    match (bound, proof) {
        (None, _) => Ok(()),
        (Some(bound), Some(proof))
            if doorward_proto::constant_time_eq(bound.as_bytes(), proof.as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), None) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this grant is bound to a DPoP key: send a proof made with it",
        )),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "this grant is bound to another DPoP key",
        )),
    }
}

/// Whether `client_id` names this client, by Key or by Id.
fn names_client(client: &Client, client_id: &str) -> bool {
    client.key == client_id || client.id.to_string() == client_id.to_ascii_lowercase()
}

/// PKCE at the token endpoint (RFC 7636 §4.6). A verifier sent for a code issued without a
/// challenge is refused too: accepting it would allow a PKCE downgrade (RFC 9700 §4.8.2).
fn check_pkce(
    challenge: &Option<(
        doorward_proto::CodeChallenge,
        doorward_proto::CodeChallengeMethod,
    )>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier was sent but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is missing")),
        (Some((challenge, method)), Some(verifier)) => {
            let verifier = CodeVerifier::parse(verifier)
                .map_err(|e| OAuthError::invalid_grant(format!("code_verifier: {e}")))?;
            if challenge.verify(*method, &verifier) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

/// The key that seals the answer of a refresh: derived from the refresh token it spent, which
/// the store never holds (it keeps the token's SHA-256 only; this is a different hash).
fn successor_key(token: &str) -> chacha20poly1305::Key {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"doorward refresh successor v1\0");
    hasher.update(token.as_bytes());
    hasher.finalize()
}

fn seal_successor(
    token: &str,
    answer: &TokenResponse,
    random: &dyn crate::ports::Random,
) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&successor_key(token));
    let mut nonce = [0u8; 24];
    random.fill(&mut nonce);
    // Invariant: a struct of strings and numbers serializes, and encryption does not fail.
    let plain = serde_json::to_vec(answer).expect("a token response serializes");
    let sealed = cipher
        .encrypt(
            chacha20poly1305::XNonce::from_slice(&nonce),
            plain.as_slice(),
        )
        .expect("XChaCha20-Poly1305 encryption does not fail");
    [&nonce[..], &sealed].concat()
}

fn open_successor(token: &str, sealed: &[u8]) -> Option<TokenResponse> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, sealed) = sealed.split_at(24);
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&successor_key(token));
    let plain = cipher
        .decrypt(chacha20poly1305::XNonce::from_slice(nonce), sealed)
        .ok()?;
    serde_json::from_slice(&plain).ok()
}
