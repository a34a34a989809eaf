//! Clients managed while the server runs (`doorward clients …`): registered in the store, with
//! a generated secret shown once, rotated with an overlap, removed with everything they were
//! granted. Running engines read clients from the store at every request (no cache), so a change
//! made here reaches them at their next request.
//!
//! A secret is 32 random bytes, base64url (256 bits: RFC 6749 §10.10 asks that guessing it be
//! infeasible); the store keeps only its Argon2id hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{RedirectUri, Secret};

use crate::audit::{kinds, Actor, AuditEvent};
use crate::engine::Engine;
use crate::model::{AuthMethod, Client, ClientPolicy, ClientSource, PreviousSecret};
use crate::passwords;
use crate::ports::{Change, ClientRef, StoreError};

/// A client to register with [`Engine::add_client`].
#[derive(Clone, Debug)]
pub struct NewClient {
    /// `NAME@clients`.
    pub key: String,
    pub display_name: String,
    pub app_uri: String,
    /// Compared as exact strings (RFC 6749 §3.1.2.3).
    pub redirect_uris: Vec<RedirectUri>,
    pub policy: ClientPolicy,
}

/// Why a management operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ClientAdminError {
    #[error("the client Key `{0}` is taken")]
    KeyTaken(String),
    #[error("no client `{0}` (give its Key or Id)")]
    Unknown(String),
    /// `rotate-secret` on a client that authenticates without a secret (`none`,
    /// `private_key_jwt`).
    #[error("`{0}` authenticates without a secret ({1}): there is none to rotate")]
    NoSecret(String, &'static str),
    /// An overlap asked for a `client_secret_jwt` client: the server MACs with the secret
    /// itself and keeps one, sealed (see [`ClientPolicy::sealed_jwt_secret`]).
    #[error("`{0}` uses client_secret_jwt, whose secret the server keeps sealed, one at a time: rotate it without an overlap")]
    NoOverlap(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    /// Every client, ordered by Key.
    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.store.list_clients().await
    }

    /// Registers a client under a random (v4) Id, with a new secret, returned here and
    /// nowhere else, when its authentication method uses one: a public client
    /// (`none`) and a `private_key_jwt` client (its public keys in the policy) get none.
    /// A `client_secret_jwt` secret is also kept sealed (the server MACs with it).
    /// [`ClientAdminError::KeyTaken`] when its Key is another client's.
    pub async fn add_client(
        &self,
        new: NewClient,
        by: &Actor,
    ) -> Result<(Client, Option<Secret>), ClientAdminError> {
        let secret = uses_secret(new.policy.auth_method).then(|| self.new_client_secret());
        let mut client = Client {
            id: self.new_uuid(),
            key: new.key,
            display_name: new.display_name,
            app_uri: new.app_uri,
            redirect_uris: new.redirect_uris,
            secret_hash: secret.as_ref().map(|s| self.hash_client_secret(s)),
            previous_secret: None,
            policy: new.policy,
            source: ClientSource::Cli,
            created_at: self.now(),
        };
        if let Some(secret) = &secret {
            self.seal_jwt_secret(&mut client, secret);
        }
        if !self.store.insert_client(&client).await? {
            return Err(ClientAdminError::KeyTaken(client.key));
        }
        self.record_client_change(kinds::CLIENT_CREATED, &client, by)
            .await?;
        Ok((client, secret))
    }

    /// Applies `change` to the client named by `client_id` (its Key or Id) and stores it. The
    /// Id, the Key, the secrets, the source and the creation time stay as they were.
    pub async fn update_client(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut Client),
        by: &Actor,
    ) -> Result<Client, ClientAdminError> {
        let old = self.known_client(client_id).await?;
        let mut client = old.clone();
        change(&mut client);
        client.id = old.id;
        client.key = old.key;
        client.secret_hash = old.secret_hash;
        client.previous_secret = old.previous_secret;
        client.source = old.source;
        client.created_at = old.created_at;
        self.writing(Change::Client(client.id), self.store.upsert_client(&client))
            .await?;
        self.record_client_change(kinds::CLIENT_UPDATED, &client, by)
            .await?;
        Ok(client)
    }

    /// Gives the client a new secret, returned here and nowhere else. Its current secret stays
    /// valid for `overlap_seconds` more (none with 0), while its deployments switch; a secret
    /// kept from an earlier rotation is dropped (a client has at most two valid secrets).
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
        overlap_seconds: u32,
        by: &Actor,
    ) -> Result<(Client, Secret), ClientAdminError> {
        let mut client = self.known_client(client_id).await?;
        let method = client.policy.auth_method;
        if !uses_secret(method) {
            let name = method.map_or("none", AuthMethod::as_str);
            return Err(ClientAdminError::NoSecret(client.key, name));
        }
        if method == Some(AuthMethod::ClientSecretJwt) && overlap_seconds > 0 {
            return Err(ClientAdminError::NoOverlap(client.key));
        }
        let secret = self.new_client_secret();
        self.seal_jwt_secret(&mut client, &secret);
        let old = client.secret_hash.replace(self.hash_client_secret(&secret));
        client.previous_secret = old
            .filter(|_| overlap_seconds > 0)
            .map(|hash| PreviousSecret {
                hash,
                expires_at: self.now() + i64::from(overlap_seconds),
            });
        self.writing(Change::Client(client.id), self.store.upsert_client(&client))
            .await?;
        self.record_client_change(kinds::CLIENT_SECRET_ROTATED, &client, by)
            .await?;
        Ok((client, secret))
    }

    /// Deletes the client and revokes what it was granted, at once: its access and refresh
    /// tokens, codes and consents ([`crate::ports::ClientStore::delete_client`]). Returns the
    /// client as it was.
    pub async fn remove_client(
        &self,
        client_id: &str,
        by: &Actor,
    ) -> Result<Client, ClientAdminError> {
        let client = self.known_client(client_id).await?;
        if !self
            .writing(
                Change::Client(client.id),
                self.store.delete_client(client.id, self.now()),
            )
            .await?
        {
            return Err(ClientAdminError::Unknown(client_id.to_owned()));
        }
        self.record_client_change(kinds::CLIENT_REMOVED, &client, by)
            .await?;
        Ok(client)
    }

    /// The audit event of a change to `client`, written before the change is answered.
    async fn record_client_change(
        &self,
        kind: &str,
        client: &Client,
        by: &Actor,
    ) -> Result<(), StoreError> {
        self.record(
            AuditEvent::new(kind, by.clone())
                .client(client.id)
                .with("key", client.key.clone()),
        )
        .await
    }

    async fn known_client(&self, client_id: &str) -> Result<Client, ClientAdminError> {
        self.store
            .find_client(ClientRef::parse(client_id))
            .await?
            .ok_or_else(|| ClientAdminError::Unknown(client_id.to_owned()))
    }

    fn new_client_secret(&self) -> Secret {
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes);
        Secret::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn hash_client_secret(&self, secret: &Secret) -> String {
        passwords::hash(secret.secret(), self.config.hash_cost, self.random.as_ref())
    }
}

/// Whether a client authenticating with `method` has a secret (`None`: Basic or post).
fn uses_secret(method: Option<AuthMethod>) -> bool {
    !matches!(method, Some(AuthMethod::None | AuthMethod::PrivateKeyJwt))
}
