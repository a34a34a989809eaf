//! `GET` and `POST /oauth/userinfo` with a bearer token in the `Authorization` header
//! (RFC 6750 §2.1; OIDC Core §5.3.1).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use doorward_proto::ErrorCode;
use serde_json::{Map, Value};

use crate::response::bearer::{credentials, BearerError, Credentials, Refusal, REALM};
use crate::response::token::NoStore;
use crate::state::AppState;

pub(crate) async fn userinfo(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<NoStore<Json<Map<String, Value>>>, BearerError> {
    let token = match credentials(&headers) {
        Credentials::Token(token) => token,
        other => return Err(BearerError::for_credentials(REALM.into(), &other)),
    };
    match app.engine.userinfo(token).await {
        Ok(claims) => Ok(NoStore(Json(claims))),
        Err(doorward_core::Error::OAuth(e)) if e.code == ErrorCode::InsufficientScope => {
            Err(BearerError::provider(Refusal::InsufficientScope(vec![
                "openid".into(),
            ])))
        }
        Err(e) => Err(BearerError::from_engine(e)),
    }
}
