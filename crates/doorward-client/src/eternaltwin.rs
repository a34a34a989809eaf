//! The Eternaltwin preset's profile call: `GET /api/v1/auth/self` (wire.md §4.4), typed.
//! Eternaltwin answers `200 {"type":"Guest"}` for a token it does not know; that becomes
//! [`ApiError::InvalidToken`] rather than a missing-field surprise.

use serde::Deserialize;
use serde_json::Value;

use crate::client::Authorized;
use crate::error::ApiError;

/// The signed-in Eternaltwin user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EternaltwinUser {
    /// The user's UUID.
    pub id: String,
    pub display_name: String,
    /// Present only in some answers (the access-token answer of Eternaltwin 0.16 omits it).
    pub is_administrator: Option<bool>,
}

#[derive(Deserialize)]
struct Wire {
    id: Value,
    display_name: DisplayName,
    #[serde(default)]
    is_administrator: Option<bool>,
}

#[derive(Deserialize)]
struct DisplayName {
    current: Current,
}

#[derive(Deserialize)]
struct Current {
    value: String,
}

/// The user the access token stands for.
pub async fn current_user(authorized: &Authorized) -> Result<EternaltwinUser, ApiError> {
    let response = authorized
        .get("/api/v1/auth/self")
        .await?
        .error_for_status()?;
    let body: Value = response.json()?;
    match body.get("type").and_then(Value::as_str) {
        Some("AccessToken") | Some("User") => {}
        Some("Guest") => return Err(ApiError::InvalidToken),
        other => {
            return Err(ApiError::UnexpectedResponse(format!(
                "/api/v1/auth/self answered type {other:?}"
            )))
        }
    }
    let user = body
        .get("user")
        .cloned()
        .ok_or_else(|| ApiError::UnexpectedResponse("/api/v1/auth/self has no user".into()))?;
    let wire: Wire = serde_json::from_value(user).map_err(ApiError::Json)?;
    let id = match wire.id {
        Value::String(id) => id,
        other => other.to_string(),
    };
    Ok(EternaltwinUser {
        id,
        display_name: wire.display_name.current.value,
        is_administrator: wire.is_administrator,
    })
}
