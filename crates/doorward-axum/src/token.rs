//! `POST /oauth/token` (RFC 6749 §3.2).

use axum::extract::State;
use axum::Json;
use doorward_proto::TokenResponse;

use crate::extract::ClientRequest;
use crate::response::token::{NoStore, TokenError, WithDpopNonce};
use crate::state::AppState;

pub(crate) async fn token(
    State(app): State<AppState>,
    ClientRequest(request): ClientRequest,
) -> WithDpopNonce<Result<NoStore<Json<TokenResponse>>, TokenError>> {
    let answer = app.engine.token(&request).await;
    WithDpopNonce(
        answer.map(|t| NoStore(Json(t))).map_err(TokenError::from),
        app.engine.dpop_nonce(),
    )
}
