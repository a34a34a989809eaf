use serde::{Deserialize, Serialize};

/// `token_type` of a token response (RFC 6749 §7.1): a bearer token (RFC 6750), or one bound
/// to the client's DPoP key (RFC 9449 §5), which it presents with `Authorization: DPoP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenType {
    Bearer,
    DPoP,
}

impl TokenType {
    /// The name on the wire, also the `Authorization` scheme the token is sent with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::DPoP => "DPoP",
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
///
/// Fields that are `None` are left out, not sent as `null`: the `eternaltwin` Python client
/// builds its token with `Token(**json)` and fails on any key beyond `access_token`,
/// `token_type`, `expires_in` and `refresh_token`, so `scope` appears only when it differs from
/// what the client asked for (RFC 6749 §5.1 allows exactly that).
///
/// Its `Debug` redacts the tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OIDC Core §3.1.3.3: only when the grant's scope holds `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: what a token exchange issued (required there, absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_out_absent_fields() {
        let response = TokenResponse {
            access_token: "at".into(),
            token_type: TokenType::Bearer,
            expires_in: 7200,
            refresh_token: None,
            scope: None,
            id_token: None,
            issued_token_type: None,
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"access_token":"at","token_type":"Bearer","expires_in":7200}"#
        );
    }
}
