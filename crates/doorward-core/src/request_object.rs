//! Request objects (RFC 9101, JAR; OIDC Core §6.1): an authorization request as the claims of a
//! JWS the client signed, sent by value in `request`, at the authorization endpoint or in a
//! pushed request (RFC 9126 §3).
//!
//! What is checked, every failure `invalid_request_object` (RFC 9101 §6.3, OIDC Core §3.1.2.6):
//! - the signature, with one of the client's registered keys (`jwks` or `jwks_uri`: RS256,
//!   PS256, ES256, EdDSA) or its `client_secret_jwt` secret (HS256, HS384, HS512); never `none`
//!   (an unsigned object proves nothing, RFC 9101 §10.2);
//! - `aud` holds this server's issuer identifier (RFC 9101 §4, §10.2: an object made for
//!   another server is refused);
//! - `iss` or `client_id` is present, and each present names the client of the query
//!   (RFC 9101 §5, §6.3): an object of no client cannot pass for another's that shares its
//!   keys;
//! - `exp` is present, not past, and at most an hour ahead; `nbf`, when present, is not ahead
//!   (each with 30 s of skew: [`crate::jose::CLIENT_JWT_SKEW`]);
//! - no `request` or `request_uri` inside (RFC 9101 §4);
//! - it was not used before: its digest is recorded until `exp` in the store every instance
//!   shares ([`crate::ports::AssertionStore::record_jti`]), so a request object seen in a
//!   browser's history cannot start another authorization. (And one with `response_type` is
//!   never accepted as a client assertion: `client_assertion.rs`.)
//!
//! The object's claims are then the whole request (RFC 9101 §6.3: parameters outside it are
//! ignored), checked as any authorization request is. A claim that is a string is a parameter
//! as it is; a number or a boolean is written as JSON writes it; `resource` may be an array of
//! strings (RFC 8707); any other value is its JSON text.

use serde_json::{Map, Value};

use crate::jose::{CLIENT_JWT_MAX_LIFETIME as MAX_LIFETIME, CLIENT_JWT_SKEW as SKEW};
use crate::model::Client;
use crate::ports::{ClientRef, StoreError};
use crate::Engine;

/// The claims that describe the object itself, not the request.
const ENVELOPE: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];

impl Engine {
    /// The authorization request of `client`'s request object `jws`, as parameters with its
    /// `client_id` first; the inner error says why the object is refused.
    pub(crate) async fn open_request_object(
        &self,
        client: &Client,
        jws: &str,
    ) -> Result<Result<Vec<(String, String)>, &'static str>, StoreError> {
        let claims: Map<String, Value> = match self.verify_client_jws(client, jws).await? {
            Ok(claims) => claims,
            Err(why) => return Ok(Err(why)),
        };
        let exp = claims.get("exp").and_then(Value::as_f64).map(|t| t as i64);
        let params = match self.request_of(client, claims) {
            Ok(params) => params,
            Err(why) => return Ok(Err(why)),
        };
        // Checked by `request_of`: present and within the hour.
        let exp = exp.unwrap_or_else(|| self.now());
        let digest = {
            use base64::Engine as _;
            use sha2::Digest as _;
            // What was signed, not the signature: an ECDSA signature can be rewritten into
            // another valid one.
            let signed = jws.rsplit_once('.').map_or(jws, |(signed, _)| signed);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(signed))
        };
        let fresh = self
            .store
            .record_jti(
                client.id,
                &format!("jar:{digest}"),
                exp.saturating_add(SKEW),
                self.now(),
            )
            .await?;
        Ok(if fresh {
            Ok(params)
        } else {
            Err("this request object was used already")
        })
    }

    fn request_of(
        &self,
        client: &Client,
        claims: Map<String, Value>,
    ) -> Result<Vec<(String, String)>, &'static str> {
        let names_client = |claim: &str| match claims.get(claim) {
            None => true,
            Some(Value::String(id)) => match ClientRef::parse(id) {
                ClientRef::Id(id) => id == client.id,
                ClientRef::Key(key) => key == client.key,
            },
            Some(_) => false,
        };
        if !claims.contains_key("iss") && !claims.contains_key("client_id") {
            return Err("iss or client_id must name the client");
        }
        if !names_client("iss") || !names_client("client_id") {
            return Err("iss and client_id must name the client of the request");
        }
        let issuer = self.config.issuer.as_str();
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => aud == issuer,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(issuer)),
            _ => false,
        };
        if !for_us {
            return Err("aud must be this server's issuer identifier");
        }
        let now = self.now();
        let time = |claim: &str| claims.get(claim).and_then(Value::as_f64).map(|t| t as i64);
        match time("exp") {
            None => return Err("exp is required (a number)"),
            Some(exp) if exp.saturating_add(SKEW) <= now => return Err("expired"),
            Some(exp) if exp > now + MAX_LIFETIME + SKEW => {
                return Err("exp is more than an hour ahead")
            }
            Some(_) => {}
        }
        if time("nbf").is_some_and(|nbf| nbf > now + SKEW) {
            return Err("not valid yet (nbf)");
        }
        if claims.contains_key("request") || claims.contains_key("request_uri") {
            return Err("a request object cannot contain request or request_uri");
        }
        let mut params = vec![("client_id".to_owned(), client_id_of(client, &claims))];
        for (name, value) in claims {
            if ENVELOPE.contains(&name.as_str()) || name == "client_id" {
                continue;
            }
            match value {
                Value::String(text) => params.push((name, text)),
                Value::Array(items) if name == "resource" => {
                    for item in items {
                        let Value::String(item) = item else {
                            return Err("resource must be a string or an array of strings");
                        };
                        params.push((name.clone(), item));
                    }
                }
                Value::Null => {}
                other => params.push((name, other.to_string())),
            }
        }
        Ok(params)
    }
}

/// The `client_id` the request goes on with: the object's, else the client's Key.
fn client_id_of(client: &Client, claims: &Map<String, Value>) -> String {
    claims
        .get("client_id")
        .and_then(Value::as_str)
        .map_or_else(|| client.key.clone(), str::to_owned)
}
