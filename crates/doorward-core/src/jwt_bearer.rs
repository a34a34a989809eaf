//! The JWT bearer grant (RFC 7523 §2.1): a client trades a signed JWT, its assertion, for an
//! access token. Google's service accounts, Authlib's `AssertionSession`, workload identity
//! federation. Built on [`crate::extension_grant`]; `doorward serve` registers it.
//!
//! Who may sign (`trusted_issuer`), each failure `invalid_grant` (RFC 7523 §3.1):
//!
//! - the client itself (`iss` its Key or Id), with its registered keys (`jwks`, `jwks_uri`)
//!   or its `client_secret_jwt` secret; such a request needs no other client authentication
//!   (RFC 7523 §3.1), the assertion proves who sends it;
//! - an issuer the client trusts ([`ClientPolicy::assertion_issuers`]), with that issuer's
//!   keys; the client then authenticates as usual, so that a stolen assertion is not enough.
//!
//! What is checked, as for a client assertion ([`crate::client_assertion`]) except `sub`:
//!
//! - the signature: RS256, PS256, ES256 or EdDSA with a key of the issuer (HS256/384/512
//!   only with the client's own secret), never `none`;
//! - `aud` holds this server's issuer or its token endpoint URL (RFC 7523 §3 item 3);
//! - `exp` is present, not past, at most an hour ahead; `nbf` and `iat` not in the future
//!   (30 s of skew);
//! - the assertion works once (RFC 7523 §3 item 7 lets the server refuse replays): its
//!   `jti`, or without one (Google's assertions have none) a digest of its signed part, is
//!   recorded until `exp` through [`crate::ports::AssertionStore::record_jti`], shared by
//!   every instance: the client's own under the keys of its client assertions (one spent as
//!   either is spent as both), another issuer's in a namespace of that issuer;
//! - it is no request object (RFC 9101: `response_type`, `redirect_uri`), which may be seen in
//!   a browser's history;
//! - a client known only from its assertion (no other authentication) has its failures
//!   counted like failed client authentications ([`crate::throttle`]); a public client may use
//!   the grant only so;
//! - `sub` (RFC 7523 §3 item 2; left out, in the client's own assertion only, as Google's
//!   and Authlib's may, it is the client) names the client (its Key or Id, or the issuer's
//!   [`TrustedIssuer::client_subject`]): a token for the client, as `client_credentials`
//!   gives; or, from an issuer trusted with [`TrustedIssuer::users`], a user of this server by
//!   id or username: a token for that user, asked of nobody (the operator's trust in the
//!   issuer stands for the user's consent).
//!
//! The scope is the request's `scope` (RFC 7521 §4.1), within the client's.
//!
//! [`ClientPolicy::assertion_issuers`]: crate::model::ClientPolicy::assertion_issuers

use std::collections::HashMap;

use async_trait::async_trait;
use doorward_proto::OAuthError;
use serde::Deserialize;
use uuid::Uuid;

use crate::assertion::{check_jti, check_times, names, seconds, verify_with_keys, Audience};
use crate::config::paths;
use crate::engine::ExtensionGrant;
use crate::error::Error;
use crate::grant::{ExtensionRequest, Granted, Subject};
use crate::jose::CLIENT_JWT_SKEW as SKEW;
use crate::model::{Client, TrustedIssuer};
use crate::throttle::{Counter, Guard};
use crate::Engine;

/// RFC 7523 §2.1: the grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How far ahead an assertion's `exp` may be: an hour, as for client assertions. A longer-lived
/// one would be a bearer credential, and its digest would fill the replay store.
pub const MAX_LIFETIME: i64 = crate::jose::CLIENT_JWT_MAX_LIFETIME;

/// The JWT bearer grant (module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct JwtBearerGrant;

#[derive(Deserialize)]
struct Issuer {
    iss: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    /// RFC 7523 §3 item 2 requires it; Google's service accounts and Authlib's
    /// `AssertionSession` without a subject leave it out, for the client itself.
    sub: Option<String>,
    aud: Audience,
    exp: f64,
    iat: Option<f64>,
    nbf: Option<f64>,
    jti: Option<String>,
    /// Only authorization requests have them: a request object (RFC 9101), which may be seen
    /// in a browser's history, is never a grant.
    #[serde(default)]
    response_type: Option<serde_json::Value>,
    #[serde(default)]
    redirect_uri: Option<serde_json::Value>,
}

fn refused(why: &str) -> Error {
    OAuthError::invalid_grant(format!("assertion refused: {why}")).into()
}

#[async_trait]
impl ExtensionGrant for JwtBearerGrant {
    fn grant_type(&self) -> &str {
        JWT_BEARER_GRANT
    }

    /// The client the assertion's `iss` names, when the client has keys to check it with.
    async fn client_of(
        &self,
        engine: &Engine,
        params: &HashMap<String, String>,
    ) -> Result<Option<Client>, Error> {
        let Some(assertion) = params.get("assertion") else {
            return Ok(None);
        };
        let Ok(Issuer { iss }) = crate::jose::unverified_claims::<Issuer>(assertion) else {
            return Ok(None);
        };
        // A stored client only: an unverified `iss` never makes the server fetch a metadata
        // document (and such clients have no extension grants anyway).
        let client = engine.find_client(&iss).await?;
        Ok(client
            .filter(|c| {
                c.policy.jwks.is_some()
                    || c.policy.jwks_uri.is_some()
                    || c.policy.sealed_jwt_secret.is_some()
            })
            .map(std::sync::Arc::unwrap_or_clone))
    }

    async fn decide(
        &self,
        engine: &Engine,
        request: ExtensionRequest<'_>,
    ) -> Result<Granted, Error> {
        let client = request.client;
        let assertion = request
            .params
            .get("assertion")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("assertion is missing"))?;
        let Issuer { iss } = crate::jose::unverified_claims(assertion)
            .map_err(|_| refused("not a JWT with an iss"))?;
        // A public client cannot prove who it is: another issuer's assertion alone would be
        // enough for its tokens (RFC 7523 §3.1 leaves client authentication to the server).
        if client.policy.is_public() && !request.client_proven_by_grant {
            return Err(OAuthError::new(
                doorward_proto::ErrorCode::UnauthorizedClient,
                "a public client may not use the JWT bearer grant",
            )
            .into());
        }
        let issuer = trusted_issuer(client, &iss, request.client_proven_by_grant)
            .ok_or_else(|| refused("its issuer is not trusted by this client"))?;
        // The assertion is all that proves the client: its failures count as failed
        // authentications of the client (a `client_secret_jwt` secret is not guessed online).
        let guard = if request.client_proven_by_grant {
            Some(
                Guard::check(
                    &engine.throttle(),
                    vec![Counter::client(client.id)],
                    engine.now(),
                )
                .await?,
            )
        } else {
            None
        };
        let verified: Result<Claims, &str> = if issuer.uses_client_keys() {
            engine.verify_client_jws(client, assertion).await?
        } else if let Some(jwks) = &issuer.jwks {
            verify_with_keys(assertion, &jwks.keys)
        } else if let Some(url) = &issuer.jwks_uri {
            let owner = Uuid::new_v5(&Uuid::NAMESPACE_URL, url.as_str().as_bytes());
            engine
                .verify_with_published_keys(owner, url, assertion)
                .await
        } else {
            Err("the issuer has no keys")
        };
        let now = engine.now();
        let claims = match verified.and_then(|claims| {
            check_claims(engine, &claims, now)?;
            Ok(claims)
        }) {
            Ok(claims) => claims,
            Err(why) => {
                if let Some(guard) = guard {
                    guard.failed(&engine.throttle(), engine.now()).await?;
                }
                return Err(refused(why));
            }
        };
        // The replay key: the `jti`, else a digest of what was signed (the header and the
        // claims: an ECDSA signature can be rewritten into another valid one, the signed part
        // cannot). The client's own assertions share the namespace and keys of its client
        // assertions (`client_assertion.rs`), so one spent there is spent here; another
        // issuer's have a namespace of their own.
        let once = match &claims.jti {
            Some(jti) => jti.clone(),
            None => {
                use base64::Engine as _;
                use sha2::Digest as _;
                let signed = assertion
                    .rsplit_once('.')
                    .map_or(assertion.as_str(), |(s, _)| s);
                let digest = sha2::Sha256::digest(signed.as_bytes());
                format!(
                    "sha256:{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
                )
            }
        };
        let namespace = if issuer.uses_client_keys() {
            client.id
        } else {
            Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                format!("doorward:jwt-bearer:{}", claims.iss).as_bytes(),
            )
        };
        let fresh = engine
            .store
            .record_jti(
                namespace,
                &once,
                seconds(claims.exp).saturating_add(SKEW),
                now,
            )
            .await?;
        if !fresh {
            return Err(refused("this assertion was used already"));
        }
        let subject = match claims.sub.as_deref() {
            // Only the client's own assertion may leave the subject out.
            None if names(client, &claims.iss) => Subject::Client,
            None => return Err(refused("sub is missing")),
            Some(sub) if names(client, sub) || issuer.client_subject.as_deref() == Some(sub) => {
                Subject::Client
            }
            Some(sub) if issuer.users => Subject::User(find_user(engine, sub).await?),
            Some(_) => {
                return Err(refused(
                    "sub must name the client: this issuer may not assert users",
                ))
            }
        };
        Ok(Granted {
            subject,
            scopes: request.scopes.clone(),
        })
    }
}

/// The entry of the client's trusted issuers for `iss`, or the client itself when `iss`
/// names it. A client known only from its assertion ([`ExtensionGrant::client_of`]) is
/// trusted only with its own keys.
fn trusted_issuer(client: &Client, iss: &str, proven_by_grant: bool) -> Option<TrustedIssuer> {
    let own = names(client, iss);
    let configured = client
        .policy
        .assertion_issuers
        .iter()
        .find(|t| t.issuer == iss)
        .filter(|t| !t.uses_client_keys() || own)
        .cloned();
    match configured {
        Some(t) if proven_by_grant && !t.uses_client_keys() => None,
        Some(t) => Some(t),
        None if own => Some(TrustedIssuer {
            issuer: iss.to_owned(),
            ..TrustedIssuer::default()
        }),
        None => None,
    }
}

fn check_claims(engine: &Engine, claims: &Claims, now: i64) -> Result<(), &'static str> {
    if claims.response_type.is_some() || claims.redirect_uri.is_some() {
        return Err("a request object is not a grant");
    }
    let issuer = &engine.config().issuer;
    let accepted = [issuer.clone(), format!("{issuer}{}", paths::TOKEN)];
    if !claims.aud.contains(&accepted) {
        return Err("aud must name this server (its issuer or the token endpoint's URL)");
    }
    check_times(claims.exp, claims.nbf, claims.iat, now)?;
    if let Some(jti) = &claims.jti {
        check_jti(jti)?;
    }
    if claims.sub.as_ref().is_some_and(String::is_empty) {
        return Err("sub is empty");
    }
    Ok(())
}

/// The user `sub` names: by id, else by username.
async fn find_user(engine: &Engine, sub: &str) -> Result<Uuid, Error> {
    let store = engine.store();
    let user = match Uuid::try_parse(sub) {
        Ok(id) => store.find_user(id).await?,
        Err(_) => None,
    };
    let user = match user {
        Some(user) => Some(user),
        None => store.find_user_by_username(sub).await?,
    };
    user.map(|u| u.id)
        .ok_or_else(|| refused("sub names no user of this server"))
}
