//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2).
//!
//! A request is checked in two stages. First the client and its redirect URI: when either is
//! wrong, nothing may be sent to the redirect URI (RFC 6749 §4.1.2.1, RFC 9700 §4.11 — no open
//! redirect), so the error is shown to the user ([`AuthorizeError::Show`]). Then every other
//! parameter: those errors go back to the client's redirect URI with `error`,
//! `error_description` and `state` ([`AuthorizeError::Redirect`]).

use std::collections::HashMap;

use doorward_proto::{
    CodeChallenge, CodeChallengeMethod, ErrorCode, OAuthError, RedirectUri, ScopeSet, State,
};

use crate::model::{Client, CodeRecord, ConsentRecord, User};
use crate::opaque::{self, OpaqueKind, TokenHash};
use crate::ports::{StoreError, UnixTime};
use crate::session::SignedIn;
use crate::Engine;

/// A checked authorization request.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    pub client: Client,
    /// The redirect URI in effect: the one sent, or the client's only registered one.
    pub redirect_uri: RedirectUri,
    pub scopes: ScopeSet,
    /// Whether the request named scopes (an empty or absent `scope` gets the defaults).
    pub scope_requested: bool,
    pub state: Option<State>,
    pub challenge: Option<(CodeChallenge, CodeChallengeMethod)>,
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
}

/// What happens to a checked request for a signed-in user.
#[derive(Debug)]
pub enum Decision {
    /// The user has not approved this client for these scopes yet: ask.
    AskConsent,
    /// Approved before: go back to the client with a code. The URL to redirect to.
    Redirect(String),
}

impl AuthorizationRequest {
    /// The URL that sends `error` back to the client (RFC 6749 §4.1.2.1).
    pub fn error_redirect(&self, error: &OAuthError) -> String {
        error_location(&self.redirect_uri, error, self.state.as_ref())
    }
}

/// The redirect location of an error response (RFC 6749 §4.1.2.1): `state` only when the
/// request had one.
pub fn error_location(
    redirect_uri: &RedirectUri,
    error: &OAuthError,
    state: Option<&State>,
) -> String {
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_ref()),
    ];
    if let Some(state) = state {
        params.push(("state", state.as_str()));
    }
    redirect_uri.with_params(params)
}

impl Engine {
    /// Checks an authorization request given as its query parameters, in order.
    pub async fn check_authorization(
        &self,
        params: &[(String, String)],
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, value) in params {
            seen.entry(name.as_str()).or_default().push(value.as_str());
        }
        let single = |name: &str| seen.get(name).map(|v| v[0]);
        let repeated = |name: &str| seen.get(name).is_some_and(|v| v.len() > 1);

        // Stage 1: client and redirect URI; errors are shown, never redirected.
        if repeated("client_id") || repeated("redirect_uri") {
            return Err(AuthorizeError::Show(ShowReason::RepeatedParameter));
        }
        let client_id = single("client_id")
            .filter(|s| !s.is_empty())
            .ok_or(AuthorizeError::Show(ShowReason::MissingClientId))?;
        let client = self
            .find_client(client_id)
            .await?
            .ok_or(AuthorizeError::Show(ShowReason::UnknownClient))?;
        let redirect_uri =
            resolve_redirect_uri(&client, single("redirect_uri")).map_err(AuthorizeError::Show)?;

        // Stage 2: everything else; errors go back to the client.
        let state = single("state").map(State::new);
        let fail = |error: OAuthError| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.clone(),
            error,
            state: state.clone(),
        };
        if let Some((name, _)) = seen.iter().find(|(_, values)| values.len() > 1) {
            return Err(fail(OAuthError::invalid_request(format!(
                "the parameter {} is repeated (RFC 6749 section 3.1)",
                doorward_proto::parameter_for_description(name)
            ))));
        }
        match single("response_type") {
            None | Some("") => {
                return Err(fail(OAuthError::invalid_request(
                    "the response_type parameter is missing",
                )))
            }
            Some("code") => {}
            Some(_) => {
                return Err(fail(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                )))
            }
        }
        let (scopes, scope_requested) = self.requested_scopes(single("scope")).map_err(fail)?;
        let challenge = self
            .requested_challenge(single("code_challenge"), single("code_challenge_method"))
            .map_err(fail)?;
        Ok(AuthorizationRequest {
            client,
            redirect_uri,
            scopes,
            scope_requested,
            state,
            challenge,
        })
    }

    fn requested_scopes(&self, scope: Option<&str>) -> Result<(ScopeSet, bool), OAuthError> {
        let requested = ScopeSet::parse(scope.unwrap_or(""))
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        if requested.is_empty() {
            return Ok((self.config.scopes.clone(), false));
        }
        if !requested.is_subset(&self.config.scopes) {
            return Err(OAuthError::invalid_scope(format!(
                "this server grants only the scopes: {}",
                self.config.scopes
            )));
        }
        Ok((requested, true))
    }

    /// PKCE parameters (RFC 7636 §4.3). A method without a challenge is an error; a challenge
    /// without a method means `plain` (§4.3), accepted only when configured.
    fn requested_challenge(
        &self,
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Option<(CodeChallenge, CodeChallengeMethod)>, OAuthError> {
        let Some(challenge) = challenge else {
            return match method {
                Some(_) => Err(OAuthError::invalid_request(
                    "code_challenge_method was sent without code_challenge",
                )),
                None => Ok(None),
            };
        };
        let challenge = CodeChallenge::parse(challenge)
            .map_err(|e| OAuthError::invalid_request(format!("code_challenge: {e}")))?;
        let method = CodeChallengeMethod::parse(method.unwrap_or("plain"))
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        if method == CodeChallengeMethod::Plain && !self.config.allow_plain_pkce {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256 (plain is not allowed)",
            ));
        }
        Ok(Some((challenge, method)))
    }

    /// What to do with a checked request for a signed-in user: ask for consent, or issue a
    /// code when the user approved this client for these scopes before.
    pub async fn decide(
        &self,
        user: &SignedIn,
        request: &AuthorizationRequest,
    ) -> Result<Decision, StoreError> {
        let consent = self
            .store
            .find_consent(user.user.id, request.client.id)
            .await?;
        match consent {
            Some(c) if request.scopes.is_subset(&c.scopes) => Ok(Decision::Redirect(
                self.issue_code(&user.user, user.session.created_at, request)
                    .await?,
            )),
            _ => Ok(Decision::AskConsent),
        }
    }

    /// The user approved: remember it and issue a code. Returns the URL to redirect to.
    pub async fn approve(
        &self,
        user: &SignedIn,
        request: &AuthorizationRequest,
    ) -> Result<String, StoreError> {
        self.store
            .record_consent(&ConsentRecord {
                user_id: user.user.id,
                client_id: request.client.id,
                scopes: request.scopes.clone(),
                granted_at: self.now(),
            })
            .await?;
        self.issue_code(&user.user, user.session.created_at, request)
            .await
    }

    /// Issues a code for `user` without sign-in or consent, as if the user had approved.
    ///
    /// # Security
    /// This skips every check that involves the user. It exists for benchmarks and operator
    /// tooling run by whoever controls the server's store; never expose it over HTTP.
    pub async fn insecure_issue_code(
        &self,
        user: &User,
        request: &AuthorizationRequest,
    ) -> Result<String, StoreError> {
        self.issue_code(user, self.now(), request).await
    }

    /// The user refused: `access_denied` (RFC 6749 §4.1.2.1).
    pub fn deny(&self, request: &AuthorizationRequest) -> String {
        request.error_redirect(&OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the request",
        ))
    }

    /// Issues a single-use code bound to the client, the redirect URI and the PKCE challenge
    /// (RFC 6749 §4.1.2, RFC 7636 §4.4) and returns the redirect URL carrying it.
    async fn issue_code(
        &self,
        user: &User,
        auth_time: UnixTime,
        request: &AuthorizationRequest,
    ) -> Result<String, StoreError> {
        let code = opaque::generate(OpaqueKind::AuthorizationCode, self.random.as_ref());
        let now = self.now();
        self.store
            .insert_code(&CodeRecord {
                hash: TokenHash::of(&code),
                client_id: request.client.id,
                user_id: user.id,
                redirect_uri: request.redirect_uri.clone(),
                scopes: request.scopes.clone(),
                scope_requested: request.scope_requested,
                challenge: request.challenge.clone(),
                family_id: self.new_time_ordered_uuid(),
                auth_time,
                issued_at: now,
                expires_at: now + self.config.lifetimes.code,
            })
            .await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state.as_str()));
        }
        Ok(request.redirect_uri.with_params(params))
    }
}

/// The redirect URI in effect (RFC 6749 §3.1.2.3): the one sent, compared as an exact string
/// with the registered ones, or, when none was sent, the client's only registered one.
fn resolve_redirect_uri(client: &Client, sent: Option<&str>) -> Result<RedirectUri, ShowReason> {
    match sent {
        Some(sent) => {
            let sent = RedirectUri::parse(sent).map_err(|_| ShowReason::MalformedRedirectUri)?;
            if client.redirect_uris.contains(&sent) {
                Ok(sent)
            } else {
                Err(ShowReason::MismatchingRedirectUri)
            }
        }
        None => match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(ShowReason::MissingRedirectUri),
        },
    }
}
