//! Where a [`Registry`](crate::Registry) keeps its users' tokens: Authlib's `fetch_token` /
//! `update_token` pair, once for every provider. The application saves a user's token after
//! the sign-in ([`Registry::save_token`](crate::Registry::save_token)); an API call for that
//! user then loads it ([`Registry::authorized`](crate::Registry::authorized)), and a refresh
//! saves the new one in its place, so the next call, in this process or another, starts from
//! it.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::token::Token;

/// A failure of the application's token storage.
pub type TokenStoreError = Box<dyn std::error::Error + Send + Sync>;

/// The users' tokens, by provider name and the application's user key.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The token kept for `user` at `provider`.
    async fn load(&self, provider: &str, user: &str) -> Result<Option<Token>, TokenStoreError>;
    /// Keeps `token` for `user` at `provider`, replacing the one kept before.
    async fn save(&self, provider: &str, user: &str, token: &Token) -> Result<(), TokenStoreError>;
}

/// Tokens in this process's memory: for development and tests (they are lost at exit, and
/// several processes do not share them).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<(String, String), Token>>,
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn load(&self, provider: &str, user: &str) -> Result<Option<Token>, TokenStoreError> {
        Ok(self
            .lock()
            .get(&(provider.to_owned(), user.to_owned()))
            .cloned())
    }

    async fn save(&self, provider: &str, user: &str, token: &Token) -> Result<(), TokenStoreError> {
        self.lock()
            .insert((provider.to_owned(), user.to_owned()), token.clone());
        Ok(())
    }
}

impl MemoryTokenStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Token>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
