//! Tokens as the client keeps them, and the tolerant parsing of token-endpoint answers.

use std::fmt;

use doorward_proto::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ProviderError, TokenError};
use crate::http::RawResponse;

/// The tokens of one authorization. It prints its secrets as `[redacted]`; serialize it (serde)
/// to persist it, which writes the secrets in clear.
#[derive(Clone)]
pub struct Token {
    pub(crate) access_token: Secret,
    pub(crate) token_type: String,
    pub(crate) expires_at: Option<i64>,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) scope: Option<String>,
    pub(crate) id_token: Option<Secret>,
    pub(crate) extra: Map<String, Value>,
}

impl Token {
    /// A token from its parts, e.g. one kept by the application from an earlier sign-in.
    pub fn new(access_token: impl Into<String>, expires_at: Option<i64>) -> Self {
        Self {
            access_token: Secret::new(access_token.into()),
            token_type: "Bearer".into(),
            expires_at,
            refresh_token: None,
            scope: None,
            id_token: None,
            extra: Map::new(),
        }
    }

    /// The same token with a refresh token.
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(Secret::new(refresh_token.into()));
        self
    }

    pub fn access_token(&self) -> &str {
        self.access_token.secret()
    }

    /// As sent by the provider (any case); requests always say `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// Unix time at which the access token expires, if the provider said (`expires_in`).
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_ref().map(Secret::secret)
    }

    /// The granted scope when the provider sent it (RFC 6749 §5.1: absent means "as requested").
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The raw ID token (already validated when the client obtained it).
    pub fn id_token(&self) -> Option<&str> {
        self.id_token.as_ref().map(Secret::secret)
    }

    /// Other members of the token response.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Whether the access token expires within `margin` seconds of `now` (false when the
    /// provider gave no lifetime).
    pub fn expires_within(&self, now: i64, margin: u64) -> bool {
        self.expires_at
            .is_some_and(|at| at <= now.saturating_add_unsigned(margin))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("scope", &self.scope)
            .field("id_token", &self.id_token)
            .finish_non_exhaustive()
    }
}

/// The persisted form of a [`Token`].
#[derive(Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    extra: Map<String, Value>,
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredToken {
            access_token: self.access_token.secret().to_owned(),
            token_type: self.token_type.clone(),
            expires_at: self.expires_at,
            refresh_token: self.refresh_token().map(str::to_owned),
            scope: self.scope.clone(),
            id_token: self.id_token().map(str::to_owned),
            extra: self.extra.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredToken::deserialize(deserializer)?;
        Ok(Self {
            access_token: Secret::new(stored.access_token),
            token_type: stored.token_type,
            expires_at: stored.expires_at,
            refresh_token: stored.refresh_token.map(Secret::new),
            scope: stored.scope,
            id_token: stored.id_token.map(Secret::new),
            extra: stored.extra,
        })
    }
}

/// Parses a token-endpoint answer (RFC 6749 §5.1 / §5.2), tolerating what real servers send:
/// `expires_in` as a string or a float, `token_type` (`Bearer` or `DPoP`) in any case, `scope` as a list, a
/// form-encoded body. A missing `token_type` is refused; a compliance hook can add it.
/// The lenient mode ([`crate::ProviderConfig::lenient_token_type`]): a successful JSON answer
/// with an `access_token` and no `token_type` gets `"token_type": "Bearer"`.
pub(crate) fn assume_bearer(response: &mut RawResponse) {
    if !response.status.is_success() {
        return;
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&response.body) else {
        return;
    };
    if object.contains_key("access_token") && !object.contains_key("token_type") {
        object.insert("token_type".into(), Value::String("Bearer".into()));
        response.body = serde_json::to_vec(&object).unwrap_or_default();
    }
}

pub(crate) fn parse_token_response(response: &RawResponse, now: i64) -> Result<Token, TokenError> {
    let status = response.status.as_u16();
    if response.status.is_redirection() {
        let location = response
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        return Err(TokenError::Redirected { status, location });
    }
    let object = body_object(response);
    if let Some(error) = object.as_ref().and_then(provider_error) {
        return Err(TokenError::Provider { status, error });
    }
    if !response.status.is_success() {
        return Err(TokenError::UnexpectedResponse {
            status,
            body: response.text(),
        });
    }
    let invalid = |reason: &str| TokenError::InvalidResponse {
        reason: reason.to_owned(),
        body: redacted_body(response),
    };
    let mut object = object.ok_or_else(|| invalid("the body is not a JSON object"))?;
    let access_token = match object.remove("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        _ => return Err(invalid("access_token is missing or not a string")),
    };
    let token_type = match object.remove("token_type") {
        Some(Value::String(kind)) => kind,
        _ => return Err(invalid("token_type is missing or not a string")),
    };
    // Bearer (RFC 6750), or bound to the client's DPoP key (RFC 9449 §5).
    if !token_type.eq_ignore_ascii_case("bearer") && !token_type.eq_ignore_ascii_case("dpop") {
        return Err(TokenError::UnsupportedTokenType(token_type));
    }
    let expires_in = match object.remove("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| invalid("expires_in is not a number of seconds"))?,
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<f64>()
                .map(|f| f as i64)
                .map_err(|_| invalid("expires_in is not a number of seconds"))?,
        ),
        Some(_) => return Err(invalid("expires_in is not a number of seconds")),
    };
    let refresh_token = match object.remove("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if !t.is_empty() => Some(Secret::new(t)),
        Some(_) => return Err(invalid("refresh_token is not a string")),
    };
    let scope = match object.remove("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some(_) => return Err(invalid("scope is not a string")),
    };
    let id_token = match object.remove("id_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(Secret::new(t)),
        Some(_) => return Err(invalid("id_token is not a string")),
    };
    Ok(Token {
        access_token: Secret::new(access_token),
        token_type,
        expires_at: expires_in.map(|secs| now.saturating_add(secs.max(0))),
        refresh_token,
        scope,
        id_token,
        extra: object,
    })
}

/// The body as a JSON object (or a form-encoded body as one), if it is one.
pub(crate) fn body_object(response: &RawResponse) -> Option<Map<String, Value>> {
    if response.media_type() == "application/x-www-form-urlencoded" {
        return Some(
            form_urlencoded::parse(&response.body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        );
    }
    match serde_json::from_slice(&response.body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// An RFC 6749 §5.2 error document, when the object is one.
pub(crate) fn provider_error(object: &Map<String, Value>) -> Option<ProviderError> {
    let error = object.get("error")?.as_str()?.to_owned();
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(ProviderError::new(
        error,
        text("error_description"),
        text("error_uri"),
    ))
}

/// The body for an error message, with any token values replaced (JSON and form-encoded
/// bodies alike).
fn redacted_body(response: &RawResponse) -> String {
    match body_object(response) {
        Some(mut map) => {
            for key in ["access_token", "refresh_token", "id_token"] {
                if let Some(value) = map.get_mut(key) {
                    *value = Value::String("[redacted]".into());
                }
            }
            Value::Object(map).to_string()
        }
        _ => {
            let text = response.text();
            if text.len() > 512 {
                format!("{}…", &text[..text.floor_char_boundary_compat(512)])
            } else {
                text
            }
        }
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut index: usize) -> usize {
        while !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}
