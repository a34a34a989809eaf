//! `GET` and `POST /oauth/userinfo` with an access token in the `Authorization` header
//! (RFC 6750 §2.1; OIDC Core §5.3.1), `Bearer`, or `DPoP` with a proof for a DPoP-bound token
//! (RFC 9449 §7); or, in a `POST`, as `access_token` in a form body (RFC 6750 §2.2, which OIDC
//! Core §5.3.1 allows). Never in the query.

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::Json;
use doorward_core::config::paths;
use doorward_core::dpop::Presentation;
use doorward_proto::ErrorCode;
use serde_json::{Map, Value};

use crate::response::bearer::{
    dpop_header, presented_anywhere, BearerError, OtherPlaces, Refusal, REALM,
};
use crate::response::token::NoStore;
use crate::state::AppState;

pub(crate) async fn userinfo(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<NoStore<Json<Map<String, Value>>>, BearerError> {
    let other = OtherPlaces::default().body(&method, &headers, &body);
    let (token, scheme) = presented_anywhere(&headers, other, &REALM.into())?;
    let token = token.as_str();
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
