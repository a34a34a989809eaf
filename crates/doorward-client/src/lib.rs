//! Sign users in with any OAuth 2.0 / OpenID Connect provider — Eternaltwin, `doorward serve`,
//! or any issuer with discovery — keep their tokens fresh and call APIs with them.
//!
//! One concrete [`Client`] per provider (cheap to clone, easy to keep in application state);
//! a [`Registry`] of named ones; errors that say which check failed.
//!
//! ```no_run
//! use doorward_client::{Callback, Client, ProviderConfig, StateKey};
//!
//! # async fn demo(callback_query: &str, key_bytes: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let config = ProviderConfig::oidc("https://login.example", "my-app")
//!     .with_secret("my-secret")
//!     .with_redirect_uri("https://app.example/oauth/callback".parse()?)
//!     .with_scopes(["openid", "profile", "email"]);
//! let client = Client::builder(config)
//!     .state_key(StateKey::new(key_bytes)?) // the same key in every worker
//!     .build()?;
//!
//! // 1. Sign-in button: send the browser to the provider, keep the state in its session.
//! let authorization = client.start_authorization().await?;
//! let (redirect_to, session_state) = (authorization.url, authorization.state);
//!
//! // 2. Callback: state, issuer, code, PKCE and ID token are all checked here.
//! let sign_in = client
//!     .finish_authorization(&Callback::from_query(callback_query), Some(&session_state))
//!     .await?;
//! let user = sign_in.id_token.expect("openid was requested");
//! println!("{} signed in as {:?}", user.subject, user.get_str("email"));
//!
//! // 3. API calls, refreshing the token shortly before it expires.
//! let api = client.authorized(sign_in.token);
//! let profile = api.userinfo().await?;
//! # let _ = (redirect_to, profile);
//! # Ok(())
//! # }
//! ```
//!
//! For Eternaltwin, start from [`ProviderConfig::eternaltwin`] and read the user with
//! [`eternaltwin::current_user`].

#[cfg(feature = "blocking")]
pub mod blocking;
mod client;
mod config;
mod discovery;
mod dpop;
mod error;
pub mod eternaltwin;
mod http;
mod id_token;
pub mod oauth1;
mod registry;
#[cfg(feature = "axum")]
pub mod sign_in;
mod state;
mod token;
pub mod tokens;

pub use client::{
    ApiResponse, Authorization, AuthorizationOptions, Authorized, Body, Callback, Client,
    ClientBuilder, Clock, DeviceAuthorization, DevicePoll, HookFuture, Introspection, JwtBearer,
    SignIn, TokenExchange, TokenTypeHint, TokenUpdate, UserInfo, ACCESS_TOKEN_TYPE,
    JWT_BEARER_GRANT,
};
pub use config::{
    AuthMethod, BasicEncoding, BodyFormat, Endpoints, PrivateKey, ProviderConfig, TokenPlacement,
};
pub use discovery::Metadata;
pub use doorward_proto::ErrorCode;
pub use dpop::DpopKey;
pub use error::{
    ApiError, ConfigError, DeviceError, DiscoveryError, FinishError, IdTokenError, InvalidState,
    ProviderError, RefreshError, StartError, StateStoreError, TokenError, TokenManagementError,
    TransportError,
};
pub use http::{Hooks, Method, RawRequest, RawResponse, StatusCode};
pub use id_token::{IdTokenClaims, JwtAccessToken, DEFAULT_ALGORITHMS};
pub use jsonwebtoken::Algorithm;
pub use registry::Registry;
pub use state::{MemoryStateStore, PendingAuthorization, StateKey, StateMode, StateStore};
pub use token::Token;
pub use tokens::{MemoryTokenStore, TokenStore, TokenStoreError};

#[cfg(test)]
mod tests;
