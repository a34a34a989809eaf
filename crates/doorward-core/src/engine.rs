//! The engine: the protocol rules over the storage, clock and randomness ports. Each flow
//! module (`authorize`, `token`, `session`, …) adds its operations to [`Engine`] in an `impl`
//! block of its own; the modules a flow uses (values, records, ports, JOSE, passwords) never
//! import `Engine`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use doorward_proto::{ScopeSet, Secret};
use uuid::Uuid;

use crate::client_document::{
    self, document_url, parse_document, DocumentCache, DocumentError, LookupError,
};
use crate::client_keys::KeyCache;
use crate::clock::{Clock, Random, UnixTime};
use crate::config::{ClientSpec, EngineConfig, UserSpec};
use crate::error::Error;
use crate::fetch::{Fetcher, NoFetcher};
use crate::grant::{ExtensionRequest, Granted};
use crate::jose::{KeyRing, Sealer, CSRF_SECRET, SERVER_SECRET_LEN};
use crate::model::{AuthMethod, Client, ClientSource, NewUser, User, UserSource};
use crate::passwords::{self, CacheAnswer, HashLimiter, SecretCache};
use crate::ports::{Change, ClientRef, SharedStore, StoreError};
use crate::throttle::{Counter, Guard};

/// An application-defined grant type (RFC 6749 §4.5), registered with
/// [`Engine::with_extension_grant`] (`crate::extension_grant`).
#[async_trait]
pub trait ExtensionGrant: Send + Sync {
    /// The `grant_type` this grant answers: an absolute URI (RFC 6749 §4.5), such as
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer` or `https://games.example/grants/ticket`.
    fn grant_type(&self) -> &str;

    /// The client that sent a request carrying no client authentication at all (no Basic, no
    /// `client_secret`, no `client_assertion`, no `client_id`), when the grant's own
    /// parameters prove it: RFC 7523 §3.1 lets an assertion signed with the client's key
    /// stand for its authentication. `None` (the default): the request is refused as any
    /// unauthenticated one is.
    ///
    /// Only the client is named here; [`ExtensionGrant::decide`] must still verify the proof
    /// (it is told so by [`ExtensionRequest::client_proven_by_grant`]).
    async fn client_of(
        &self,
        engine: &Engine,
        params: &HashMap<String, String>,
    ) -> Result<Option<Client>, Error> {
        let _ = (engine, params);
        Ok(None)
    }

    /// Whether to grant, and what: a token's subject and scope, or an error for the client
    /// (`invalid_grant` for a credential that does not hold, RFC 6749 §5.2).
    async fn decide(
        &self,
        engine: &Engine,
        request: ExtensionRequest<'_>,
    ) -> Result<Granted, Error>;
}

/// The authorization server: protocol rules over the storage, clock and randomness ports.
pub struct Engine {
    pub(crate) store: SharedStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
    pub(crate) config: EngineConfig,
    pub(crate) secret_cache: SecretCache,
    pub(crate) hashes: HashLimiter,
    pub(crate) csrf_key: Vec<u8>,
    /// Makes and checks the DPoP nonces (RFC 9449 §8), derived from the CSRF secret.
    pub(crate) dpop_nonces: crate::dpop::NonceKey,
    pub(crate) keys: KeyRing,
    pub(crate) sealer: Sealer,
    /// Outbound fetches (client key sets, metadata documents); [`Engine::with_fetcher`].
    pub(crate) fetcher: Arc<dyn Fetcher>,
    pub(crate) client_keys: KeyCache,
    pub(crate) documents: DocumentCache,
    /// The read cache and the feed that keeps it true ([`Engine::with_change_feed`]).
    pub(crate) cache: Option<(
        Arc<crate::cache::ReadCache>,
        Arc<dyn crate::ports::ChangeFeed>,
    )>,
    /// The application's grant types ([`Engine::with_extension_grant`]).
    pub(crate) extension_grants: Vec<Arc<dyn ExtensionGrant>>,
    /// The application's claims ([`Engine::with_claims_hook`]).
    pub(crate) claims_hook: Option<Arc<dyn crate::claims_hook::ClaimsHook>>,
    /// The application's access-token format ([`Engine::with_access_token_issuer`]).
    pub(crate) token_issuer: Option<Arc<dyn crate::token_format::AccessTokenIssuer>>,
    /// The queue of audit events ([`Engine::with_audit`]); without it, only admin changes
    /// are recorded.
    pub(crate) audit: Option<crate::audit::AuditQueue>,
    /// What the engine did since the start, for the metrics.
    pub(crate) counters: crate::counters::Counters,
    /// The WebAuthn relying party of the passkeys ([`crate::relying_party`]); none when the
    /// issuer's host is not a domain.
    pub(crate) webauthn: Option<webauthn_rs::Webauthn>,
}

impl Engine {
    /// Builds the engine, creating the server's CSRF key and signing keys in the store on first
    /// start.
    pub async fn new(
        store: SharedStore,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        config: EngineConfig,
    ) -> Result<Self, Error> {
        let sealer = Sealer::new(config.key_encryption_secret.as_ref().map(Secret::secret));
        let mut candidate = [0u8; SERVER_SECRET_LEN];
        random.fill(&mut candidate);
        let stored = store
            .ensure_server_secret(
                CSRF_SECRET,
                &sealer.seal_secret(CSRF_SECRET, &candidate, random.as_ref()),
            )
            .await?;
        let csrf_key = sealer
            .open_secret(CSRF_SECRET, &stored)
            .map_err(StoreError::from)?;
        // Computed now rather than at the first failed sign-in, which would wait for it.
        let _ = tokio::task::spawn_blocking(passwords::dummy_hash).await;
        let config_issuer = config.issuer.clone();
        let engine = Self {
            store,
            clock,
            random,
            config,
            secret_cache: SecretCache::default(),
            hashes: HashLimiter::default(),
            dpop_nonces: crate::dpop::NonceKey::derive(&csrf_key),
            csrf_key,
            keys: KeyRing::default(),
            sealer,
            fetcher: Arc::new(NoFetcher),
            client_keys: KeyCache::default(),
            documents: DocumentCache::default(),
            cache: None,
            extension_grants: Vec::new(),
            claims_hook: None,
            token_issuer: None,
            audit: None,
            counters: Default::default(),
            webauthn: crate::relying_party::relying_party(&config_issuer),
        };
        engine.maintain_keys().await?;
        Ok(engine)
    }

    /// The port through which the engine fetches clients' `jwks_uri` key sets and Client ID
    /// Metadata Documents ([`crate::fetch`]); without one, such clients are refused.
    pub fn with_fetcher(mut self, fetcher: Arc<dyn Fetcher>) -> Self {
        self.fetcher = fetcher;
        self
    }

    /// The scopes `client` may have: its own list within the server's, or all the server's.
    pub(crate) fn allowed_scopes(&self, client: &crate::model::Client) -> ScopeSet {
        match &client.policy.scopes {
            Some(scopes) => scopes.intersection(&self.config.scopes),
            None => self.config.scopes.clone(),
        }
    }

    /// The URL of an endpoint of this server: the issuer and `path` (`config::paths`).
    pub fn endpoint_url(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer)
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// A time-ordered UUID (v7): grant families are indexed, and ids that grow with time are
    /// appended at the end of the index instead of splitting pages all over it.
    pub(crate) fn new_time_ordered_uuid(&self) -> Uuid {
        let mut random = [0u8; 10];
        self.random.fill(&mut random);
        let millis = u64::try_from(self.now()).unwrap_or(0) * 1000;
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    /// A new opaque credential of `kind`, dated by the engine's clock (`opaque.rs`).
    pub(crate) fn new_credential(&self, kind: crate::opaque::OpaqueKind) -> String {
        crate::opaque::generate(kind, self.random.as_ref(), self.clock.now_millis())
    }

    pub(crate) fn new_uuid(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.random.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Looks a client up by the `client_id` of a request: its UUID Id or its Key.
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        self.lookup_client(ClientRef::parse(client_id)).await
    }

    /// The client a request's `client_id` names: a stored client by its Id or Key, or, when
    /// [`EngineConfig::client_documents`] is on and the `client_id` is a document URL, the
    /// client its metadata document describes ([`crate::client_document`]): taken from the
    /// store while this instance's copy is fresh, else fetched, checked and upserted (a
    /// stable Id from the URL, so grants and consents outlive a refresh). A refused document
    /// is refused again from memory for a few seconds (`client_document::FAILURE_COOLDOWN`).
    /// A client from a document is found only by its URL, and not at all when documents are
    /// off.
    pub async fn resolve_client(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<Client>>, LookupError> {
        let policy = self.config.client_documents;
        let url = match document_url(client_id, policy) {
            Some(url) if policy.enabled => url.map_err(DocumentError::Invalid)?,
            _ => {
                return Ok(self
                    .find_client(client_id)
                    .await?
                    .filter(|c| c.source != ClientSource::MetadataDocument))
            }
        };
        let now = self.now();
        if self.documents.is_fresh(url.as_str(), now) {
            let stored = self.lookup_client(ClientRef::Key(url.as_str())).await?;
            if let Some(client) = stored.filter(|c| c.source == ClientSource::MetadataDocument) {
                return Ok(Some(client));
            }
        }
        if let Some(refused) = self.documents.refusal(url.as_str(), now) {
            return Err(refused.into());
        }
        let fetched = self
            .fetcher
            .fetch_json(&url)
            .await
            .map_err(DocumentError::from)
            .and_then(|fetched| {
                parse_document(&url, &fetched.body, policy).map(|doc| (doc, fetched.max_age))
            });
        let (document, max_age) = match fetched {
            Ok(fetched) => fetched,
            Err(refused) => {
                self.documents
                    .remember_refusal(url.as_str(), refused.clone(), now);
                return Err(refused.into());
            }
        };
        let client = Client {
            id: Self::client_id_for_key(url.as_str()),
            key: url.to_string(),
            display_name: document.display_name,
            app_uri: document.app_uri,
            redirect_uris: document.redirect_uris,
            secret_hash: None,
            previous_secret: None,
            policy: document.policy,
            source: document.source,
            created_at: now,
        };
        self.writing(Change::Client(client.id), self.store.upsert_client(&client))
            .await?;
        self.documents.remember(
            url.as_str(),
            now.saturating_add(client_document::lifetime(max_age)),
            now,
        );
        Ok(Some(Arc::new(client)))
    }

    /// The stable Id of a client declared in configuration: a UUID v5 of its Key, so that it
    /// stays the same across restarts and instances (unlike Eternaltwin's, which changes at
    /// every start).
    pub fn client_id_for_key(key: &str) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_2a1e_8d3b_4c6f_9a7e_1b2c_3d4e_5f60);
        Uuid::new_v5(&NAMESPACE, key.as_bytes())
    }

    /// Creates or updates a client declared in configuration. The stored secret hash is kept
    /// when it still matches the configured secret. A public client
    /// (`token_endpoint_auth_method = "none"`) is stored without one, whatever `spec.secret`,
    /// and so is a client given an empty secret (a `private_key_jwt` client needs none).
    pub async fn register_client(&self, spec: ClientSpec) -> Result<Client, StoreError> {
        let id = Self::client_id_for_key(&spec.key);
        let secret_hash = if spec.policy.is_public() || spec.secret.secret().is_empty() {
            None
        } else {
            let existing = self.store.find_client(ClientRef::Id(id)).await?;
            let kept_hash = existing
                .and_then(|c| c.secret_hash)
                .filter(|phc| passwords::verify(phc, spec.secret.secret()));
            Some(kept_hash.unwrap_or_else(|| {
                passwords::hash(
                    spec.secret.secret(),
                    self.config.hash_cost,
                    self.random.as_ref(),
                )
            }))
        };
        let mut client = Client {
            id,
            key: spec.key,
            display_name: spec.display_name,
            app_uri: spec.app_uri,
            redirect_uris: spec.redirect_uris,
            secret_hash,
            previous_secret: None,
            policy: spec.policy,
            source: ClientSource::Config,
            created_at: self.now(),
        };
        // `client_secret_jwt` needs the secret itself (see `ClientPolicy::sealed_jwt_secret`).
        self.seal_jwt_secret(&mut client, &spec.secret);
        self.writing(Change::Client(client.id), self.store.upsert_client(&client))
            .await?;
        Ok(client)
    }

    /// A `client_secret_jwt` client's secret, sealed into its policy (nothing for the others).
    pub(crate) fn seal_jwt_secret(&self, client: &mut Client, secret: &Secret) {
        client.policy.sealed_jwt_secret =
            (client.policy.auth_method == Some(AuthMethod::ClientSecretJwt)).then(|| {
                self.sealer.seal(
                    &client.jwt_secret_label(),
                    secret.secret().as_bytes(),
                    self.random.as_ref(),
                )
            });
    }

    /// Creates a user, or updates the display name and password of the user with this username.
    pub async fn seed_user(&self, spec: &UserSpec) -> Result<User, StoreError> {
        let existing = self.store.find_user_by_username(&spec.username).await?;
        let password = &spec.password;
        let password_hash = match existing {
            Some(user) if passwords::verify(&user.password_hash, password.secret()) => {
                user.password_hash
            }
            _ => passwords::hash(
                password.secret(),
                self.config.hash_cost,
                self.random.as_ref(),
            ),
        };
        let user = self
            .store
            .upsert_user(&NewUser {
                id: self.new_uuid(),
                username: spec.username.clone(),
                display_name: spec.display_name.clone(),
                password_hash,
                email: spec.email.clone(),
                email_verified: spec.email_verified,
                created_at: self.now(),
                claims: spec.claims.clone(),
                admin: spec.admin,
                disabled_at: None,
                second_factor_required: false,
                source: UserSource::Config,
            })
            .await?;
        self.forget(&Change::User(user.id));
        Ok(user)
    }

    /// Deletes what has expired (see [`crate::ports::MaintenanceStore::purge_expired`]); spent
    /// codes are kept a day past their expiry so that a late replay still revokes its family.
    /// Audit events older than the retention go too.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let rows = self.store.purge_expired(self.now(), 24 * 3600).await?;
        Ok(rows + self.purge_events().await?)
    }

    /// Whether one of `candidates` is the client's secret, in constant time, without Argon2 on
    /// the hot path (see [`crate::passwords`]). Failures are counted per client in the store
    /// and, past the limit, refused before any candidate is looked at (RFC 6749 §10.10,
    /// [`crate::throttle`]): [`Error::Throttled`]. A request counts once, however many
    /// spellings of its secret are tried. The secret a rotation replaced
    /// ([`Client::previous_secret`]) is accepted too while `now` is before its expiry, checked
    /// the same way (each hash has its own entry in the verified-secret cache); once expired,
    /// its hash is not looked at, cached or not.
    pub(crate) async fn verify_client_secret(
        &self,
        client: &Client,
        candidates: &[&Secret],
        from: Option<std::net::IpAddr>,
    ) -> Result<bool, Error> {
        let Some(phc) = client.secret_hash.as_deref() else {
            return Ok(false);
        };
        let guard = Guard::check(
            &self.throttle(),
            vec![Counter::client(client.id)],
            self.now(),
        )
        .await?;
        let mut owners = guard.owners();
        owners.extend(from.map(|a| Counter::address(a).key().to_owned()));
        let now = self.now();
        let previous = client
            .previous_secret
            .as_ref()
            .filter(|p| now < p.expires_at)
            .map(|p| p.hash.as_str());
        let mut ok = false;
        'candidates: for secret in candidates {
            for phc in std::iter::once(phc).chain(previous) {
                if self
                    .check_client_secret(client, phc, secret, &owners)
                    .await?
                {
                    ok = true;
                    break 'candidates;
                }
            }
        }
        if !ok {
            guard.failed(&self.throttle(), self.now()).await?;
        }
        Ok(ok)
    }

    async fn check_client_secret(
        &self,
        client: &Client,
        phc: &str,
        secret: &Secret,
        owners: &[String],
    ) -> Result<bool, Error> {
        match self.secret_cache.check(client.id, phc, secret.secret()) {
            CacheAnswer::Correct => Ok(true),
            CacheAnswer::Wrong => Ok(false),
            CacheAnswer::Unknown => {
                let cached = || match self.secret_cache.check(client.id, phc, secret.secret()) {
                    CacheAnswer::Correct => Some(true),
                    CacheAnswer::Wrong => Some(false),
                    CacheAnswer::Unknown => None,
                };
                let ok = self
                    .hashes
                    .verify_unless(phc.to_owned(), secret.clone(), owners.to_vec(), cached)
                    .await?;
                if ok {
                    self.secret_cache.remember(client.id, phc, secret.secret());
                }
                Ok(ok)
            }
        }
    }
}
