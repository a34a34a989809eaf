//! Requests as the engine receives them, parsed once: the checked authorization request (and
//! the error redirect that answers it), and the client-authenticated request of the token,
//! introspection and revocation endpoints. Values only: the flows that check and answer them
//! live in `authorize` and `token`.

use std::collections::HashMap;

use doorward_proto::{
    CodeChallenge, CodeChallengeMethod, ErrorCode, OAuthError, RedirectUri, ResourceUri, ScopeSet,
    Secret, State,
};

use crate::clock::UnixTime;
use crate::model::Client;
use crate::ports::StoreError;

/// A checked authorization request.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// `response_type=token`: the legacy implicit grant (only when
    /// [`crate::Grants::insecure_implicit`] is on).
    pub implicit: bool,
    pub client: Client,
    /// The redirect URI in effect: the one sent, or the client's only registered one.
    pub redirect_uri: RedirectUri,
    pub scopes: ScopeSet,
    /// Whether the request named scopes (an empty or absent `scope` gets the defaults).
    pub scope_requested: bool,
    pub state: Option<State>,
    pub challenge: Option<(CodeChallenge, CodeChallengeMethod)>,
    /// OIDC Core §3.1.2.1 parameters.
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint`.
    pub hinted_subject: Option<String>,
    /// From a valid [`crate::authorize::REAUTH_PARAM`]: the time after which the browser must have signed in.
    pub reauthenticated_since: Option<UnixTime>,
    /// The `resource` parameters (RFC 8707 §2.1), known and allowed to the client: the
    /// grant's resources.
    pub resources: Vec<ResourceUri>,
}

/// What the authorization needs next from the browser.
#[derive(Debug)]
pub enum Interaction {
    /// Sign in (again), then come back. `hint` prefills the username.
    Login { hint: Option<String> },
    /// Ask the user to approve the client.
    Consent,
    /// Go back to the client: with a code, or with an error. The URL to redirect to.
    Redirect(String),
}

/// Why the request cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The client or the redirect URI is wrong: show the error, never redirect.
    #[error("{0}")]
    Show(ShowReason),
    /// Any other error: redirect to the client with it.
    #[error("{error}")]
    Redirect {
        redirect_uri: RedirectUri,
        error: OAuthError,
        state: Option<State>,
        /// The whole redirect URL, `iss` included (RFC 9207).
        location: String,
    },
    #[error("storage failure")]
    Store(#[from] StoreError),
}

/// The errors that are shown to the user rather than sent to a redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShowReason {
    #[error("The request has no client_id.")]
    MissingClientId,
    #[error("The request names client_id or redirect_uri more than once.")]
    RepeatedParameter,
    #[error("No application is registered under this client_id.")]
    UnknownClient,
    #[error("The redirect_uri is not a valid absolute URI.")]
    MalformedRedirectUri,
    #[error("The redirect_uri does not match the one registered for this application.")]
    MismatchingRedirectUri,
    #[error("The application has several redirect URIs registered, so the request must name one.")]
    MissingRedirectUri,
    /// The client's metadata document (draft-ietf-oauth-client-id-metadata-document) could not
    /// be fetched or was refused: its redirect URIs are unknown, so nothing is redirected.
    #[error("The application's metadata document was refused: {0}")]
    ClientDocument(String),
    /// An error of an application no operator registered (self-registered, or known by its
    /// metadata document): redirecting it would let anyone who can register send browsers
    /// anywhere from this server's address (RFC 9700 §4.11.2), so it is shown instead.
    #[error("This request of an unverified application is refused ({0}).")]
    UnverifiedClientError(String),
}

/// The `prompt` parameter (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    /// A space-separated list of known values; `none` only alone.
    pub(crate) fn parse(value: &str) -> Result<Self, OAuthError> {
        let mut prompt = Self::default();
        for word in value.split(' ').filter(|w| !w.is_empty()) {
            match word {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.select_account = true,
                _ => {
                    return Err(OAuthError::invalid_request(
                        "prompt must be among: none, login, consent, select_account",
                    ))
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values (OIDC Core section 3.1.2.1)",
            ));
        }
        Ok(prompt)
    }
}

impl AuthorizationRequest {
    /// The URL that answers `login_required` (OIDC Core §3.1.2.6): the user must sign in, and
    /// the request says no page may be shown, or the user who signed in is not the one asked.
    pub fn login_required(&self, why: &str, issuer: &str) -> String {
        self.error_redirect(
            &OAuthError::new(ErrorCode::LoginRequired, why.to_owned()),
            issuer,
        )
    }

    /// The URL that sends `error` back to the client (RFC 6749 §4.1.2.1, RFC 9207).
    pub fn error_redirect(&self, error: &OAuthError, issuer: &str) -> String {
        error_location_in(
            &self.redirect_uri,
            error,
            self.state.as_ref(),
            issuer,
            self.implicit,
        )
    }
}

/// The redirect location of an error response (RFC 6749 §4.1.2.1): `state` only when the
/// request had one, then `iss` (RFC 9207 §2).
pub fn error_location(
    redirect_uri: &RedirectUri,
    error: &OAuthError,
    state: Option<&State>,
    issuer: &str,
) -> String {
    error_location_in(redirect_uri, error, state, issuer, false)
}

/// [`error_location`] in the query, or in the fragment for the implicit grant (§4.2.2.1).
pub(crate) fn error_location_in(
    redirect_uri: &RedirectUri,
    error: &OAuthError,
    state: Option<&State>,
    issuer: &str,
    fragment: bool,
) -> String {
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(state) = state {
        params.push(("state", state.as_str()));
    }
    params.push(("iss", issuer));
    if fragment {
        redirect_uri.with_fragment(params)
    } else {
        redirect_uri.with_params(params)
    }
}

/// The endpoint a client authenticates at: an assertion's `aud` may name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEndpoint {
    Token,
    Introspection,
    Revocation,
}

impl ClientEndpoint {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Token => crate::config::paths::TOKEN,
            Self::Introspection => crate::config::paths::INTROSPECT,
            Self::Revocation => crate::config::paths::REVOKE,
        }
    }
}

/// A token request as the HTTP adapter received it. Its `Debug` shows parameter names only:
/// the values include secrets, codes and refresh tokens.
#[derive(Default)]
pub struct TokenRequest {
    /// The body's parameters. The adapter has already refused repeated names (RFC 6749 §3.2),
    /// except `resource`'s, which are in [`TokenRequest::resources`].
    pub params: HashMap<String, String>,
    /// The `resource` parameters, as sent (RFC 8707 §2: repeatable); the engine parses them.
    pub resources: Vec<String>,
    /// `Authorization: Basic` credentials, split at the first `:` of the decoded value.
    pub basic: Option<BasicCredentials>,
    /// The address the request came from, when the adapter knows it: failed password-grant
    /// attempts are also counted per address ([`crate::throttle`]), and its share of the
    /// Argon2 queue is bounded.
    pub client_address: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.params.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("TokenRequest")
            .field("params", &names)
            .field("resources", &self.resources)
            .field("basic", &self.basic)
            .field("client_address", &self.client_address)
            .finish()
    }
}

/// The two halves of HTTP Basic credentials, exactly as decoded from base64.
#[derive(Debug)]
pub struct BasicCredentials {
    pub id: String,
    pub secret: Secret,
}

/// The parameters of a query string in order, values decoded, parameters without a value left
/// out (RFC 6749 §3.1).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}
