//! What an application embedding the engine needs when it, not Doorward, decides who the user
//! is: users it authenticated itself (no password here), and grant ids — the pending
//! authorization request, signed and time-limited — that its own login page hands back to
//! resume the flow (TxOAuth2's `grantAccess` / `denyAccess`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::constant_time_eq;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::model::{NewUser, SignedIn};
use crate::passwords::NO_PASSWORD;
use crate::ports::StoreError;
use crate::Engine;

/// A user the application authenticated.
#[derive(Clone, Debug)]
pub struct AppUser {
    /// The application's stable identifier of the user; it is also the Doorward username (so
    /// it shares that namespace with users created from the configuration).
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
}

/// How long the application's login page may take with a grant id, in seconds.
pub const GRANT_ID_LIFETIME: i64 = 600;

/// Namespace of the UUIDs of application users (v5 of their id).
const APP_USER_NAMESPACE: Uuid = Uuid::from_u128(0x6d5b_1a44_57c4_4a8e_9f0e_2c1d_0b7a_d00d);

impl Engine {
    /// Creates or updates the user and opens a session for it; returns the session cookie value.
    /// The user's UUID (the `sub` of its tokens) is derived from its id, so it is stable.
    pub async fn sign_in_app_user(&self, user: &AppUser) -> Result<(String, SignedIn), StoreError> {
        let now = self.now();
        // A user with a password (from the configuration) is not the application's to take
        // over: it would get that user's subject, consents and tokens.
        if let Some(existing) = self.store.find_user_by_username(&user.id).await? {
            if existing.password_hash != NO_PASSWORD {
                return Err(StoreError::Conflict(format!(
                    "the username {:?} belongs to a user who signs in with a password",
                    user.id
                )));
            }
        }
        let stored = self
            .store
            .upsert_user(&NewUser {
                id: Uuid::new_v5(&APP_USER_NAMESPACE, user.id.as_bytes()),
                username: user.id.clone(),
                display_name: user.display_name.clone(),
                password_hash: NO_PASSWORD.to_owned(),
                email: user.email.clone(),
                email_verified: user.email_verified,
                created_at: now,
            })
            .await?;
        self.open_session(stored).await
    }

    /// A grant id for the authorization request `query`: `EXPIRY.QUERY.MAC`, base64url.
    pub fn grant_id(&self, query: &str) -> String {
        let expires = self.now() + GRANT_ID_LIFETIME;
        let mac = self.grant_mac(expires, query);
        format!(
            "{expires}.{}.{}",
            URL_SAFE_NO_PAD.encode(query),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The authorization request of a grant id this engine issued and that has not expired.
    pub fn open_grant_id(&self, id: &str) -> Option<String> {
        let mut parts = id.splitn(3, '.');
        let expires: i64 = parts.next()?.parse().ok()?;
        let query = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        if !constant_time_eq(&self.grant_mac(expires, &query), &mac) || expires < self.now() {
            return None;
        }
        Some(query)
    }

    fn grant_mac(&self, expires: i64, query: &str) -> [u8; 32] {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(b"doorward-grant:");
        mac.update(expires.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(query.as_bytes());
        mac.finalize().into_bytes().into()
    }
}
