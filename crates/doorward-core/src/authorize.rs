//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2).
//!
//! Past 700 lines, still one idea: the endpoint's checks in their order (the client, a pushed
//! request, the redirect URI, every other parameter), the sign-in conditions of OIDC that it
//! enforces, and the answers it gives.
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

use crate::audit::{kinds, Actor, AuditEvent};
use crate::client_document::LookupError;
use crate::grant::GrantTerms;
use crate::model::{Client, CodeRecord, ConsentRecord, SignedIn, User};
use crate::opaque::{OpaqueKind, TokenHash};
use crate::ports::{StoreError, UnixTime};
use crate::Engine;

use crate::request::{
    error_response, AuthorizationRequest, AuthorizationResponse, AuthorizeError, Checking,
    Interaction, Prompt, ResponseMode, ShowReason,
};

/// The parameter Doorward adds to an authorization request it sends to the sign-in page
/// because of `prompt=login`, `select_account`, `max_age` or `id_token_hint`: `TIME.MAC`, an
/// HMAC of the time and the rest of the request under the server's key. Coming back, a
/// session created at or after TIME satisfies those parameters; an older one does not, so
/// opening the return URL in a browser that did not sign in again gains nothing. The marker
/// holds for [`REAUTH_LIFETIME`] seconds after TIME: replayed later (from the history of a
/// shared browser, say), the request asks for a sign-in again.
pub const REAUTH_PARAM: &str = "dw_reauth";

/// How long a [`REAUTH_PARAM`] marker holds, in seconds: the sign-in page and the consent
/// page must be done within it. It is bounded, not single-use (it is checked without the
/// store): within the window it passes only for a session opened after it was made, and a
/// sign-in ends the browser's previous session.
pub const REAUTH_LIFETIME: i64 = 600;

/// The longest `nonce` accepted (it is stored with the code and echoed in the ID token).
const MAX_NONCE_LEN: usize = 512;

/// What happens to a checked request for a signed-in user.
#[derive(Debug)]
pub enum ConsentDecision {
    /// The user has not approved this client for these scopes yet: ask.
    AskConsent,
    /// Approved before: go back to the client with a code.
    Redirect(AuthorizationResponse),
}

impl Engine {
    /// Checks an authorization request given as its query parameters, in order. A request
    /// that names a `request_uri` is the pushed request it stands for (RFC 9126 §4).
    pub async fn check_authorization(
        &self,
        params: &[(String, String)],
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let reauthenticated_since = params
            .iter()
            .find(|(name, _)| name == REAUTH_PARAM)
            .and_then(|(_, marker)| self.check_reauth_marker(params, marker));
        let params: Vec<&(String, String)> =
            params.iter().filter(|(n, _)| n != REAUTH_PARAM).collect();
        let values = |name: &str| -> Vec<&str> {
            params
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };

        // Stage 1: client and redirect URI; errors are shown, never redirected.
        let (client_ids, request_uris) = (values("client_id"), values("request_uri"));
        if client_ids.len() > 1 || values("redirect_uri").len() > 1 || request_uris.len() > 1 {
            return Err(AuthorizeError::Show(ShowReason::RepeatedParameter));
        }
        let client_id = client_ids
            .first()
            .filter(|s| !s.is_empty())
            .ok_or(AuthorizeError::Show(ShowReason::MissingClientId))?;
        let client = match self.resolve_client(client_id).await {
            Ok(Some(client)) => std::sync::Arc::unwrap_or_clone(client),
            Ok(None) => return Err(AuthorizeError::Show(ShowReason::UnknownClient)),
            Err(LookupError::Store(e)) => return Err(e.into()),
            Err(LookupError::Document(e)) => {
                return Err(AuthorizeError::Show(ShowReason::ClientDocument(
                    e.to_string(),
                )))
            }
        };
        // RFC 9126 §4: the pushed request is the whole request; the query's other parameters
        // are ignored. Its redirect URI is unknown until it is opened, so its errors are shown.
        match request_uris.first() {
            Some(request_uri) if request_uri.starts_with(crate::request::REQUEST_URI_PREFIX) => {
                let pushed = self
                    .open_pushed_request(&client, request_uri)
                    .map_err(AuthorizeError::Show)?;
                let inner: Vec<&(String, String)> = pushed.params.iter().collect();
                self.check_parameters(
                    client,
                    &inner,
                    Checking::Pushed {
                        reauthenticated_since,
                        spend: pushed.spend,
                    },
                )
                .await
            }
            // RFC 9101 §6.3: a request object is the whole request. One that is refused is
            // answered at the query's redirect URI when that one is registered, else shown.
            _ => match values("request").first() {
                Some(object) if request_uris.is_empty() => {
                    match self.open_request_object(&client, object).await? {
                        Ok(inner) => {
                            let refs: Vec<&(String, String)> = inner.iter().collect();
                            let mut request = self
                                .check_parameters(
                                    client,
                                    &refs,
                                    Checking::Front {
                                        reauthenticated_since,
                                    },
                                )
                                .await?;
                            // Verified once, here: the browser goes on with it as a pushed
                            // request, spent once (its `exp` may be a minute away: the sign-in
                            // and consent pages must not outlive it).
                            let (request_uri, spend) = self.seal_request(&request.client, inner);
                            let mut carry = url::form_urlencoded::Serializer::new(String::new());
                            carry.append_pair("client_id", client_id);
                            carry.append_pair("request_uri", &request_uri);
                            request.carry = Some(carry.finish());
                            request.pushed = Some(spend);
                            Ok(request)
                        }
                        Err(why) => {
                            self.check_parameters(client, &params, Checking::RefusedObject(why))
                                .await
                        }
                    }
                }
                _ => {
                    self.check_parameters(
                        client,
                        &params,
                        Checking::Front {
                            reauthenticated_since,
                        },
                    )
                    .await
                }
            },
        }
    }

    /// Checks the parameters of an authorization request of `client` (already found): its
    /// redirect URI, then everything else.
    pub(crate) async fn check_parameters(
        &self,
        client: Client,
        params: &[&(String, String)],
        checking: Checking,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, value) in params {
            seen.entry(name.as_str()).or_default().push(value.as_str());
        }
        let single = |name: &str| seen.get(name).map(|v| v[0]);
        if seen.get("redirect_uri").is_some_and(|v| v.len() > 1) {
            return Err(AuthorizeError::Show(ShowReason::RepeatedParameter));
        }
        let redirect_uri =
            resolve_redirect_uri(&client, single("redirect_uri")).map_err(AuthorizeError::Show)?;

        // Stage 2: everything else; errors go back to the client.
        let state = single("state").map(State::new);
        // The implicit grant answers in the fragment, errors included (RFC 6749 §4.2.2.1); it
        // needs the server's switch and the client's.
        let implicit = self.config.grants.insecure_implicit
            && client.policy.insecure_implicit
            && single("response_type") == Some("token");
        // OAuth 2.0 Multiple Response Types §2.1 and §5, Form Post Response Mode §2: a code is
        // answered in the query unless the request asks for the fragment or `form_post`; the
        // implicit grant's token in the fragment or `form_post`, never in the query. An unknown
        // or forbidden mode is refused, not ignored: the client would wait for an answer where
        // none comes. That error goes where the response type's default mode puts it.
        let default_mode = if implicit {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        };
        let requested_mode = match single("response_mode") {
            None => Ok(default_mode),
            Some(mode) => match ResponseMode::parse(mode) {
                Some(ResponseMode::Query) if implicit => Err(mode),
                Some(known) => Ok(known),
                None => Err(mode),
            },
        };
        let response_mode = requested_mode.unwrap_or(default_mode);
        // RFC 9700 §4.11.2: the errors of a client no operator registered are shown, never
        // redirected to a URI its registrant chose (see `ShowReason::UnverifiedClientError`).
        // At the pushed-request endpoint every error is the endpoint's own answer.
        let verified = client.is_verified() || matches!(checking, Checking::Pushing);
        let fail = |error: OAuthError| {
            if !verified {
                return AuthorizeError::Show(ShowReason::UnverifiedClientError(format!(
                    "{}: {}",
                    error.code.as_str(),
                    error.description
                )));
            }
            AuthorizeError::Redirect {
                response: error_response(
                    &redirect_uri,
                    &error,
                    state.as_ref(),
                    &self.config.issuer,
                    response_mode,
                ),
                redirect_uri: redirect_uri.clone(),
                error,
                state: state.clone(),
            }
        };
        if let Err(mode) = requested_mode {
            return Err(fail(OAuthError::invalid_request(format!(
                "response_mode {} is not supported for this response_type (supported: {})",
                doorward_proto::parameter_for_description(mode),
                if implicit {
                    "fragment, form_post"
                } else {
                    "query, fragment, form_post"
                },
            ))));
        }
        if let Checking::RefusedObject(why) = checking {
            return Err(fail(OAuthError::new(
                ErrorCode::InvalidRequestObject,
                format!("the request object is refused: {why} (RFC 9101)"),
            )));
        }
        // `resource` may be repeated (RFC 8707 §2); no other parameter may.
        if let Some((name, _)) = seen
            .iter()
            .find(|(name, values)| values.len() > 1 && **name != "resource")
        {
            return Err(fail(OAuthError::invalid_request(format!(
                "the parameter {} is repeated (RFC 6749 section 3.1)",
                doorward_proto::parameter_for_description(name)
            ))));
        }
        // RFC 9101 §4: a request object cannot name another one (the object was opened
        // above); and one beside a `request_uri` is refused rather than one of them ignored.
        if single("request").is_some() {
            return Err(fail(OAuthError::invalid_request(
                "request cannot be sent inside a request object, a pushed request's \
                 request_uri or beside a request_uri",
            )));
        }
        // RFC 9126 §2.1: a pushed request cannot itself name a `request_uri`; at the
        // authorization endpoint only this server's pushed requests are opened (above): a
        // request object by reference is never fetched (OIDC Core §6.2).
        if single("request_uri").is_some() {
            return Err(fail(match checking {
                Checking::Pushing | Checking::Pushed { .. } => OAuthError::invalid_request(
                    "a pushed authorization request cannot contain request_uri",
                ),
                Checking::Front { .. } | Checking::RefusedObject(_) => OAuthError::new(
                    ErrorCode::RequestUriNotSupported,
                    "only the request_uri of a request pushed to this server (RFC 9126) is \
                     accepted",
                ),
            }));
        }
        // RFC 9126 §5: a client (or a server) that requires pushed requests gets no other.
        let must_push =
            self.config.require_pushed_requests || client.policy.require_pushed_requests;
        if must_push && matches!(checking, Checking::Front { .. }) {
            return Err(fail(OAuthError::invalid_request(
                "this client must push its authorization requests to the \
                 pushed_authorization_request_endpoint (RFC 9126)",
            )));
        }
        match single("response_type") {
            None | Some("") => {
                return Err(fail(OAuthError::invalid_request(
                    "the response_type parameter is missing",
                )))
            }
            Some("code") if self.config.grants.authorization_code => {
                // A client registered for other grants only (`client_credentials`).
                if !client
                    .policy
                    .allows_grant(crate::model::GrantType::AuthorizationCode)
                {
                    return Err(fail(OAuthError::new(
                        ErrorCode::UnauthorizedClient,
                        "this client may not use the authorization_code grant",
                    )));
                }
            }
            Some("token") if implicit => {}
            Some(_) => {
                return Err(fail(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    if self.config.grants.authorization_code {
                        "only response_type=code is supported"
                    } else {
                        "the authorization-code grant is not enabled on this server"
                    },
                )))
            }
        }
        let (scopes, scope_requested) = self
            .requested_scopes(&client, single("scope"))
            .map_err(fail)?;
        let resources = crate::resource_indicators::requested(
            &self.config,
            &client,
            seen.get("resource").map_or(&[][..], Vec::as_slice),
        )
        .map_err(fail)?;
        // PKCE binds a code to its redemption; the implicit grant has none.
        let challenge = if implicit {
            None
        } else {
            let challenge = self
                .requested_challenge(single("code_challenge"), single("code_challenge_method"))
                .map_err(fail)?;
            self.check_pkce_required(&client, challenge.as_ref())
                .map_err(fail)?;
            challenge
        };
        let nonce = match single("nonce") {
            Some(n) if n.len() > MAX_NONCE_LEN => {
                return Err(fail(OAuthError::invalid_request(format!(
                    "nonce is longer than {MAX_NONCE_LEN} characters"
                ))))
            }
            Some("") | None => None,
            Some(n) => Some(n.to_owned()),
        };
        // RFC 9449 §10: the code is bound to this DPoP key; its redemption must prove it.
        let dpop_jkt = match single("dpop_jkt") {
            _ if !self.config.dpop.enabled || implicit => None,
            None | Some("") => None,
            Some(jkt) if crate::dpop::is_thumbprint(jkt) => Some(jkt.to_owned()),
            Some(_) => {
                return Err(fail(OAuthError::invalid_request(
                    "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK (RFC 7638)",
                )))
            }
        };
        let prompt = Prompt::parse(single("prompt").unwrap_or("")).map_err(fail)?;
        if prompt.none && !verified {
            // Its answers (login_required, consent_required) would be redirects: refused.
            return Err(fail(OAuthError::invalid_request(
                "prompt=none is not offered to an unverified application",
            )));
        }
        let max_age = match single("max_age") {
            None | Some("") => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                fail(OAuthError::invalid_request(
                    "max_age must be a non-negative number of seconds",
                ))
            })?),
        };
        let hinted_subject = match single("id_token_hint").filter(|h| !h.is_empty()) {
            None => None,
            Some(hint) => Some(self.hinted_subject(hint).map_err(|e| {
                fail(OAuthError::invalid_request(format!(
                    "id_token_hint is not an ID token of this server: {e}"
                )))
            })?),
        };
        Ok(AuthorizationRequest {
            implicit,
            client,
            redirect_uri,
            scopes,
            scope_requested,
            state,
            challenge,
            nonce,
            prompt,
            max_age,
            acr_values: single("acr_values")
                .filter(|v| !v.is_empty() && v.len() <= 512)
                .map(str::to_owned),
            login_hint: single("login_hint")
                .filter(|h| !h.is_empty() && h.len() <= 256)
                .map(str::to_owned),
            hinted_subject,
            reauthenticated_since: checking.reauthenticated_since(),
            resources,
            response_mode,
            pushed: checking.spend(),
            carry: None,
            dpop_jkt,
        })
    }

    /// The `sub` an `id_token_hint` names (OIDC Core §3.1.2.1): it must be an ID token of
    /// this server, expired or not. One whose key this server no longer has (rotated out) or
    /// never had (no or an unknown `kid`) cannot be verified, so its `sub` is taken unverified
    /// when its `iss` is this server: a hinted subject only ever refuses a signed-in user who
    /// is someone else (`login_required` under `prompt=none`, OIDC Core §3.1.2.6), it never
    /// stands for a user, so an unverified one restricts and cannot vouch. A forged hint
    /// naming another user therefore gets no code for the signed-in one.
    fn hinted_subject(&self, hint: &str) -> Result<String, crate::jose::JwsError> {
        use crate::jose::JwsError;
        match self.verify_own_jws::<HintClaims>(hint, true) {
            Ok(claims) => Ok(claims.sub),
            Err(JwsError::UnknownKey) => {
                let claims: UnverifiedHint = crate::jose::unverified_claims(hint)?;
                if claims.iss != self.config.issuer {
                    return Err(JwsError::WrongIssuer);
                }
                Ok(claims.sub)
            }
            Err(e) => Err(e),
        }
    }

    /// The request without [`REAUTH_PARAM`], as the MAC covers it.
    fn canonical_request(params: &[(String, String)]) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params.iter().filter(|(n, _)| n != REAUTH_PARAM) {
            serializer.append_pair(name, value);
        }
        serializer.finish()
    }

    fn reauth_mac(&self, time: UnixTime, canonical: &str) -> [u8; 32] {
        use hmac::Mac;
        // Invariant: HMAC accepts keys of any length.
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(b"doorward-reauth:");
        mac.update(time.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(canonical.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The authorization request to return to after a sign-in that starts now: the same
    /// parameters and a fresh [`REAUTH_PARAM`]. Returns the query string.
    pub fn reauth_return_query(&self, params: &[(String, String)]) -> String {
        use base64::Engine as _;
        let canonical = Self::canonical_request(params);
        let now = self.now();
        let mac = self.reauth_mac(now, &canonical);
        let marker = format!(
            "{now}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
        );
        let mut serializer = url::form_urlencoded::Serializer::new(canonical);
        serializer.append_pair(REAUTH_PARAM, &marker);
        serializer.finish()
    }

    fn check_reauth_marker(&self, params: &[(String, String)], marker: &str) -> Option<UnixTime> {
        use base64::Engine as _;
        let (time, mac) = marker.split_once('.')?;
        let time: UnixTime = time.parse().ok()?;
        let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(mac)
            .ok()?;
        let expected = self.reauth_mac(time, &Self::canonical_request(params));
        let now = self.now();
        // A little ahead is another instance's clock; too old is a replay.
        let current = time <= now + 60 && now - time <= REAUTH_LIFETIME;
        (doorward_proto::constant_time_eq(&expected, &mac) && current).then_some(time)
    }

    /// Whether the signed-in `user` satisfies the request's demands on the sign-in itself
    /// (OIDC Core §3.1.2.1: `prompt=login`/`select_account`, `max_age`, `id_token_hint`).
    /// `None`: it does; else what to do instead. The consent form's `POST` asks this too.
    pub fn check_sign_in(
        &self,
        request: &AuthorizationRequest,
        user: &SignedIn,
    ) -> Option<Interaction> {
        let fresh = request
            .reauthenticated_since
            .is_some_and(|since| user.session.created_at >= since);
        let login = || Interaction::Login {
            hint: request.login_hint.clone(),
        };
        let login_required =
            |why: &str| Interaction::Redirect(request.login_required(why, &self.config.issuer));
        let other_user = request
            .hinted_subject
            .as_ref()
            .is_some_and(|sub| *sub != user.user.id.to_string());
        if other_user {
            // Signed in again and still someone else: tell the client rather than loop.
            return Some(if request.prompt.none || fresh {
                login_required("the signed-in user is not the one of id_token_hint")
            } else {
                login()
            });
        }
        if fresh {
            return None;
        }
        // `max_age=0` asks for a fresh sign-in, like `prompt=login` (OIDC Core errata 2).
        let too_old = request
            .max_age
            .is_some_and(|max| max == 0 || self.now() - user.session.created_at > max);
        if too_old {
            return Some(if request.prompt.none {
                login_required("the user must sign in again (max_age)")
            } else {
                login()
            });
        }
        if request.prompt.login || request.prompt.select_account {
            return Some(login());
        }
        None
    }

    /// The scopes of a request (RFC 6749 §3.3): those named, each offered by the server and
    /// allowed to the client; none named: the server's defaults the client may have.
    pub(crate) fn requested_scopes(
        &self,
        client: &Client,
        scope: Option<&str>,
    ) -> Result<(ScopeSet, bool), OAuthError> {
        let allowed = self.allowed_scopes(client);
        let requested = ScopeSet::parse(scope.unwrap_or(""))
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        if requested.is_empty() {
            return Ok((self.config.default_scopes.intersection(&allowed), false));
        }
        if !requested.is_subset(&allowed) {
            return Err(OAuthError::invalid_scope(format!(
                "this client may ask only for the scopes: {allowed}"
            )));
        }
        Ok((requested, true))
    }

    /// What the request needs next, given the browser's session (OIDC Core §3.1.2.3 for
    /// `prompt`, `max_age` and `id_token_hint`; §3.1.2.6 for the errors of `prompt=none`).
    pub async fn proceed(
        &self,
        request: &AuthorizationRequest,
        session: Option<&SignedIn>,
    ) -> Result<Interaction, StoreError> {
        let redirect_error = |code: ErrorCode, description: &str| {
            Interaction::Redirect(request.error_response(
                &OAuthError::new(code, description.to_owned()),
                &self.config.issuer,
            ))
        };
        let login = Interaction::Login {
            hint: request.login_hint.clone(),
        };
        let Some(user) = session else {
            return Ok(if request.prompt.none {
                Interaction::Redirect(
                    request.login_required("the user is not signed in", &self.config.issuer),
                )
            } else {
                login
            });
        };
        if let Some(instead) = self.check_sign_in(request, user) {
            return Ok(instead);
        }
        // A step-up (OIDC Core §3.1.2.1 `acr_values`): when the session's sign-in is weaker
        // than asked and the user has a second factor, it is asked for. Without one, or with
        // `prompt=none`, the request goes on and the ID token's `acr` says what was done.
        if let Some(wanted) = &request.acr_values {
            if !request.prompt.none
                && !crate::acr::satisfies(&user.session.amr, wanted)
                && self.second_factors(user.user.id).await?.any()
            {
                return Ok(Interaction::StepUp {
                    pending: self.pending_token(user.user.id, crate::sign_in_error::Purpose::Code),
                });
            }
        }
        match self.decide(user, request).await? {
            ConsentDecision::Redirect(location) => Ok(Interaction::Redirect(location)),
            ConsentDecision::AskConsent if request.prompt.none => Ok(redirect_error(
                ErrorCode::ConsentRequired,
                "the user has not approved this application",
            )),
            ConsentDecision::AskConsent => Ok(Interaction::Consent),
        }
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

    /// Whether PKCE is required of this request and present: for a public client always,
    /// with S256 (RFC 9700 §2.1.1: public clients "MUST use PKCE"; RFC 7636 §4.2: `plain` only
    /// when S256 cannot be used, which a new client has no reason for), for a client with
    /// `require_pkce` or under the server-wide `require_pkce` with any accepted method.
    fn check_pkce_required(
        &self,
        client: &Client,
        challenge: Option<&(CodeChallenge, CodeChallengeMethod)>,
    ) -> Result<(), OAuthError> {
        let public = client.policy.is_public();
        match challenge {
            None if public => Err(OAuthError::invalid_request(
                "a public client must send a PKCE code_challenge (S256)",
            )),
            None if client.policy.require_pkce || self.config.require_pkce => Err(
                OAuthError::invalid_request("PKCE is required: code_challenge is missing"),
            ),
            Some((_, CodeChallengeMethod::Plain)) if public => Err(OAuthError::invalid_request(
                "a public client must use code_challenge_method=S256",
            )),
            _ => Ok(()),
        }
    }

    /// What to do with a checked request for a signed-in user: ask for consent, or issue a
    /// code when the user approved this client for these scopes before.
    pub async fn decide(
        &self,
        user: &SignedIn,
        request: &AuthorizationRequest,
    ) -> Result<ConsentDecision, StoreError> {
        let consent = self
            .store
            .find_consent(user.user.id, request.client.id)
            .await?;
        match consent {
            Some(c) if request.scopes.is_subset(&c.scopes) && !request.prompt.consent => {
                Ok(ConsentDecision::Redirect(
                    self.issue_code(
                        &user.user,
                        user.session.created_at,
                        &user.session.amr,
                        request,
                        &GrantTerms::default(),
                    )
                    .await?,
                ))
            }
            _ => Ok(ConsentDecision::AskConsent),
        }
    }

    /// The user approved: remember it and issue a code. Returns the answer to the client.
    pub async fn approve(
        &self,
        user: &SignedIn,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationResponse, StoreError> {
        self.store
            .record_consent(&ConsentRecord {
                user_id: user.user.id,
                client_id: request.client.id,
                scopes: request.scopes.clone(),
                granted_at: self.now(),
            })
            .await?;
        self.note(
            AuditEvent::new(kinds::CONSENT_GIVEN, Actor::User(user.user.id))
                .user(user.user.id)
                .client(request.client.id)
                .with("scope", request.scopes.to_string()),
        );
        self.issue_code(
            &user.user,
            user.session.created_at,
            &user.session.amr,
            request,
            &GrantTerms::default(),
        )
        .await
    }

    /// A code on the application's terms (`Decision::Grant`): for the scopes it grants, its
    /// data travelling with the grant. No consent is remembered: the terms are the
    /// application's answer to this request, so the next one is asked again (a remembered
    /// consent would issue codes without the terms). Nothing left of the scope asked for is
    /// `access_denied`.
    pub async fn approve_on_terms(
        &self,
        user: &SignedIn,
        request: &AuthorizationRequest,
        terms: &GrantTerms,
    ) -> Result<AuthorizationResponse, StoreError> {
        if terms.granted(&request.scopes).is_empty() && !request.scopes.is_empty() {
            return Ok(request.error_response(
                &OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the application granted none of the scopes asked for",
                ),
                &self.config.issuer,
            ));
        }
        self.issue_code(
            &user.user,
            user.session.created_at,
            &user.session.amr,
            request,
            terms,
        )
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
    ) -> Result<AuthorizationResponse, StoreError> {
        self.issue_code(user, self.now(), &[], request, &GrantTerms::default())
            .await
    }

    /// The user refused: `access_denied` (RFC 6749 §4.1.2.1).
    pub fn deny(&self, request: &AuthorizationRequest) -> AuthorizationResponse {
        request.error_response(
            &OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            &self.config.issuer,
        )
    }

    /// Issues a single-use code bound to the client, the redirect URI and the PKCE challenge
    /// (RFC 6749 §4.1.2, RFC 7636 §4.4) and returns the answer carrying it. A pushed request
    /// is spent first: one used already gets `invalid_request_uri` and no code.
    async fn issue_code(
        &self,
        user: &User,
        auth_time: UnixTime,
        amr: &[String],
        request: &AuthorizationRequest,
        terms: &GrantTerms,
    ) -> Result<AuthorizationResponse, StoreError> {
        if let Some(refused) = self.spend_pushed_request(request).await? {
            return Ok(refused);
        }
        if request.implicit {
            return self.issue_implicit(user, auth_time, amr, request).await;
        }
        let code = self.new_credential(OpaqueKind::AuthorizationCode);
        let now = self.now();
        let scopes = terms.granted(&request.scopes);
        self.store
            .insert_code(&CodeRecord {
                hash: TokenHash::of(&code),
                client_id: request.client.id,
                user_id: user.id,
                redirect_uri: request.redirect_uri.clone(),
                scope_narrowed: scopes != request.scopes,
                scopes,
                scope_requested: request.scope_requested,
                challenge: request.challenge.clone(),
                nonce: request.nonce.clone(),
                family_id: self.new_time_ordered_uuid(),
                auth_time,
                issued_at: now,
                expires_at: now + self.config.lifetimes.code,
                resources: request.resources.clone(),
                dpop_jkt: request.dpop_jkt.clone(),
                grant_data: terms.data.clone(),
                amr: amr.to_vec(),
            })
            .await?;
        Ok(request.success(vec![("code".to_owned(), code)], &self.config.issuer))
    }
}

#[derive(serde::Deserialize)]
struct HintClaims {
    sub: String,
}

/// What is read of a hint whose signature cannot be checked.
#[derive(serde::Deserialize)]
struct UnverifiedHint {
    iss: String,
    sub: String,
}

/// The redirect URI in effect (RFC 6749 §3.1.2.3): the one sent, compared as an exact string
/// with the registered ones, or, when none was sent, the client's only registered one.
fn resolve_redirect_uri(client: &Client, sent: Option<&str>) -> Result<RedirectUri, ShowReason> {
    match sent {
        Some(sent) => {
            let sent = RedirectUri::parse(sent).map_err(|_| ShowReason::MalformedRedirectUri)?;
            if client
                .redirect_uris
                .iter()
                .any(|registered| crate::redirect::matches(registered, &sent))
            {
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
