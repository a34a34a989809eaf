//! The device authorization grant (RFC 8628): a device with no browser (a TV, a terminal, an
//! SSH session) asks for a device code and a user code, shows the user code and the
//! verification URI, and polls the token endpoint while its user signs in on another screen,
//! enters the code and approves.
//!
//! - **User codes** (§6.1): 8 characters of 20 consonants (`BCDFGHJKLMNPQRSTVWXZ`, no vowels so
//!   no words, no digits to confuse with letters), shown `XXXX-XXXX`: 20⁸ ≈ 2.6 × 10¹⁰ codes.
//!   What the user types is read case-insensitively, ignoring spaces, dashes and dots; anything
//!   else than 8 letters of the alphabet is no code. Unknown codes are counted per client
//!   address ([`crate::throttle::Counter::user_code`]: 10 free, then locks from 30 s up to
//!   15 min), so guessing among 10¹⁰ codes is out of reach within a code's 10 minutes.
//! - **The device code** is an opaque credential (`dwdc_…`), stored by hash only.
//! - **Approval** stores, in the same transaction, a code record whose hash is the device
//!   code's ([`crate::ports::DeviceStore::settle_device`]); the next poll redeems it like an
//!   authorization code, atomically with the tokens it issues, so a device code yields tokens
//!   once. The consent is recorded too, so the grant is listed on `/account` and revocable.
//! - **Polling** (§3.5): `authorization_pending` until the user answers, `slow_down` for a poll
//!   sooner than [`POLL_INTERVAL`] after the previous one, `access_denied` after a refusal,
//!   `expired_token` after `expires_in`.

use doorward_proto::{ErrorCode, OAuthError, ScopeSet, TokenResponse};
use serde::Serialize;

use crate::audit::{kinds, Actor, AuditEvent};
use crate::grant::{AuthenticatedClient, Grant};
use crate::model::{
    Client, CodeRecord, ConsentRecord, DeviceAuthorization, DeviceState, GrantType, SignedIn,
};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::ports::{Redemption, StoreError};
use crate::request::{ClientEndpoint, TokenRequest};
use crate::throttle::{Counter, Guard};
use crate::{Engine, Error};

/// The grant type of a device's token requests (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The seconds a device waits between polls (RFC 8628 §3.2 `interval`, 5 by default).
pub const POLL_INTERVAL: i64 = 5;

/// The letters of user codes (RFC 8628 §6.1: consonants only).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// The letters of a user code.
const USER_CODE_LEN: usize = 8;

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Clone, Debug, Serialize)]
pub struct DeviceGrant {
    pub device_code: String,
    /// As shown to people: `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What a user code stands for, for the page that asks the user (RFC 8628 §3.3).
#[derive(Debug)]
pub enum DeviceLookup {
    /// Waiting for this user's answer: the client asking and what for.
    Pending {
        device: Box<DeviceAuthorization>,
        client: Box<Client>,
    },
    /// No such code (mistyped, or never issued), or answered already, or expired: the page
    /// says so without telling which.
    Unknown,
}

impl Engine {
    /// The device authorization endpoint (RFC 8628 §3.1): the client authenticates as at the
    /// token endpoint (a public client names itself); `scope` and `resource` are checked as at
    /// the authorization endpoint.
    pub async fn device_authorization(&self, request: &TokenRequest) -> Result<DeviceGrant, Error> {
        let (client, _) = self
            .authenticate_client(request, ClientEndpoint::DeviceAuthorization)
            .await?;
        if !self.config.grants.device_code || !client.policy.allows_grant(GrantType::DeviceCode) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use the device authorization grant",
            )
            .into());
        }
        let (scopes, _) =
            self.requested_scopes(&client, request.params.get("scope").map(String::as_str))?;
        let named: Vec<&str> = request.resources.iter().map(String::as_str).collect();
        let resources = crate::resource_indicators::requested(&self.config, &client, &named)?;
        let device_code = self.new_credential(OpaqueKind::DeviceCode);
        let now = self.now();
        let lifetime = self.config.lifetimes.device_code;
        for _ in 0..8 {
            let user_code = self.new_user_code();
            let stored = self
                .store
                .insert_device_authorization(&DeviceAuthorization {
                    hash: TokenHash::of(&device_code),
                    user_code: user_code.clone(),
                    client_id: client.id,
                    scopes: scopes.clone(),
                    resources: resources.clone(),
                    issued_at: now,
                    expires_at: now + lifetime,
                    polled_at: None,
                    state: DeviceState::Pending,
                })
                .await?;
            if stored {
                let shown = shown_user_code(&user_code);
                let verification_uri =
                    format!("{}{}", self.config.issuer, crate::config::paths::DEVICE);
                return Ok(DeviceGrant {
                    device_code,
                    verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                    verification_uri,
                    user_code: shown,
                    expires_in: lifetime,
                    interval: POLL_INTERVAL,
                });
            }
        }
        // Eight draws of 20⁸ all taken: the table is full of live codes.
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "no user code is free; retry later",
        )
        .into())
    }

    fn new_user_code(&self) -> String {
        let mut bytes = [0u8; USER_CODE_LEN];
        self.random.fill(&mut bytes);
        // 256 is not a multiple of 20: the first 16 letters come 13 times in 256, the last 4
        // 12 times; drawing again would remove that bias, which changes nothing a guesser can
        // use at 20⁸ codes.
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect()
    }

    /// The pending authorization of what `user` typed, for the page that asks them. A code
    /// that is not waiting counts against the user and against `from` (RFC 8628 §5.1), and past
    /// either limit nothing is looked up ([`Error::Throttled`]).
    pub async fn find_device(
        &self,
        typed: &str,
        user: &SignedIn,
        from: Option<std::net::IpAddr>,
    ) -> Result<DeviceLookup, Error> {
        let guard = self.user_code_guard(user, from).await?;
        let found = self.lookup_device(typed).await?;
        if matches!(found, DeviceLookup::Unknown) {
            guard.failed(&*self.store, self.now()).await?;
        }
        Ok(found)
    }

    /// The counters of a user code entered by `user` from `from`.
    async fn user_code_guard(
        &self,
        user: &SignedIn,
        from: Option<std::net::IpAddr>,
    ) -> Result<Guard, Error> {
        let mut counters = vec![Counter::user_code_of(user.user.id)];
        counters.extend(from.map(Counter::user_code));
        Ok(Guard::check(&*self.store, counters, self.now()).await?)
    }

    async fn lookup_device(&self, typed: &str) -> Result<DeviceLookup, StoreError> {
        let Some(code) = normalize_user_code(typed) else {
            return Ok(DeviceLookup::Unknown);
        };
        let Some(device) = self.store.find_device_by_user_code(&code).await? else {
            return Ok(DeviceLookup::Unknown);
        };
        if device.state != DeviceState::Pending || device.expires_at <= self.now() {
            return Ok(DeviceLookup::Unknown);
        }
        match self
            .lookup_client(crate::ports::ClientRef::Id(device.client_id))
            .await?
        {
            Some(client) => Ok(DeviceLookup::Pending {
                device: Box::new(device),
                client: Box::new(std::sync::Arc::unwrap_or_clone(client)),
            }),
            None => Ok(DeviceLookup::Unknown),
        }
    }

    /// The signed-in user's answer to the device authorization of `typed`: approved (the
    /// consent recorded, and the code record the device's next poll redeems) or denied.
    /// `false` when it is no longer pending (answered in another tab, or expired), counted like
    /// an unknown code by [`Engine::find_device`]'s counters: the answer is guessing too.
    pub async fn settle_device(
        &self,
        user: &SignedIn,
        typed: &str,
        approve: bool,
        from: Option<std::net::IpAddr>,
    ) -> Result<bool, Error> {
        let guard = self.user_code_guard(user, from).await?;
        let DeviceLookup::Pending { device, .. } = self.lookup_device(typed).await? else {
            guard.failed(&*self.store, self.now()).await?;
            return Ok(false);
        };
        let now = self.now();
        if !approve {
            return Ok(self
                .store
                .settle_device(&device.hash, DeviceState::Denied, None, now)
                .await?);
        }
        let auth_time = user.session.created_at;
        let code = CodeRecord {
            hash: device.hash,
            client_id: device.client_id,
            user_id: user.user.id,
            // Invariant: a constant absolute URI.
            redirect_uri: doorward_proto::RedirectUri::parse(crate::model::DEVICE_REDIRECT)
                .expect("a valid URI"),
            scopes: device.scopes.clone(),
            scope_requested: true,
            challenge: None,
            nonce: None,
            family_id: self.new_time_ordered_uuid(),
            auth_time,
            issued_at: now,
            expires_at: device.expires_at,
            resources: device.resources.clone(),
            dpop_jkt: None,
            scope_narrowed: false,
            grant_data: serde_json::Map::new(),
            amr: user.session.amr.clone(),
        };
        let settled = self
            .store
            .settle_device(
                &device.hash,
                DeviceState::Approved {
                    user_id: user.user.id,
                    auth_time,
                },
                Some(&code),
                now,
            )
            .await?;
        if settled {
            self.store
                .record_consent(&ConsentRecord {
                    user_id: user.user.id,
                    client_id: device.client_id,
                    scopes: device.scopes.clone(),
                    granted_at: now,
                })
                .await?;
            self.note(
                AuditEvent::new(kinds::CONSENT_GIVEN, Actor::User(user.user.id))
                    .user(user.user.id)
                    .client(device.client_id)
                    .with("scope", device.scopes.to_string())
                    .with("via", "device"),
            );
        }
        Ok(settled)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5).
    pub(crate) async fn device_code_grant(
        &self,
        client: AuthenticatedClient<'_>,
        device_code: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let device_code = device_code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
        let hash = TokenHash::of(device_code);
        let now = self.now();
        let unknown = || OAuthError::invalid_grant("the device_code is unknown or was used");
        let device = match self.store.poll_device(&hash, now).await? {
            Some(device) if device.client_id == client.client.id => device,
            _ => return Err(unknown().into()),
        };
        if device.expires_at <= now {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code expired: start again (RFC 8628 section 3.5)",
            )
            .into());
        }
        let (user_id, auth_time) = match device.state {
            DeviceState::Pending => {
                let early = device.polled_at.is_some_and(|t| now - t < POLL_INTERVAL);
                return Err(if early {
                    OAuthError::new(
                        ErrorCode::SlowDown,
                        format!("poll at most every {POLL_INTERVAL} s, now 5 s more (RFC 8628 section 3.5)"),
                    )
                } else {
                    OAuthError::new(
                        ErrorCode::AuthorizationPending,
                        "the user has not answered yet",
                    )
                }
                .into());
            }
            DeviceState::Denied => {
                return Err(
                    OAuthError::new(ErrorCode::AccessDenied, "the user denied the request").into(),
                )
            }
            DeviceState::Approved { user_id, auth_time } => (user_id, auth_time),
        };
        let scopes: ScopeSet = device.scopes.clone();
        let client_id = client.client.id;
        let Some(family_code) = self.store.find_code(&hash, client_id).await? else {
            return Err(unknown().into());
        };
        let built = self
            .build_tokens(
                client,
                Grant {
                    user_id,
                    family_id: family_code.family_id,
                    scopes: &scopes,
                    auth_time,
                    nonce: None,
                    resources: &device.resources,
                    data: &crate::grant::NO_DATA,
                    amr: &family_code.amr,
                },
                &scopes,
                &scopes,
                &device.resources,
            )
            .await?;
        match self
            .store
            .redeem_code(&hash, client_id, now, Some(built.issue()))
            .await?
        {
            Redemption::Fresh(_) => {
                self.note_issued(
                    GrantType::DeviceCode.as_str(),
                    client.client,
                    Some(user_id),
                    &scopes,
                );
                Ok(built.response)
            }
            Redemption::Spent(_) | Redemption::Unknown => Err(unknown().into()),
        }
    }
}

/// What the user typed, as a stored user code: case and spaces, dashes and dots ignored; 8
/// letters of the alphabet, or `None`.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// A stored user code as people read it: `XXXX-XXXX`.
pub fn shown_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}
