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
    /// The authentication classes asked for, a preference list (OIDC Core §3.1.2.1;
    /// [`crate::acr`]).
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint`.
    pub hinted_subject: Option<String>,
    /// From a valid [`crate::authorize::REAUTH_PARAM`]: the time after which the browser must have signed in.
    pub reauthenticated_since: Option<UnixTime>,
    /// The `resource` parameters (RFC 8707 §2.1), known and allowed to the client: the
    /// grant's resources.
    pub resources: Vec<ResourceUri>,
    /// How the answer travels back to the client (`response_mode`).
    pub response_mode: ResponseMode,
    /// The pushed authorization request (RFC 9126) this request came from: spent when its
    /// code is issued, so that its `request_uri` serves one authorization.
    pub pushed: Option<Spend>,
    /// A request object (RFC 9101) verified here: the query the browser goes on with instead
    /// of the object (`client_id` and the `request_uri` of the request sealed as a pushed one),
    /// so that the object is verified once and its request spent once. The HTTP adapter sends
    /// the browser there before anything else.
    pub carry: Option<String>,
    /// The thumbprint of the DPoP key the code is bound to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// The prefix of every `request_uri` this server issues (RFC 9126 §2.2): the authorization
/// endpoint opens those as pushed requests (`crate::pushed`).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// What spends a pushed authorization request (RFC 9126) once its code is issued: its `jti`,
/// recorded as used until the request expires (`AssertionStore::record_jti`, shared by every
/// instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spend {
    pub jti: String,
    pub expires_at: UnixTime,
}

/// Where the parameters being checked come from.
pub(crate) enum Checking {
    /// The query of the authorization endpoint.
    Front {
        reauthenticated_since: Option<UnixTime>,
    },
    /// A pushed request (RFC 9126) opened at the authorization endpoint.
    Pushed {
        reauthenticated_since: Option<UnixTime>,
        spend: Spend,
    },
    /// The body of the pushed-request endpoint: checked as the authorization endpoint would.
    Pushing,
    /// The query of a request whose request object (RFC 9101) was refused, and why: only the
    /// redirect URI, `state` and the mode are read, to answer `invalid_request_object`.
    RefusedObject(&'static str),
}

impl Checking {
    pub(crate) fn reauthenticated_since(&self) -> Option<UnixTime> {
        match self {
            Self::Front {
                reauthenticated_since,
            }
            | Self::Pushed {
                reauthenticated_since,
                ..
            } => *reauthenticated_since,
            Self::Pushing | Self::RefusedObject(_) => None,
        }
    }

    pub(crate) fn spend(self) -> Option<Spend> {
        match self {
            Self::Pushed { spend, .. } => Some(spend),
            Self::Front { .. } | Self::Pushing | Self::RefusedObject(_) => None,
        }
    }
}

/// How the authorization response reaches the client (OAuth 2.0 Multiple Response Type
/// Encoding Practices §2.1, OAuth 2.0 Form Post Response Mode §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    /// In the redirect URI's query: a code's default (RFC 6749 §4.1.2).
    Query,
    /// In the redirect URI's fragment: the implicit grant's default (RFC 6749 §4.2.2); a code
    /// may ask for it.
    Fragment,
    /// As the fields of a form that the browser posts to the redirect URI: the answer is never
    /// in a URL (browser history, `Referer`, server logs).
    FormPost,
}

impl ResponseMode {
    /// The value of `response_mode` that names this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Fragment => "fragment",
            Self::FormPost => "form_post",
        }
    }

    /// A `response_mode` value this server implements; `None` for anything else (JARM's
    /// `jwt` modes among them).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(Self::Query),
            "fragment" => Some(Self::Fragment),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }
}

/// An authorization response (RFC 6749 §4.1.2, §4.1.2.1, §4.2.2): the parameters for the
/// client's redirect URI and how they travel. The HTTP adapter writes it: a redirect for
/// `query` and `fragment`, the auto-submitting form for `form_post`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub redirect_uri: RedirectUri,
    /// In order: the answer (`code`, or `access_token`…, or `error`…), `state`, then `iss`.
    pub params: Vec<(String, String)>,
    pub mode: ResponseMode,
}

impl AuthorizationResponse {
    /// The URL of a redirect that carries the answer: in the query, or in the fragment. For
    /// `form_post` there is none (`None`): the answer must not appear in a URL.
    pub fn location(&self) -> Option<String> {
        match self.mode {
            ResponseMode::FormPost => None,
            ResponseMode::Query | ResponseMode::Fragment => Some(self.url()),
        }
    }

    /// The redirect URI with the answer in its query, or in its fragment for the `fragment`
    /// mode, whatever the mode: for tests and logs of the embedding application, never for a
    /// `form_post` answer sent to a browser.
    pub fn url(&self) -> String {
        let pairs = self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        match self.mode {
            ResponseMode::Fragment => self.redirect_uri.with_fragment(pairs),
            ResponseMode::Query | ResponseMode::FormPost => self.redirect_uri.with_params(pairs),
        }
    }

    /// The value of one parameter of the answer.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the authorization needs next from the browser.
#[derive(Debug)]
pub enum Interaction {
    /// Sign in (again), then come back. `hint` prefills the username.
    Login { hint: Option<String> },
    /// Ask the user to approve the client.
    Consent,
    /// The request asks for a stronger sign-in (`acr_values`) than the session's, and the user
    /// has a second factor: ask for it (`pending` is the sign-in waiting for it,
    /// `crate::second_factor`), then come back.
    StepUp { pending: String },
    /// Go back to the client: with a code, or with an error.
    Redirect(AuthorizationResponse),
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
        /// The whole answer, `iss` included (RFC 9207).
        response: AuthorizationResponse,
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
    /// The `request_uri` is not a pushed request (RFC 9126) of this client that is still
    /// valid: its redirect URI is unknown, so nothing is redirected.
    #[error("The pushed authorization request (request_uri) is not valid: {0}")]
    InvalidRequestUri(&'static str),
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
    /// The answer `login_required` (OIDC Core §3.1.2.6): the user must sign in, and the
    /// request says no page may be shown, or the user who signed in is not the one asked.
    pub fn login_required(&self, why: &str, issuer: &str) -> AuthorizationResponse {
        self.error_response(
            &OAuthError::new(ErrorCode::LoginRequired, why.to_owned()),
            issuer,
        )
    }

    /// The answer that sends `error` back to the client (RFC 6749 §4.1.2.1, RFC 9207).
    pub fn error_response(&self, error: &OAuthError, issuer: &str) -> AuthorizationResponse {
        error_response(
            &self.redirect_uri,
            error,
            self.state.as_ref(),
            issuer,
            self.response_mode,
        )
    }

    /// The answer of a success: `params` (the code, or the implicit grant's token), then
    /// `state` when the request had one, then `iss` (RFC 9207 §2).
    pub(crate) fn success(
        &self,
        params: Vec<(String, String)>,
        issuer: &str,
    ) -> AuthorizationResponse {
        with_state_and_issuer(
            &self.redirect_uri,
            params,
            self.state.as_ref(),
            issuer,
            self.response_mode,
        )
    }
}

/// An error response (RFC 6749 §4.1.2.1): `error`, `error_description`, `state` only when the
/// request had one, then `iss` (RFC 9207 §2).
pub fn error_response(
    redirect_uri: &RedirectUri,
    error: &OAuthError,
    state: Option<&State>,
    issuer: &str,
    mode: ResponseMode,
) -> AuthorizationResponse {
    with_state_and_issuer(
        redirect_uri,
        vec![
            ("error".to_owned(), error.code.as_str().to_owned()),
            (
                "error_description".to_owned(),
                error.description.to_string(),
            ),
        ],
        state,
        issuer,
        mode,
    )
}

fn with_state_and_issuer(
    redirect_uri: &RedirectUri,
    mut params: Vec<(String, String)>,
    state: Option<&State>,
    issuer: &str,
    mode: ResponseMode,
) -> AuthorizationResponse {
    if let Some(state) = state {
        params.push(("state".to_owned(), state.as_str().to_owned()));
    }
    params.push(("iss".to_owned(), issuer.to_owned()));
    AuthorizationResponse {
        redirect_uri: redirect_uri.clone(),
        params,
        mode,
    }
}

/// The endpoint a client authenticates at: an assertion's `aud` may name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEndpoint {
    Token,
    /// RFC 9126 §2: the pushed authorization request endpoint.
    PushedAuthorization,
    /// RFC 8628 §3.1: the device authorization endpoint.
    DeviceAuthorization,
    Introspection,
    Revocation,
}

impl ClientEndpoint {
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Token => crate::config::paths::TOKEN,
            Self::PushedAuthorization => crate::config::paths::PAR,
            Self::DeviceAuthorization => crate::config::paths::DEVICE_AUTHORIZATION,
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
    /// The request's `DPoP` header (RFC 9449 §4): the tokens issued are bound to its key.
    pub dpop: crate::dpop::DpopHeader,
}

impl TokenRequest {
    /// No client authentication (a `client_id` alone is none): nothing proves the client but,
    /// perhaps, the grant's own parameters
    /// ([`crate::extension_grant::ExtensionGrant::client_of`]).
    pub fn carries_no_client_authentication(&self) -> bool {
        self.basic.is_none()
            && ["client_secret", "client_assertion", "client_assertion_type"]
                .iter()
                .all(|name| !self.params.contains_key(*name))
    }
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
            .field("dpop", &!self.dpop.is_absent())
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
