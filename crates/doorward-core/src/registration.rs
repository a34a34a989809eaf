//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), off unless
//! [`crate::config::RegistrationPolicy::mode`] turns it on.
//!
//! - **Who may register** (RFC 7591 §3): in `token` mode, the bearer of an initial access
//!   token (`doorward clients registration-token`: stored by digest, with an expiry and a
//!   number of uses, one spent per registration in the transaction that stores the client);
//!   in `open` mode anyone, for a public client only (`token_endpoint_auth_method` `none`; an
//!   omitted one means `none` there, a substitution §3.2.1 allows and the answer shows),
//!   under the policy's redirect
//!   schemes and hosts, its cap and its rate per client address. An initial access token is
//!   honoured in open mode too, and then registers any kind of client. A missing, unknown,
//!   expired or spent token is `invalid_token` (RFC 6750 §3.1).
//! - **What is checked**: [`metadata`] (RFC 7591 §2, §2.1). A refusal stores nothing and
//!   spends nothing.
//! - **What is kept**: a [`Client`] (`source` [`ClientSource::Registered`], a random v4 Id, a
//!   random Key as `client_id`, `client_name` as its display name, `client_uri` as its app
//!   URI), its secret as an Argon2id hash (and sealed for `client_secret_jwt`, see
//!   [`crate::model::ClientPolicy::sealed_jwt_secret`]), and a [`RegistrationRecord`]: the
//!   SHA-256 digest of its registration access token and the metadata as registered.
//! - **The answer** (RFC 7591 §3.2.1): `client_id`, `client_secret` for a confidential client
//!   (shown this once), `client_id_issued_at`, `client_secret_expires_at` 0 (never),
//!   `registration_access_token`, `registration_client_uri` and the metadata as registered.
//! - **Management** (RFC 7592 §2): read, replace and delete at `registration_client_uri` with
//!   the registration access token, found by its digest; a wrong token, another client's, or
//!   a deleted client's are the same `invalid_token`, so nobody learns which clients exist.
//!   Every read and update issues a new registration access token (§3: the client "MUST
//!   immediately discard its previous" one), since only its digest is stored. An update keeps
//!   the authentication method (and so the secret); deletion revokes everything the client
//!   was granted ([`crate::ports::ClientStore::delete_client`]).
//!
//! The cap (`max_clients`) is enforced by the store in the insert itself; the rate per address
//! (`per_address_per_hour`) is a counter of the throttle's store ([`crate::ports::ThrottleStore`]),
//! a fixed hour from the address's first registration, shared by every instance.

pub mod metadata;

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{ErrorCode, OAuthError, Secret};
use serde_json::{Map, Value};

use crate::config::{paths, RegistrationMode};
use crate::error::Error;
use crate::model::{
    AuthMethod, Client, ClientPolicy, ClientSource, InitialTokenRecord, RegistrationRecord,
};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::passwords;
use crate::ports::{Change, Registered, StoreError, ThrottleStore};
use crate::throttle::{self, Throttled};
use crate::Engine;
use metadata::{Metadata, Rules};

/// The window of [`crate::config::RegistrationPolicy::per_address_per_hour`].
const RATE_WINDOW: i64 = 3600;

/// Why a registration or management request did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// Registration is off.
    #[error("dynamic client registration is off")]
    Disabled,
    /// The initial or registration access token is missing, unknown, expired, spent or not
    /// this client's (RFC 6750 §3.1 `invalid_token`; RFC 7592 §2: never say which).
    #[error("invalid_token")]
    InvalidToken,
    /// The metadata was refused: `invalid_redirect_uri` or `invalid_client_metadata`
    /// (RFC 7591 §3.2.2).
    #[error(transparent)]
    Metadata(OAuthError),
    /// The cap on registered clients is reached.
    #[error("the server registers no more clients")]
    Full,
    /// Too many registrations from this address within the hour.
    #[error(transparent)]
    RateLimited(Throttled),
    /// Anything else (the store, a busy hash queue, a throttled secret check).
    #[error(transparent)]
    Engine(#[from] Error),
}

impl From<StoreError> for RegistrationError {
    fn from(error: StoreError) -> Self {
        Self::Engine(error.into())
    }
}

impl From<OAuthError> for RegistrationError {
    fn from(error: OAuthError) -> Self {
        Self::Metadata(error)
    }
}

/// A registration request (RFC 7591 §3.1) as the HTTP adapter read it.
#[derive(Clone, Copy, Debug)]
pub struct RegistrationRequest<'a> {
    /// The JSON body.
    pub body: &'a [u8],
    /// The `Authorization: Bearer` token, if any (RFC 7591 §3: the initial access token).
    pub token: Option<&'a str>,
    /// The client's address, for the open mode's rate.
    pub from: Option<IpAddr>,
}

/// What an initial access token allows, as `doorward clients registration-token` made it.
#[derive(Debug)]
pub struct InitialToken {
    /// The token, shown once.
    pub token: Secret,
    pub record: InitialTokenRecord,
}

impl Engine {
    /// Makes an initial access token (RFC 7591 §3) valid for `lifetime` seconds and `uses`
    /// registrations; the store keeps its digest.
    pub async fn issue_initial_token(
        &self,
        lifetime: i64,
        uses: u32,
        by: &crate::audit::Actor,
    ) -> Result<InitialToken, StoreError> {
        let token = self.new_credential(OpaqueKind::InitialAccess);
        let now = self.now();
        let record = InitialTokenRecord {
            hash: TokenHash::of(&token),
            created_at: now,
            expires_at: now.saturating_add(lifetime),
            uses_left: uses,
        };
        self.store.insert_initial_token(&record).await?;
        self.record(
            crate::audit::AuditEvent::new(
                crate::audit::kinds::REGISTRATION_TOKEN_ISSUED,
                by.clone(),
            )
            .with("expires_at", record.expires_at)
            .with("uses", uses),
        )
        .await?;
        Ok(InitialToken {
            token: Secret::new(token),
            record,
        })
    }

    /// Registers a client (RFC 7591 §3) and answers its client information response
    /// (§3.2.1), to be sent with `201 Created`.
    pub async fn register(
        &self,
        request: RegistrationRequest<'_>,
    ) -> Result<Value, RegistrationError> {
        let policy = &self.config.registration;
        let authorized = match (policy.mode, request.token) {
            (RegistrationMode::Off, _) => return Err(RegistrationError::Disabled),
            (_, Some(token)) => {
                self.live_initial_token(token).await?;
                true
            }
            (RegistrationMode::Token, None) => return Err(RegistrationError::InvalidToken),
            (RegistrationMode::Open, None) => false,
        };
        let rules = Rules {
            scopes: &self.config.scopes,
            grants: self.config.grants,
            open: (!authorized).then_some(policy),
            default_method: if authorized {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            },
            allow_http_jwks_uri: self.config.client_documents.insecure_allow_http,
        };
        let metadata = metadata::parse(request.body, &rules)?;
        if let (None, Some(limit), Some(address)) =
            (request.token, policy.per_address_per_hour, request.from)
        {
            self.count_registration(address, limit).await?;
        }
        let (mut client, secret) = self.registered_client(&metadata).await?;
        let access = self.new_credential(OpaqueKind::RegistrationAccess);
        let record = RegistrationRecord {
            client_id: client.id,
            token_hash: TokenHash::of(&access),
            metadata: Value::Object(metadata.to_json()).to_string(),
        };
        client.created_at = self.now();
        // The initial token's use is spent in the same transaction (a refusal or a failure
        // spends nothing).
        let spend = request.token.map(TokenHash::of);
        match self
            .store
            .insert_registration(
                &client,
                &record,
                policy.max_clients,
                spend.as_ref(),
                self.now(),
            )
            .await?
        {
            Registered::Stored => {}
            Registered::TokenRefused => return Err(RegistrationError::InvalidToken),
            // A random 128-bit Key or Id taken: never by chance.
            Registered::Full | Registered::Taken => return Err(RegistrationError::Full),
        }
        Ok(self.information(&client, metadata.to_json(), &access, secret.as_ref()))
    }

    /// Reads a registration (RFC 7592 §2.1) with its registration access token; answers the
    /// client information response with a new registration access token.
    pub async fn read_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<Value, RegistrationError> {
        let (client, mut record) = self.managed(client_id, token).await?;
        let stored: Map<String, Value> =
            serde_json::from_str(&record.metadata).map_err(|e| StoreError::Other(Box::new(e)))?;
        let access = self.new_credential(OpaqueKind::RegistrationAccess);
        record.token_hash = TokenHash::of(&access);
        if !self
            .writing(
                Change::Client(client.id),
                self.store.update_registration(&client, &record),
            )
            .await?
        {
            return Err(RegistrationError::InvalidToken);
        }
        Ok(self.information(&client, stored, &access, None))
    }

    /// Replaces a registration's metadata (RFC 7592 §2.2): the body must name the client's
    /// `client_id`, and a `client_secret` in it must be the client's. The authentication
    /// method cannot change (an omitted one keeps the current); omitted members are removed.
    pub async fn update_registration(
        &self,
        client_id: &str,
        request: RegistrationRequest<'_>,
    ) -> Result<Value, RegistrationError> {
        let (client, record) = self.managed(client_id, request.token).await?;
        let mut members: Map<String, Value> = match serde_json::from_slice(request.body) {
            Ok(Value::Object(members)) => members,
            _ => {
                return Err(invalid_metadata(
                    "the body must be a JSON object (RFC 7592 section 2.2)",
                ))
            }
        };
        if members.get("client_id").and_then(Value::as_str) != Some(client.key.as_str()) {
            return Err(invalid_metadata(
                "client_id: must be present and be this client's (RFC 7592 section 2.2)",
            ));
        }
        match members.get("client_secret") {
            None | Some(Value::Null) => {}
            Some(Value::String(sent)) => {
                let ok = self
                    .verify_client_secret(&client, &[&Secret::new(sent.clone())], request.from)
                    .await?;
                if !ok {
                    return Err(invalid_metadata(
                        "client_secret: not this client's secret (RFC 7592 section 2.2)",
                    ));
                }
            }
            Some(_) => return Err(invalid_metadata("client_secret: must be a string")),
        }
        let current = client
            .policy
            .auth_method
            .unwrap_or(AuthMethod::ClientSecretBasic);
        match members.get("token_endpoint_auth_method") {
            None | Some(Value::Null) => {
                members.insert("token_endpoint_auth_method".into(), current.as_str().into());
            }
            Some(Value::String(sent)) if sent != current.as_str() => {
                return Err(invalid_metadata(
                    "token_endpoint_auth_method cannot change: register a new client",
                ))
            }
            Some(_) => {}
        }
        let public = current == AuthMethod::None;
        let open = self.config.registration.mode == RegistrationMode::Open && public;
        let rules = Rules {
            scopes: &self.config.scopes,
            grants: self.config.grants,
            open: open.then_some(&self.config.registration),
            default_method: current,
            allow_http_jwks_uri: self.config.client_documents.insecure_allow_http,
        };
        let metadata = metadata::from_members(&members, &rules)?;
        if metadata.auth_method != current {
            return Err(invalid_metadata(
                "token_endpoint_auth_method cannot change: register a new client",
            ));
        }
        let mut updated = client.clone();
        apply(&mut updated, &metadata);
        updated.policy.sealed_jwt_secret = client.policy.sealed_jwt_secret.clone();
        let access = self.new_credential(OpaqueKind::RegistrationAccess);
        let record = RegistrationRecord {
            token_hash: TokenHash::of(&access),
            metadata: Value::Object(metadata.to_json()).to_string(),
            ..record
        };
        if !self
            .writing(
                Change::Client(updated.id),
                self.store.update_registration(&updated, &record),
            )
            .await?
        {
            return Err(RegistrationError::InvalidToken);
        }
        Ok(self.information(&updated, metadata.to_json(), &access, None))
    }

    /// Deletes a registered client (RFC 7592 §2.3) and revokes what it was granted.
    pub async fn delete_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<(), RegistrationError> {
        let (client, _) = self.managed(client_id, token).await?;
        self.writing(
            Change::Client(client.id),
            self.store.delete_client(client.id, self.now()),
        )
        .await?;
        Ok(())
    }

    /// The registered client that `token` manages, when it is the one named `client_id`.
    async fn managed(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<(Client, RegistrationRecord), RegistrationError> {
        if self.config.registration.mode == RegistrationMode::Off {
            return Err(RegistrationError::Disabled);
        }
        let token = token.ok_or(RegistrationError::InvalidToken)?;
        match self.store.find_registration(&TokenHash::of(token)).await? {
            Some((client, record))
                if client.key == client_id && client.source == ClientSource::Registered =>
            {
                Ok((client, record))
            }
            _ => Err(RegistrationError::InvalidToken),
        }
    }

    /// An initial access token that may register now: known, not expired, a use left.
    async fn live_initial_token(&self, token: &str) -> Result<(), RegistrationError> {
        match self.store.find_initial_token(&TokenHash::of(token)).await? {
            Some(t) if t.uses_left > 0 && self.now() < t.expires_at => Ok(()),
            _ => Err(RegistrationError::InvalidToken),
        }
    }

    /// Counts one registration from `address` and refuses past `limit` in the hour that
    /// started with its first registration. Counted before the client is stored, so that
    /// concurrent registrations cannot overshoot (the count is one atomic upsert).
    async fn count_registration(
        &self,
        address: IpAddr,
        limit: u32,
    ) -> Result<(), RegistrationError> {
        let key = throttle::registration_key(address);
        let now = self.now();
        let window_end = match self.throttle().find_failures(&key).await? {
            Some(f) if f.expires_at > now => {
                if f.count >= limit {
                    return Err(rate_limited(f.expires_at - now));
                }
                f.expires_at
            }
            _ => now + RATE_WINDOW,
        };
        let counted = self
            .throttle()
            .record_failure(&key, now, window_end)
            .await?;
        if counted.count > limit {
            return Err(rate_limited(counted.expires_at - now));
        }
        Ok(())
    }

    /// The client a registration makes, with its new secret for a client that authenticates
    /// with one (a public client and a `private_key_jwt` client, which proves itself with its
    /// keys, get none).
    async fn registered_client(
        &self,
        metadata: &Metadata,
    ) -> Result<(Client, Option<Secret>), RegistrationError> {
        let mut key = [0u8; 16];
        self.random.fill(&mut key);
        let mut client = Client {
            id: self.new_uuid(),
            key: format!("dcr_{}", URL_SAFE_NO_PAD.encode(key)),
            display_name: String::new(),
            app_uri: String::new(),
            redirect_uris: Vec::new(),
            secret_hash: None,
            previous_secret: None,
            policy: ClientPolicy::default(),
            source: ClientSource::Registered,
            created_at: self.now(),
        };
        apply(&mut client, metadata);
        if matches!(
            metadata.auth_method,
            AuthMethod::None | AuthMethod::PrivateKeyJwt
        ) {
            return Ok((client, None));
        }
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes);
        let secret = Secret::new(URL_SAFE_NO_PAD.encode(bytes));
        let (cost, random, plain) = (self.config.hash_cost, self.random.clone(), secret.clone());
        let hash = tokio::task::spawn_blocking(move || {
            passwords::hash(plain.secret(), cost, random.as_ref())
        })
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))?;
        client.secret_hash = Some(hash);
        if metadata.auth_method == AuthMethod::ClientSecretJwt {
            client.policy.sealed_jwt_secret = Some(self.sealer.seal(
                &client.jwt_secret_label(),
                secret.secret().as_bytes(),
                self.random.as_ref(),
            ));
        }
        Ok((client, Some(secret)))
    }

    /// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
    fn information(
        &self,
        client: &Client,
        mut body: Map<String, Value>,
        access: &str,
        secret: Option<&Secret>,
    ) -> Value {
        body.insert("client_id".into(), client.key.clone().into());
        body.insert("client_id_issued_at".into(), client.created_at.into());
        if client.secret_hash.is_some() {
            if let Some(secret) = secret {
                body.insert("client_secret".into(), secret.secret().into());
            }
            body.insert("client_secret_expires_at".into(), 0.into());
        }
        body.insert("registration_access_token".into(), access.into());
        body.insert(
            "registration_client_uri".into(),
            format!("{}{}/{}", self.config.issuer, paths::REGISTER, client.key).into(),
        );
        Value::Object(body)
    }
}

/// Writes the metadata into the client's fields and policy (the secret and Ids aside).
fn apply(client: &mut Client, metadata: &Metadata) {
    client.display_name = metadata
        .client_name
        .clone()
        .unwrap_or_else(|| client.key.clone());
    client.app_uri = metadata.client_uri.clone().unwrap_or_default();
    client.redirect_uris = metadata.redirect_uris.clone();
    client.policy = ClientPolicy {
        scopes: metadata.scope.clone(),
        post_logout_redirect_uris: metadata.post_logout_redirect_uris.clone(),
        auth_method: Some(metadata.auth_method),
        jwks: metadata.jwks.clone(),
        jwks_uri: metadata.jwks_uri.clone(),
        grant_types: Some(metadata.grant_types.clone()),
        require_pushed_requests: metadata.require_pushed_authorization_requests,
        dpop_bound_access_tokens: metadata.dpop_bound_access_tokens,
        ..ClientPolicy::default()
    };
}

fn invalid_metadata(description: &'static str) -> RegistrationError {
    RegistrationError::Metadata(OAuthError::new(
        ErrorCode::InvalidClientMetadata,
        description,
    ))
}

fn rate_limited(seconds: i64) -> RegistrationError {
    RegistrationError::RateLimited(Throttled {
        retry_after: u64::try_from(seconds).unwrap_or(1).max(1),
    })
}
