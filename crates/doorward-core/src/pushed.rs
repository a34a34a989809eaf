//! Pushed authorization requests (RFC 9126): a client sends its authorization request to the
//! server first, authenticated, and sends the browser with only a `request_uri`.
//!
//! # No row per request
//! The `request_uri` is the request itself, sealed: XChaCha20-Poly1305 under a key derived
//! from the server's secret (so every instance opens what another sealed), over the client's
//! Id, the expiry, a random `jti` and the parameters. Nobody can read it or make one, and
//! pushing costs no write. It is longer than a random handle (a few hundred characters for a
//! usual request), which RFC 9126 §2.2 allows: it asks only that the value cannot be guessed.
//!
//! # Once
//! A `request_uri` stands for one authorization (RFC 9126 §4: "SHOULD be one-time use"): its
//! `jti` is recorded as spent, in the store every instance shares
//! ([`crate::ports::AssertionStore::record_jti`]), when a code (or the implicit grant's
//! token) is issued from it, in [`Engine::spend_pushed_request`]; presented again, it gets
//! `invalid_request_uri`. Until then it may be opened again and again within its life, as the
//! request travels through the sign-in and consent pages by its `request_uri`, and a browser
//! may reload them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use doorward_proto::{ErrorCode, OAuthError};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::dpop::{ProofAt, ProofTarget};
use crate::model::Client;
use crate::ports::{StoreError, UnixTime};
use crate::request::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeError, Checking, ClientEndpoint,
    ShowReason, Spend, TokenRequest,
};
use crate::{Engine, Error};

pub use crate::request::REQUEST_URI_PREFIX;

/// The parameters of client authentication, which are not part of the authorization request.
const CLIENT_AUTHENTICATION: [&str; 3] =
    ["client_secret", "client_assertion", "client_assertion_type"];

/// The longest `request_uri` opened: a pushed body is at most 64 KiB, sealed and encoded it
/// grows by a third.
const MAX_REQUEST_URI_LEN: usize = 96 * 1024;

/// The answer of the pushed authorization request endpoint (RFC 9126 §2.2).
#[derive(Clone, Debug, Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// A pushed request opened at the authorization endpoint.
pub(crate) struct Opened {
    pub(crate) params: Vec<(String, String)>,
    pub(crate) spend: Spend,
}

/// The authorization request of a pushed body: its parameters but client authentication's,
/// in a stable order, with the client named.
fn body_request(request: &TokenRequest, named: String) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = request
        .params
        .iter()
        .filter(|(name, _)| !CLIENT_AUTHENTICATION.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    params.sort();
    params.extend(
        request
            .resources
            .iter()
            .map(|r| ("resource".to_owned(), r.clone())),
    );
    // Basic and assertions name the client outside the body: the request carries it.
    if !request.params.contains_key("client_id") {
        params.insert(0, ("client_id".to_owned(), named));
    }
    params
}

/// What is sealed into a `request_uri`.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The client's Id.
    c: Uuid,
    /// When it expires.
    e: UnixTime,
    /// Its one-time identifier.
    j: String,
    /// The parameters, in order.
    p: Vec<(String, String)>,
}

impl Engine {
    /// The pushed authorization request endpoint (RFC 9126 §2): authenticates the client as
    /// the token endpoint does (§2: its `client_assertion` may name this endpoint as `aud`),
    /// checks the request as the authorization endpoint would (§2.1) and answers the
    /// `request_uri` that stands for it. Every error is this endpoint's own (§2.3): nothing is
    /// redirected.
    pub async fn push_authorization_request(
        &self,
        request: &TokenRequest,
    ) -> Result<Pushed, Error> {
        let (client, named) = self
            .authenticate_client(request, ClientEndpoint::PushedAuthorization)
            .await?;
        if request.params.contains_key("request_uri") {
            return Err(OAuthError::invalid_request(
                "a pushed authorization request cannot contain request_uri (RFC 9126 section 2.1)",
            )
            .into());
        }
        // RFC 9126 §3: a request object is the whole request, its parameters checked alike.
        let params = match request.params.get("request") {
            Some(object) => match self.open_request_object(&client, object).await? {
                Ok(params) => params,
                Err(why) => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidRequestObject,
                        format!("the request object is refused: {why} (RFC 9101)"),
                    )
                    .into())
                }
            },
            None => body_request(request, named),
        };
        let params = self.bind_pushed_to_dpop(request, params).await?;
        let refs: Vec<&(String, String)> = params.iter().collect();
        match self
            .check_parameters(Client::clone(&client), &refs, Checking::Pushing)
            .await
        {
            Ok(_) => {}
            Err(AuthorizeError::Show(reason)) => {
                return Err(OAuthError::invalid_request(reason.to_string()).into())
            }
            Err(AuthorizeError::Redirect { error, .. }) => return Err(error.into()),
            Err(AuthorizeError::Store(e)) => return Err(e.into()),
        }
        let (request_uri, _) = self.seal_request(&client, params);
        Ok(Pushed {
            request_uri,
            expires_in: self.config.lifetimes.pushed_request,
        })
    }

    /// A `request_uri` that stands for `params`, a checked request of `client`, for
    /// [`crate::config::Lifetimes::pushed_request`] seconds, and what spends it.
    pub(crate) fn seal_request(
        &self,
        client: &Client,
        params: Vec<(String, String)>,
    ) -> (String, Spend) {
        let mut jti = [0u8; 16];
        self.random.fill(&mut jti);
        let sealed = Sealed {
            c: client.id,
            e: self.now() + self.config.lifetimes.pushed_request,
            j: URL_SAFE_NO_PAD.encode(jti),
            p: params,
        };
        let request_uri = format!("{REQUEST_URI_PREFIX}{}", self.seal_pushed(&sealed));
        let spend = Spend {
            jti: sealed.j,
            expires_at: sealed.e,
        };
        (request_uri, spend)
    }

    /// The pushed request a `request_uri` stands for, when it is one of this server's, of
    /// `client` (RFC 9126 §4: the `client_id` of the query must be the pushing client's) and
    /// not expired. Whether it was used already is known when it is spent.
    pub(crate) fn open_pushed_request(
        &self,
        client: &Client,
        request_uri: &str,
    ) -> Result<Opened, ShowReason> {
        let sealed = request_uri
            .strip_prefix(REQUEST_URI_PREFIX)
            .filter(|_| request_uri.len() <= MAX_REQUEST_URI_LEN)
            .and_then(|value| self.open_sealed(value))
            .ok_or(ShowReason::InvalidRequestUri(
                "this server did not issue it (only pushed requests are accepted)",
            ))?;
        if sealed.c != client.id {
            return Err(ShowReason::InvalidRequestUri(
                "it was pushed by another client",
            ));
        }
        if sealed.e <= self.now() {
            return Err(ShowReason::InvalidRequestUri(
                "it expired: the application must start the sign-in again",
            ));
        }
        Ok(Opened {
            params: sealed.p,
            spend: Spend {
                jti: sealed.j,
                expires_at: sealed.e,
            },
        })
    }

    /// Spends the pushed request `request` came from, if any, before its code is issued:
    /// `Some(answer)` when it was spent already (`invalid_request_uri`, OIDC Core §3.1.2.6),
    /// and nothing may be issued.
    pub(crate) async fn spend_pushed_request(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Option<AuthorizationResponse>, StoreError> {
        let Some(spend) = &request.pushed else {
            return Ok(None);
        };
        let fresh = self
            .store
            .record_jti(
                request.client.id,
                &format!("par:{}", spend.jti),
                spend.expires_at,
                self.now(),
            )
            .await?;
        Ok((!fresh).then(|| {
            request.error_response(
                &OAuthError::new(
                    ErrorCode::InvalidRequestUri,
                    "this request_uri was used already: push the request again (RFC 9126 section 4)",
                ),
                &self.config.issuer,
            )
        }))
    }

    /// A pushed request that came with a DPoP proof binds its code to the proof's key, as
    /// `dpop_jkt` would (RFC 9449 §10.1); both must then name the same key.
    async fn bind_pushed_to_dpop(
        &self,
        request: &TokenRequest,
        mut params: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>, Error> {
        let target = ProofTarget {
            method: "POST",
            url: &self.endpoint_url(crate::config::paths::PAR),
            access_token: None,
        };
        let Some(proof) = self
            .check_dpop(&request.dpop, target, ProofAt::AuthorizationServer)
            .await?
        else {
            return Ok(params);
        };
        match params.iter().find(|(name, _)| name == "dpop_jkt") {
            Some((_, jkt)) if *jkt != proof.jkt => Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "dpop_jkt names another key than the DPoP proof's",
            )
            .into()),
            Some(_) => Ok(params),
            None => {
                params.push(("dpop_jkt".to_owned(), proof.jkt));
                Ok(params)
            }
        }
    }

    fn pushed_cipher(&self) -> XChaCha20Poly1305 {
        // Invariant: HMAC accepts keys of any length.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(b"doorward-pushed-request-key");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        XChaCha20Poly1305::new(&key.into())
    }

    fn seal_pushed(&self, sealed: &Sealed) -> String {
        // Invariant: a struct of strings and numbers serializes.
        let plain = serde_json::to_vec(sealed).expect("a pushed request serializes");
        let mut nonce = [0u8; 24];
        self.random.fill(&mut nonce);
        // Invariant: encryption with a valid key and nonce does not fail.
        let cipher = self
            .pushed_cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: REQUEST_URI_PREFIX.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail");
        URL_SAFE_NO_PAD.encode([&nonce[..], &cipher].concat())
    }

    fn open_sealed(&self, value: &str) -> Option<Sealed> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, cipher) = bytes.split_at(24);
        let plain = self
            .pushed_cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: cipher,
                    aad: REQUEST_URI_PREFIX.as_bytes(),
                },
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}
