//! `GET` and `POST /oauth/userinfo` with an access token in the `Authorization` header
//! (RFC 6750 §2.1; OIDC Core §5.3.1), `Bearer`, or `DPoP` with a proof for a DPoP-bound token
//! (RFC 9449 §7).

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::Json;
use doorward_core::config::paths;
use doorward_core::dpop::Presentation;
use doorward_proto::ErrorCode;
use serde_json::{Map, Value};

use crate::response::bearer::{dpop_header, presented_token, BearerError, Refusal, REALM};
use crate::response::token::NoStore;
use crate::state::AppState;

pub(crate) async fn userinfo(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<NoStore<Json<Map<String, Value>>>, BearerError> {
    let (token, scheme) = presented_token(&headers, &REALM.into())?;
    let dpop = dpop_header(&headers);
    let url = app.engine.endpoint_url(paths::USERINFO);
    let presented = Presentation {
        token,
        scheme,
        dpop: &dpop,
        method: method.as_str(),
        url: &url,
    };
    match app.engine.userinfo_presented(&presented).await {
        Ok(claims) => Ok(NoStore(Json(claims))),
        Err(doorward_core::Error::OAuth(e)) if e.code == ErrorCode::InsufficientScope => Err(
            BearerError::provider(Refusal::InsufficientScope(vec!["openid".into()]))
                .with_scheme(scheme),
        ),
        Err(e) => Err(BearerError::from_engine(e).with_scheme(scheme)),
    }
}
