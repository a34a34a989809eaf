//! `POST /oauth/par` (RFC 9126 §2): a client pushes its authorization request and gets the
//! `request_uri` that stands for it, `201 Created` (§2.2); errors are token-endpoint errors
//! (§2.3).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use doorward_core::pushed::Pushed;

use crate::extract::ClientRequest;
use crate::response::token::{NoStore, TokenError, WithDpopNonce};
use crate::state::AppState;

pub(crate) async fn push(
    State(app): State<AppState>,
    ClientRequest(request): ClientRequest,
) -> WithDpopNonce<Result<NoStore<(StatusCode, Json<Pushed>)>, TokenError>> {
    let answer = app.engine.push_authorization_request(&request).await;
    WithDpopNonce(
        answer
            .map(|pushed| NoStore((StatusCode::CREATED, Json(pushed))))
            .map_err(TokenError::from),
        app.engine.dpop_nonce(),
    )
}
