//! Synchronous wrappers for callers without an async runtime (feature `blocking`), as the
//! eternaltwin Python client offers both. Each call runs the async client on a private
//! single-threaded runtime; do not call them from inside an async runtime.

use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::client::{
    Authorization, AuthorizationOptions, Body, Callback, DeviceAuthorization, DevicePoll,
    Introspection, SignIn, UserInfo,
};
use crate::error::{
    ApiError, DeviceError, FinishError, RefreshError, StartError, TokenError, TokenManagementError,
};
use crate::eternaltwin::EternaltwinUser;
use crate::{ApiResponse, Token};

/// A blocking [`crate::Client`].
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<Runtime>,
}

impl Client {
    pub fn new(inner: crate::Client) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    pub fn start_authorization(&self) -> Result<Authorization, StartError> {
        self.runtime.block_on(self.inner.start_authorization())
    }

    pub fn start_authorization_with(
        &self,
        options: AuthorizationOptions,
    ) -> Result<Authorization, StartError> {
        self.runtime
            .block_on(self.inner.start_authorization_with(options))
    }

    pub fn finish_authorization(
        &self,
        callback: &Callback,
        sent_state: Option<&str>,
    ) -> Result<SignIn, FinishError> {
        self.runtime
            .block_on(self.inner.finish_authorization(callback, sent_state))
    }

    pub fn refresh(&self, token: &Token) -> Result<Token, RefreshError> {
        self.runtime.block_on(self.inner.refresh(token))
    }

    pub fn revoke(&self, token: &Token) -> Result<(), TokenManagementError> {
        self.runtime.block_on(self.inner.revoke(token))
    }

    pub fn introspect(&self, token: &str) -> Result<Introspection, TokenManagementError> {
        self.runtime.block_on(self.inner.introspect(token))
    }

    pub fn userinfo(&self, token: &Token) -> Result<UserInfo, ApiError> {
        self.runtime.block_on(self.inner.userinfo(token))
    }

    pub fn client_credentials(&self, scopes: &[&str]) -> Result<Token, TokenError> {
        self.runtime.block_on(self.inner.client_credentials(scopes))
    }

    pub fn start_device_authorization(
        &self,
        scopes: &[&str],
    ) -> Result<DeviceAuthorization, DeviceError> {
        self.runtime
            .block_on(self.inner.start_device_authorization(scopes))
    }

    pub fn poll_device(&self, device: &mut DeviceAuthorization) -> Result<DevicePoll, DeviceError> {
        self.runtime.block_on(self.inner.poll_device(device))
    }

    pub fn wait_for_device(&self, device: &mut DeviceAuthorization) -> Result<Token, DeviceError> {
        self.runtime.block_on(self.inner.wait_for_device(device))
    }

    pub fn authorized(&self, token: Token) -> Authorized {
        Authorized {
            inner: self.inner.authorized(token),
            runtime: self.runtime.clone(),
        }
    }
}

/// A blocking [`crate::Authorized`].
#[derive(Clone, Debug)]
pub struct Authorized {
    inner: crate::Authorized,
    runtime: Arc<Runtime>,
}

impl Authorized {
    pub fn token(&self) -> Result<Token, RefreshError> {
        self.runtime.block_on(self.inner.token())
    }

    pub fn get(&self, path: &str) -> Result<ApiResponse, ApiError> {
        self.runtime.block_on(self.inner.get(path))
    }

    pub fn post(&self, path: &str, body: Body) -> Result<ApiResponse, ApiError> {
        self.runtime.block_on(self.inner.post(path, body))
    }

    pub fn put(&self, path: &str, body: Body) -> Result<ApiResponse, ApiError> {
        self.runtime.block_on(self.inner.put(path, body))
    }

    pub fn delete(&self, path: &str) -> Result<ApiResponse, ApiError> {
        self.runtime.block_on(self.inner.delete(path))
    }

    pub fn userinfo(&self) -> Result<UserInfo, ApiError> {
        self.runtime.block_on(self.inner.userinfo())
    }

    /// [`crate::eternaltwin::current_user`].
    pub fn eternaltwin_user(&self) -> Result<EternaltwinUser, ApiError> {
        self.runtime
            .block_on(crate::eternaltwin::current_user(&self.inner))
    }
}
