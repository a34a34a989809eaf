//! The device authorization grant (RFC 8628), for a client on a device with no browser (a
//! TV, a terminal, an SSH session): it asks for a device code and a user code, shows the user
//! code and where to enter it, and polls the token endpoint while its user approves on another
//! screen.

use std::time::Duration;

use doorward_proto::{ErrorCode, Secret};
use serde::Deserialize;

use super::{Client, Endpoint};
use crate::error::{DeviceError, TokenError};
use crate::token::{parse_token_response, Token};

/// RFC 8628 §3.4.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The interval when the provider names none (RFC 8628 §3.2: 5 seconds).
const DEFAULT_INTERVAL: u64 = 5;

/// What `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_STEP: u64 = 5;

/// A device authorization in progress (RFC 8628 §3.2): show [`Self::user_code`] and
/// [`Self::verification_uri`] (or [`Self::verification_uri_complete`], e.g. as a QR code), then
/// [`Client::wait_for_device`].
#[derive(Debug)]
pub struct DeviceAuthorization {
    /// The device's credential for its polls; never shown.
    pub device_code: Secret,
    /// What the user types, as the provider formats it.
    pub user_code: String,
    pub verification_uri: String,
    /// The verification URI with the code in it, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// When the device code expires, on the client's clock (Unix seconds).
    pub expires_at: i64,
    /// Seconds between polls; grows by 5 with each `slow_down`.
    pub interval: u64,
}

/// One poll's answer ([`Client::poll_device`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum DevicePoll {
    /// The user approved: the tokens.
    Ready(Box<Token>),
    /// Not answered yet (`authorization_pending`): poll again after the interval.
    Pending,
    /// Polled too fast (`slow_down`): the interval grew by 5 seconds.
    SlowDown,
}

#[derive(Deserialize)]
struct Answer {
    device_code: String,
    user_code: String,
    // RFC 8628 §3.2; `verification_url` is what Google answered before the RFC.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

impl Client {
    /// Asks the provider's device authorization endpoint for a device code and a user code
    /// (RFC 8628 §3.1), with the client's authentication (a public client sends its
    /// `client_id`). `scopes` empty: the configured scopes.
    pub async fn start_device_authorization(
        &self,
        scopes: &[&str],
    ) -> Result<DeviceAuthorization, DeviceError> {
        let url = self
            .endpoint(Endpoint::DeviceAuthorization)
            .await
            .map_err(TokenError::from)?;
        let scope = if scopes.is_empty() {
            self.inner.config.scopes.join(" ")
        } else {
            scopes.join(" ")
        };
        let mut form = Vec::new();
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let response = self.authenticated_post(url, form).await?;
        if !response.status.is_success() {
            return Err(match parse_token_response(&response, self.now()) {
                Err(e) => e.into(),
                Ok(_) => DeviceError::InvalidResponse {
                    reason: format!("HTTP {}", response.status.as_u16()),
                    body: String::new(),
                },
            });
        }
        let answer: Answer =
            serde_json::from_slice(&response.body).map_err(|e| DeviceError::InvalidResponse {
                reason: e.to_string(),
                body: response.text().chars().take(512).collect(),
            })?;
        Ok(DeviceAuthorization {
            device_code: Secret::new(answer.device_code),
            user_code: answer.user_code,
            verification_uri: answer.verification_uri,
            verification_uri_complete: answer.verification_uri_complete,
            expires_at: self
                .now()
                .saturating_add(i64::try_from(answer.expires_in).unwrap_or(i64::MAX)),
            interval: answer.interval.unwrap_or(DEFAULT_INTERVAL).max(1),
        })
    }

    /// One poll of the token endpoint (RFC 8628 §3.4): the tokens, or why to wait. `slow_down`
    /// makes `device.interval` 5 seconds longer. The user's refusal is
    /// [`DeviceError::Denied`], the code's expiry [`DeviceError::Expired`].
    pub async fn poll_device(
        &self,
        device: &mut DeviceAuthorization,
    ) -> Result<DevicePoll, DeviceError> {
        let form = vec![
            ("grant_type", DEVICE_CODE_GRANT.to_owned()),
            ("device_code", device.device_code.secret().to_owned()),
        ];
        match self.token_request(form).await {
            Ok(token) => {
                // An ID token (the grant had `openid`) is checked like a sign-in's, without a
                // nonce: the device flow has none.
                if let Some(raw) = token.id_token() {
                    self.validate_id_token(raw, None, Some(token.access_token()))
                        .await?;
                }
                Ok(DevicePoll::Ready(Box::new(token)))
            }
            Err(TokenError::Provider { error, status }) => match error.code {
                Some(ErrorCode::AuthorizationPending) => Ok(DevicePoll::Pending),
                Some(ErrorCode::SlowDown) => {
                    device.interval = device.interval.saturating_add(SLOW_DOWN_STEP);
                    Ok(DevicePoll::SlowDown)
                }
                Some(ErrorCode::AccessDenied) => Err(DeviceError::Denied),
                Some(ErrorCode::ExpiredToken) => Err(DeviceError::Expired),
                _ => Err(TokenError::Provider { status, error }.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Polls every `device.interval` seconds until the user answers or the code expires
    /// (RFC 8628 §3.5), and returns the tokens.
    pub async fn wait_for_device(
        &self,
        device: &mut DeviceAuthorization,
    ) -> Result<Token, DeviceError> {
        loop {
            if self.now() >= device.expires_at {
                return Err(DeviceError::Expired);
            }
            tokio::time::sleep(Duration::from_secs(device.interval)).await;
            if let DevicePoll::Ready(token) = self.poll_device(device).await? {
                return Ok(*token);
            }
        }
    }
}
