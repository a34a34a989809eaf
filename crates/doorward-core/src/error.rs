//! The engine's one error type, and the refusals shown on a page rather than sent to a client.

use doorward_proto::OAuthError;

use crate::client_document::LookupError;
use crate::jose::JwsError;
use crate::passwords::Busy;
use crate::ports::StoreError;
use crate::throttle::{Refusal, Throttled};

/// A failure of an engine operation: a protocol error for the client, or a storage failure that
/// the adapter reports as an opaque server error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// A logout request that must be refused on a page (never redirected).
    #[error(transparent)]
    EndSession(EndSessionError),
    /// Too many failed client authentications or password-grant attempts
    /// ([`crate::throttle`]): refused before the credentials were checked.
    #[error(transparent)]
    Throttled(Throttled),
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Throttled(t) => Self::Throttled(t),
            Refusal::Store(e) => Self::Store(e),
        }
    }
}

impl From<LookupError> for Error {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Store(e) => Self::Store(e),
            // The client's document server is the client's: its failure is the client's
            // (draft-ietf-oauth-client-id-metadata-document-02 §5.1), never a server error.
            // RFC 6749 §5.2: `error_description` is printable ASCII without `"` and `\`;
            // the document error may quote what the client's server sent.
            LookupError::Document(e) => Self::OAuth(OAuthError::invalid_client(
                e.to_string()
                    .chars()
                    .map(|c| match c {
                        '"' => '\'',
                        ' '..='~' if c != '\\' => c,
                        _ => '?',
                    })
                    .collect::<String>(),
            )),
        }
    }
}

impl From<Busy> for Error {
    fn from(_: Busy) -> Self {
        Self::OAuth(OAuthError::new(
            doorward_proto::ErrorCode::TemporarilyUnavailable,
            "the server is busy; retry in a moment",
        ))
    }
}

/// Why a logout request is refused. Shown on a page, never redirected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndSessionError {
    #[error("The id_token_hint is not an ID token issued by this server ({0}).")]
    BadHint(JwsError),
    #[error("No application is registered under this client_id.")]
    UnknownClient,
    #[error("The client_id does not match the audience of the id_token_hint.")]
    ClientMismatch,
    #[error("A post_logout_redirect_uri needs client_id or id_token_hint to say whose it is.")]
    NoClient,
    #[error("The post_logout_redirect_uri is not registered for this application.")]
    UnregisteredRedirect,
}
