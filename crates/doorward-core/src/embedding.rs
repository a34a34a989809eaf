//! What an application embedding the engine needs when it, not Doorward, decides who the user
//! is: users it authenticated itself (no password here), and grant ids — the pending
//! authorization request, signed and time-limited — that its own login page hands back to
//! resume the flow (TxOAuth2's `grantAccess` / `denyAccess`).
//!
//! The protocol decisions about the application's answers are taken here, as oxide-auth's
//! flows map an owner solicitor's answer: [`Engine::consultation`] says whether and how the
//! application is asked, [`Engine::settle`] turns its answer into a protocol outcome
//! (`login_required` under `prompt=none`, `access_denied`, a provider session), and
//! [`Engine::resume`] does the same for the decision its login page hands back. The adapter
//! only asks, renders and carries cookies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{constant_time_eq, ErrorCode, OAuthError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

pub use crate::grant::GrantTerms;
use crate::model::{NewUser, SignedIn};
use crate::passwords::NO_PASSWORD;
use crate::ports::StoreError;
use crate::request::{
    query_pairs, AuthorizationRequest, AuthorizationResponse, AuthorizeError, Interaction,
};
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

/// The application's decision for a grant it was handed (TxOAuth2's `grantAccess` /
/// `denyAccess`), given back through [`Engine::resume`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Decision {
    /// The user signed in. With `consented`, the application asked for consent itself (it
    /// showed the client and scopes of the pending grant) and the client gets its code at
    /// once; without, Doorward's consent page follows.
    ///
    /// A grant id is not proof of anything: anyone can start an authorization and get one.
    /// Resume with `consented: true` only after the signed-in user approved what the pending
    /// grant shows, on a page protected against cross-site requests.
    Allow { user: AppUser, consented: bool },
    /// The user signed in and the application approved the request itself, on its terms
    /// (TxOAuth2's `grantAccess(scope=…, additionalData=…)`): the client gets its code at once,
    /// for the scopes the terms keep (none kept: `access_denied`), and the terms' data travels
    /// with the grant. No consent is remembered, so the application is asked again at the
    /// next authorization. The same warning as for `Allow { consented: true }` applies.
    Grant { user: AppUser, terms: GrantTerms },
    /// The client gets `access_denied`.
    Deny,
}

/// How the application is asked who the user is, for one authorization request.
#[derive(Debug)]
pub struct Consultation {
    /// Handed to the application; its login page gives it back to [`Engine::resume`].
    pub grant_id: String,
    /// The browser is signed in, but the request asks for a new sign-in (`prompt=login`,
    /// `max_age`, `id_token_hint`): the request comes back marked with when it was asked.
    pub reauthenticate: bool,
    /// The authorization request to come back to, a path of the provider.
    return_to: String,
}

/// What the application answered, as far as the protocol cares.
#[derive(Debug)]
pub enum AppAnswer {
    /// This user is signed in at the application.
    User(AppUser),
    /// The application shows a page or sends the browser to one (its login page).
    Interact,
    /// The user may not sign in here.
    Deny,
}

/// What the authorization endpoint does with the application's answer.
#[derive(Debug)]
pub enum AppOutcome {
    /// The provider's session is the application's user's: on with the flow.
    Continue,
    /// The application's user now has a provider session (`cookie`, its value); the browser
    /// goes back to the authorization request (`location`, a provider path).
    SignedIn { cookie: String, location: String },
    /// Let the application's page or redirect answer.
    Interact,
    /// Back to the client with an error: `login_required` (no page may be shown under
    /// `prompt=none`, OIDC Core §3.1.2.6) or `access_denied`.
    Redirect(AuthorizationResponse),
}

/// Where a resumed grant goes (see [`Engine::resume`]).
#[derive(Debug)]
pub enum Resumed {
    /// The grant id is forged or expired: a page, never a redirect.
    Expired,
    /// The authorization request no longer holds (the client changed, say).
    Rejected(AuthorizeError),
    /// Back to the client: a code, `access_denied`, or `login_required`. `cookie`: the
    /// session to set, when the user signed in.
    Redirect {
        answer: AuthorizationResponse,
        cookie: Option<String>,
    },
    /// Signed in (set `cookie`); on to Doorward's consent at `location`, a provider path.
    Consent { location: String, cookie: String },
}

/// How long the application's login page may take with a grant id, in seconds.
pub const GRANT_ID_LIFETIME: i64 = 600;

/// Namespace of the UUIDs of application users (v5 of their id).
const APP_USER_NAMESPACE: Uuid = Uuid::from_u128(0x6d5b_1a44_57c4_4a8e_9f0e_2c1d_0b7a_d00d);

impl Engine {
    /// Creates or updates the user and opens a session for it; returns the session cookie value.
    /// The user's UUID (the `sub` of its tokens) is derived from its id, so it is stable.
    /// `StoreError::Conflict` when the username belongs to a user who signs in with a
    /// password ([`Engine::settle`] and [`Engine::resume`] answer that with `access_denied`).
    pub async fn sign_in_app_user(&self, user: &AppUser) -> Result<(String, SignedIn), StoreError> {
        let stored = self.upsert_app_user(user).await?;
        // The application's sign-in: its methods are its own to say (none here).
        self.open_session(stored, Vec::new()).await
    }

    /// Creates or updates the application's user without signing it in: the subject of an
    /// extension grant's token ([`crate::extension_grant::Subject::User`] with its `id`).
    /// `StoreError::Conflict` as for [`Engine::sign_in_app_user`].
    pub async fn upsert_app_user(&self, user: &AppUser) -> Result<crate::model::User, StoreError> {
        let now = self.now();
        if self.is_password_user(user).await? {
            return Err(StoreError::Conflict(format!(
                "the username {:?} belongs to a user who signs in with a password",
                user.id
            )));
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
                // The application adds its users' claims with a `ClaimsHook`.
                claims: serde_json::Map::new(),
                admin: false,
                disabled_at: None,
                second_factor_required: false,
                source: crate::model::UserSource::Application,
            })
            .await?;
        self.forget(&crate::ports::Change::User(stored.id));
        Ok(stored)
    }

    /// A user with a password (from the configuration) is not the application's to take over:
    /// it would get that user's subject, consents and tokens.
    async fn is_password_user(&self, user: &AppUser) -> Result<bool, StoreError> {
        let existing = self.store.find_user_by_username(&user.id).await?;
        Ok(existing.is_some_and(|existing| existing.password_hash != NO_PASSWORD))
    }

    /// The answer to the client when the application names a password user: the
    /// authorization server denies the request (RFC 6749 §4.1.2.1 `access_denied`). Neither the
    /// client nor the user made a mistake, so it is no server error; the description does not
    /// say why, to tell the client nothing about the accounts.
    fn refuse_app_user(&self, request: &AuthorizationRequest) -> AuthorizationResponse {
        request.error_response(
            &OAuthError::new(
                ErrorCode::AccessDenied,
                "the application's user cannot be signed in here",
            ),
            &self.config.issuer,
        )
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

    /// Whether the authorization endpoint asks the application who the user is, and how. It
    /// asks on every authorization that needs a user (not only when Doorward has no session):
    /// its answer decides, so a provider session left by another user of the browser never
    /// signs the wrong user in. `None`: a protocol answer (an error redirect of `prompt=none`,
    /// a store failure) needs no user.
    pub fn consultation(
        &self,
        pairs: &[(String, String)],
        query: &str,
        session: Option<&SignedIn>,
        interaction: &Result<Interaction, StoreError>,
    ) -> Option<Consultation> {
        let needs_login = match interaction {
            Ok(Interaction::Login { .. } | Interaction::StepUp { .. }) => true,
            Ok(Interaction::Consent | Interaction::Redirect(_)) => false,
            Err(_) => return None,
        };
        // Signed in, but asked to sign in again: the request comes back marked with when, as
        // from Doorward's own page.
        let reauthenticate = needs_login && session.is_some();
        let return_query = if reauthenticate {
            self.reauth_return_query(pairs)
        } else {
            query.to_owned()
        };
        Some(Consultation {
            grant_id: self.grant_id(&return_query),
            reauthenticate,
            return_to: format!("/oauth/authorize?{return_query}"),
        })
    }

    /// The protocol outcome of the application's `answer` to `consultation`.
    pub async fn settle(
        &self,
        request: &AuthorizationRequest,
        consultation: &Consultation,
        session: Option<&SignedIn>,
        answer: AppAnswer,
    ) -> Result<AppOutcome, StoreError> {
        Ok(match answer {
            AppAnswer::User(user) => {
                let same = session.is_some_and(|s| s.user.username == user.id);
                if same && !consultation.reauthenticate {
                    return Ok(AppOutcome::Continue);
                }
                if self.is_password_user(&user).await? {
                    return Ok(AppOutcome::Redirect(self.refuse_app_user(request)));
                }
                let (cookie, _) = self.sign_in_app_user(&user).await?;
                AppOutcome::SignedIn {
                    cookie,
                    location: consultation.return_to.clone(),
                }
            }
            // prompt=none: no page may be shown (OIDC Core §3.1.2.6).
            AppAnswer::Interact if request.prompt.none => AppOutcome::Redirect(
                request.login_required("the user is not signed in", &self.config.issuer),
            ),
            AppAnswer::Interact => AppOutcome::Interact,
            AppAnswer::Deny => AppOutcome::Redirect(self.deny(request)),
        })
    }

    /// The authorization request of a grant id, checked again from scratch.
    pub async fn pending_request(
        &self,
        grant_id: &str,
    ) -> Option<Result<(String, AuthorizationRequest), AuthorizeError>> {
        let query = self.open_grant_id(grant_id)?;
        Some(
            self.check_authorization(&query_pairs(&query))
                .await
                .map(|request| (query, request)),
        )
    }

    /// Finishes an authorization after the application's own login page: re-checks the
    /// request and its sign-in conditions, opens the user's provider session, and goes on to
    /// consent, or straight back to the client when the application asked for consent itself.
    pub async fn resume(&self, grant_id: &str, decision: Decision) -> Result<Resumed, StoreError> {
        let (query, request) = match self.pending_request(grant_id).await {
            None => return Ok(Resumed::Expired),
            Some(Err(e)) => return Ok(Resumed::Rejected(e)),
            Some(Ok(found)) => found,
        };
        let (user, terms) = match decision {
            Decision::Deny => {
                return Ok(Resumed::Redirect {
                    answer: self.deny(&request),
                    cookie: None,
                })
            }
            // `Some(None)`: the user's consent; `Some(Some(terms))`: the application's.
            Decision::Allow { user, consented } => (user, consented.then_some(None)),
            Decision::Grant { user, terms } => (user, Some(Some(terms))),
        };
        if self.is_password_user(&user).await? {
            return Ok(Resumed::Redirect {
                answer: self.refuse_app_user(&request),
                cookie: None,
            });
        }
        let (cookie, signed_in) = self.sign_in_app_user(&user).await?;
        // The request's own conditions hold for this user too (an `id_token_hint` naming
        // someone else is `login_required`, OIDC Core §3.1.2.2).
        if let Some(instead) = self.check_sign_in(&request, &signed_in) {
            let answer = match instead {
                Interaction::Redirect(answer) => answer,
                _ => request.login_required(
                    "the user who signed in is not the one the request asks for",
                    &self.config.issuer,
                ),
            };
            return Ok(Resumed::Redirect {
                answer,
                cookie: Some(cookie),
            });
        }
        if let Some(terms) = terms {
            let answer = match terms {
                // The user's consent, as on Doorward's page: remembered.
                None => self.approve(&signed_in, &request).await?,
                Some(terms) => self.approve_on_terms(&signed_in, &request, &terms).await?,
            };
            return Ok(Resumed::Redirect {
                answer,
                cookie: Some(cookie),
            });
        }
        Ok(Resumed::Consent {
            location: format!("/oauth/authorize?{query}"),
            cookie,
        })
    }
}
