//! Engine tests: the flows end to end over the in-memory store, with a fixed clock and a
//! repeatable generator, so that expiry and rotation are tested without sleeping.

use std::collections::HashMap;
use std::sync::Arc;

use doorward_proto::{ErrorCode, RedirectUri, Secret, TokenResponse};

use crate::authorize::ConsentDecision;
use crate::model::SignedIn;
use crate::request::{AuthorizeError, ShowReason};
use crate::request::{BasicCredentials, TokenRequest};
use crate::testing::{self, FixedClock};
use crate::{ClientSpec, Engine, EngineConfig, Error};

const CALLBACK: &str = "http://localhost:8000/oauth/callback";
const KEY: &str = "python_client@clients";
const SECRET: &str = "dev_secret";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Harness {
    engine: Engine,
    clock: Arc<FixedClock>,
    user: SignedIn,
}

async fn harness() -> Harness {
    harness_with(EngineConfig::default()).await
}

async fn harness_with(config: EngineConfig) -> Harness {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let engine = testing::engine(clock.clone(), config).await;
    for (name, callback, secret) in [
        ("python_client", CALLBACK, SECRET),
        ("other", "http://localhost:8001/cb", "other_secret"),
    ] {
        engine
            .register_client(ClientSpec {
                key: format!("{name}@clients"),
                display_name: name.into(),
                app_uri: "http://localhost:8000".into(),
                redirect_uris: vec![RedirectUri::parse(callback).unwrap()],
                secret: Secret::new(secret),
                policy: Default::default(),
            })
            .await
            .unwrap();
    }
    engine
        .seed_user(&testing::user("alice", "Alice", "pw"))
        .await
        .unwrap();
    let (_, user) = engine.sign_in("alice", &Secret::new("pw")).await.unwrap();
    Harness {
        engine,
        clock,
        user,
    }
}

fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

impl Harness {
    /// Authorizes (approving consent) and returns the code.
    async fn code(&self, extra: &[(&str, &str)]) -> String {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", KEY),
            ("redirect_uri", CALLBACK),
            ("state", "s"),
        ];
        query.extend_from_slice(extra);
        let request = self
            .engine
            .check_authorization(&pairs(&query))
            .await
            .unwrap();
        let location = self.engine.approve(&self.user, &request).await.unwrap();
        query_param(&location, "code").unwrap()
    }

    async fn token(&self, params: &[(&str, &str)]) -> Result<TokenResponse, Error> {
        self.engine
            .token(&TokenRequest {
                params: params
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect::<HashMap<_, _>>(),
                basic: Some(BasicCredentials {
                    id: KEY.into(),
                    secret: Secret::new(SECRET),
                }),
            })
            .await
    }

    async fn redeem(&self, code: &str) -> Result<TokenResponse, Error> {
        self.token(&[("grant_type", "authorization_code"), ("code", code)])
            .await
    }

    async fn refresh(&self, token: &str) -> Result<TokenResponse, Error> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .await
    }

    async fn token_works(&self, token: &str) -> bool {
        self.engine.check_access_token(token).await.is_ok()
    }
}

fn code_of(result: Result<TokenResponse, Error>) -> ErrorCode {
    match result {
        Err(Error::OAuth(e)) => e.code,
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_a_replay_revokes_its_tokens() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let tokens = h.redeem(&code).await.unwrap();
    assert_eq!(tokens.expires_in, 7200);
    assert!(tokens.scope.is_none());
    assert!(h.token_works(&tokens.access_token).await);
    assert_eq!(code_of(h.redeem(&code).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&tokens.access_token).await);
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(code_of(h.refresh(&refresh).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn a_code_expires_after_its_lifetime() {
    let h = harness().await;
    let code = h.code(&[]).await;
    h.clock.advance(60);
    assert_eq!(code_of(h.redeem(&code).await), ErrorCode::InvalidGrant);
    let code = h.code(&[]).await;
    h.clock.advance(59);
    assert!(h.redeem(&code).await.is_ok());
}

#[tokio::test]
async fn access_tokens_expire() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    h.clock.advance(7199);
    assert!(h.token_works(&tokens.access_token).await);
    h.clock.advance(1);
    assert!(!h.token_works(&tokens.access_token).await);
}

#[tokio::test]
async fn a_code_of_another_client_is_refused_without_burning_it() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let other = h
        .engine
        .token(&TokenRequest {
            params: HashMap::from([
                ("grant_type".into(), "authorization_code".into()),
                ("code".into(), code.clone()),
            ]),
            basic: Some(BasicCredentials {
                id: "other@clients".into(),
                secret: Secret::new("other_secret"),
            }),
        })
        .await;
    assert_eq!(code_of(other), ErrorCode::InvalidGrant);
    assert!(h.redeem(&code).await.is_ok());
}

#[tokio::test]
async fn redirect_uri_must_match_when_sent() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let wrong = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:8000/oauth/callback/"),
        ])
        .await;
    assert_eq!(code_of(wrong), ErrorCode::InvalidGrant);
    let code = h.code(&[]).await;
    let right = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ])
        .await;
    assert!(right.is_ok());
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = harness().await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let second = h.refresh(&r1).await.unwrap();
    let r2 = second.refresh_token.clone().unwrap();
    assert_ne!(r1, r2);
    assert!(h.token_works(&second.access_token).await);
    // Replaying the spent r1 after the grace window revokes everything of the family, r2
    // included.
    h.clock.advance(11);
    assert_eq!(code_of(h.refresh(&r1).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&second.access_token).await);
    assert!(!h.token_works(&first.access_token).await);
    assert_eq!(code_of(h.refresh(&r2).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn within_the_grace_window_a_spent_refresh_token_gets_the_same_answer() {
    let h = harness().await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let answer = h.refresh(&r1).await.unwrap();
    h.clock.advance(10);
    let again = h.refresh(&r1).await.unwrap();
    assert_eq!(
        again.access_token, answer.access_token,
        "the same pair, not a second one"
    );
    assert_eq!(again.refresh_token, answer.refresh_token);
    assert!(
        h.token_works(&answer.access_token).await,
        "and nothing was revoked"
    );
    // The new refresh token works once as usual; one second past the window, r1 is a replay.
    h.clock.advance(1);
    assert_eq!(code_of(h.refresh(&r1).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&answer.access_token).await);

    // With the window off, a second presentation is a replay at once.
    let h = harness_with(EngineConfig {
        lifetimes: crate::Lifetimes {
            refresh_grace: 0,
            ..Default::default()
        },
        ..EngineConfig::default()
    })
    .await;
    let first = h.redeem(&h.code(&[]).await).await.unwrap();
    let r1 = first.refresh_token.clone().unwrap();
    let answer = h.refresh(&r1).await.unwrap();
    assert_eq!(code_of(h.refresh(&r1).await), ErrorCode::InvalidGrant);
    assert!(!h.token_works(&answer.access_token).await);
}

#[tokio::test]
async fn refresh_cannot_widen_the_scope() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[("scope", "base")]).await).await.unwrap();
    let wider = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
            ("scope", "base admin"),
        ])
        .await;
    assert_eq!(code_of(wider), ErrorCode::InvalidScope);
}

#[tokio::test]
async fn a_narrower_refresh_keeps_the_grant_scope_for_the_next_refresh() {
    let h = harness_with(EngineConfig {
        scopes: doorward_proto::ScopeSet::parse("base profile").unwrap(),
        ..EngineConfig::default()
    })
    .await;
    let tokens = h
        .redeem(&h.code(&[("scope", "base profile")]).await)
        .await
        .unwrap();
    let narrow = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
            ("scope", "base"),
        ])
        .await
        .unwrap();
    let info = h
        .engine
        .check_access_token(&narrow.access_token)
        .await
        .unwrap();
    assert_eq!(info.scopes.to_string(), "base");
    let again = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", narrow.refresh_token.as_deref().unwrap()),
            ("scope", "profile"),
        ])
        .await
        .unwrap();
    let info = h
        .engine
        .check_access_token(&again.access_token)
        .await
        .unwrap();
    assert_eq!(info.scopes.to_string(), "profile");
}

#[tokio::test]
async fn revoking_an_app_spends_its_outstanding_codes() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let client = Engine::client_id_for_key(KEY);
    h.engine
        .revoke_client(h.user.user.id, client)
        .await
        .unwrap();
    assert_eq!(code_of(h.redeem(&code).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn expired_rows_are_purged() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    assert_eq!(h.engine.purge_expired().await.unwrap(), 0);
    h.clock.advance(31 * 24 * 3600);
    // The session, the spent code, the access token and the refresh token.
    assert_eq!(h.engine.purge_expired().await.unwrap(), 4);
    assert!(!h.token_works(&tokens.access_token).await);
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    h.clock.advance(30 * 24 * 3600);
    assert_eq!(
        code_of(h.refresh(tokens.refresh_token.as_deref().unwrap()).await),
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn pkce_s256_is_verified() {
    let h = harness().await;
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = h.code(&pkce).await;
    let missing = h.redeem(&code).await;
    assert_eq!(code_of(missing), ErrorCode::InvalidGrant);

    let code = h.code(&pkce).await;
    let wrong_verifier = "x".repeat(43);
    let wrong = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &wrong_verifier),
        ])
        .await;
    assert_eq!(code_of(wrong), ErrorCode::InvalidGrant);

    let code = h.code(&pkce).await;
    let right = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert!(right.is_ok());
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_a_downgrade() {
    let h = harness().await;
    let code = h.code(&[]).await;
    let result = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(code_of(result), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn plain_pkce_is_refused_unless_configured() {
    let h = harness().await;
    let challenge = "a".repeat(43);
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", KEY),
        ("code_challenge", &challenge),
        ("code_challenge_method", "plain"),
    ]);
    match h.engine.check_authorization(&query).await {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequest)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn authorization_errors_are_shown_or_redirected() {
    let h = harness().await;
    let show = |query: &[(&str, &str)]| {
        let query = pairs(query);
        let engine = &h.engine;
        async move {
            match engine.check_authorization(&query).await {
                Err(AuthorizeError::Show(reason)) => reason,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        show(&[("response_type", "code")]).await,
        ShowReason::MissingClientId
    );
    assert_eq!(
        show(&[("client_id", "nope@clients")]).await,
        ShowReason::UnknownClient
    );
    assert_eq!(
        show(&[("client_id", KEY), ("redirect_uri", "http://evil/cb")]).await,
        ShowReason::MismatchingRedirectUri
    );
    assert_eq!(
        show(&[
            ("client_id", KEY),
            ("redirect_uri", "http://localhost:8000/oauth/callback/")
        ])
        .await,
        ShowReason::MismatchingRedirectUri
    );
    assert_eq!(
        show(&[("client_id", KEY), ("client_id", KEY)]).await,
        ShowReason::RepeatedParameter
    );

    let redirect = |query: &[(&str, &str)]| {
        let query = pairs(query);
        let engine = &h.engine;
        async move {
            match engine.check_authorization(&query).await {
                Err(AuthorizeError::Redirect {
                    error,
                    state,
                    redirect_uri,
                    ..
                }) => {
                    assert_eq!(redirect_uri.as_str(), CALLBACK);
                    (error.code, state.map(|s| s.as_str().to_owned()))
                }
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        redirect(&[("client_id", KEY), ("state", "x")]).await,
        (ErrorCode::InvalidRequest, Some("x".into()))
    );
    assert_eq!(
        redirect(&[("client_id", KEY), ("response_type", "token")]).await,
        (ErrorCode::UnsupportedResponseType, None)
    );
    assert_eq!(
        redirect(&[
            ("client_id", KEY),
            ("response_type", "code"),
            ("scope", "openid admin")
        ])
        .await,
        (ErrorCode::InvalidScope, None)
    );
    assert_eq!(
        redirect(&[
            ("client_id", KEY),
            ("response_type", "code"),
            ("state", "a"),
            ("state", "b")
        ])
        .await,
        (ErrorCode::InvalidRequest, Some("a".into()))
    );
}

#[tokio::test]
async fn consent_is_remembered_and_revocable() {
    let h = harness().await;
    let query = pairs(&[("response_type", "code"), ("client_id", KEY)]);
    let request = h.engine.check_authorization(&query).await.unwrap();
    assert!(matches!(
        h.engine.decide(&h.user, &request).await.unwrap(),
        ConsentDecision::AskConsent
    ));
    let location = h.engine.approve(&h.user, &request).await.unwrap();
    let tokens = h
        .redeem(&query_param(&location, "code").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        h.engine.decide(&h.user, &request).await.unwrap(),
        ConsentDecision::Redirect(_)
    ));

    let apps = h.engine.approved_clients(h.user.user.id).await.unwrap();
    assert_eq!(apps.len(), 1);
    h.engine
        .revoke_client(h.user.user.id, request.client.id)
        .await
        .unwrap();
    assert!(matches!(
        h.engine.decide(&h.user, &request).await.unwrap(),
        ConsentDecision::AskConsent
    ));
    assert!(!h.token_works(&tokens.access_token).await);
}

#[tokio::test]
async fn client_authentication_methods() {
    let h = harness().await;
    let request = |params: &[(&str, &str)], basic: Option<(&str, &str)>| TokenRequest {
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        basic: basic.map(|(id, secret)| BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
    };
    let grant = ("grant_type", "password");
    let outcome = |r: Result<TokenResponse, Error>| code_of(r);
    // Authenticated, then the grant type is refused: authentication passed.
    let ok_basic = h
        .engine
        .token(&request(&[grant], Some((KEY, SECRET))))
        .await;
    assert_eq!(outcome(ok_basic), ErrorCode::UnsupportedGrantType);
    let encoded = h
        .engine
        .token(&request(
            &[grant],
            Some(("python_client%40clients", "dev_secret")),
        ))
        .await;
    assert_eq!(outcome(encoded), ErrorCode::UnsupportedGrantType);
    let post = h
        .engine
        .token(&request(
            &[grant, ("client_id", KEY), ("client_secret", SECRET)],
            None,
        ))
        .await;
    assert_eq!(outcome(post), ErrorCode::UnsupportedGrantType);
    let by_id = Engine::client_id_for_key(KEY).to_string();
    let uuid = h
        .engine
        .token(&request(&[grant], Some((&by_id, SECRET))))
        .await;
    assert_eq!(outcome(uuid), ErrorCode::UnsupportedGrantType);

    let wrong = h
        .engine
        .token(&request(&[grant], Some((KEY, "nope"))))
        .await;
    assert_eq!(outcome(wrong), ErrorCode::InvalidClient);
    // Wrong again once the right secret is cached: still refused.
    let wrong = h
        .engine
        .token(&request(&[grant], Some((KEY, "nope"))))
        .await;
    assert_eq!(outcome(wrong), ErrorCode::InvalidClient);
    let unknown = h
        .engine
        .token(&request(&[grant], Some(("nope@clients", SECRET))))
        .await;
    assert_eq!(outcome(unknown), ErrorCode::InvalidClient);
    let none = h.engine.token(&request(&[grant], None)).await;
    assert_eq!(outcome(none), ErrorCode::InvalidClient);
    let both = h
        .engine
        .token(&request(
            &[grant, ("client_secret", SECRET)],
            Some((KEY, SECRET)),
        ))
        .await;
    assert_eq!(outcome(both), ErrorCode::InvalidRequest);
    let mismatch = h
        .engine
        .token(&request(
            &[grant, ("client_id", "other@clients")],
            Some((KEY, SECRET)),
        ))
        .await;
    assert_eq!(outcome(mismatch), ErrorCode::InvalidRequest);
    let missing_grant = h.engine.token(&request(&[], Some((KEY, SECRET)))).await;
    assert_eq!(outcome(missing_grant), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn sign_in_does_not_say_which_part_was_wrong() {
    let h = harness().await;
    let wrong_password = h.engine.sign_in("alice", &Secret::new("nope")).await;
    let wrong_user = h.engine.sign_in("mallory", &Secret::new("pw")).await;
    assert!(matches!(
        wrong_password,
        Err(crate::session::SignInError::InvalidCredentials)
    ));
    assert!(matches!(
        wrong_user,
        Err(crate::session::SignInError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn sessions_expire_and_end_at_sign_out() {
    let h = harness().await;
    let (cookie, _) = h.engine.sign_in("alice", &Secret::new("pw")).await.unwrap();
    assert!(h.engine.session(&cookie).await.unwrap().is_some());
    h.engine.sign_out(&cookie).await.unwrap();
    assert!(h.engine.session(&cookie).await.unwrap().is_none());
    let (cookie, _) = h.engine.sign_in("alice", &Secret::new("pw")).await.unwrap();
    h.clock.advance(14 * 24 * 3600);
    assert!(h.engine.session(&cookie).await.unwrap().is_none());
}

#[tokio::test]
async fn csrf_tokens_belong_to_their_cookie() {
    let h = harness().await;
    let cookie = h.engine.new_csrf_cookie();
    let token = h.engine.csrf_token(&cookie, None);
    assert!(h.engine.verify_csrf(Some(&cookie), None, Some(&token)));
    let other = h.engine.new_csrf_cookie();
    assert!(!h.engine.verify_csrf(Some(&other), None, Some(&token)));
    assert!(!h.engine.verify_csrf(None, None, Some(&token)));
    assert!(!h.engine.verify_csrf(Some(&cookie), None, None));
    assert!(!h.engine.verify_csrf(Some(&cookie), None, Some(&cookie)));
    // Bound to the session: a token minted with another session does not pass.
    let signed_in = h.engine.csrf_token(&cookie, Some("dws_victim"));
    assert!(h
        .engine
        .verify_csrf(Some(&cookie), Some("dws_victim"), Some(&signed_in)));
    assert!(!h
        .engine
        .verify_csrf(Some(&cookie), Some("dws_victim"), Some(&token)));
    let attacker = h.engine.csrf_token(&cookie, Some("dws_attacker"));
    assert!(!h
        .engine
        .verify_csrf(Some(&cookie), Some("dws_victim"), Some(&attacker)));
}

// --- OpenID Connect -------------------------------------------------------------------------

fn claims_of(h: &Harness, id_token: &str) -> serde_json::Value {
    h.engine
        .verify_own_jws::<serde_json::Value>(id_token, false)
        .expect("the ID token verifies with the published keys")
}

#[tokio::test]
async fn id_tokens_carry_the_claims_of_their_scopes() {
    let h = harness().await;
    let code = h
        .code(&[("scope", "openid profile email"), ("nonce", "n-0S6")])
        .await;
    let tokens = h.redeem(&code).await.unwrap();
    let id_token = tokens
        .id_token
        .as_deref()
        .expect("openid asked: an ID token");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "OIDC's default");
    let claims = claims_of(&h, id_token);
    let now = h.engine.now();
    assert_eq!(claims["iss"], "http://localhost");
    assert_eq!(
        claims["aud"], KEY,
        "the client_id the client authenticated with"
    );
    assert_eq!(claims["sub"], h.user.user.id.to_string());
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["auth_time"], h.user.session.created_at);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(
        claims["at_hash"],
        doorward_proto::at_hash("RS256", &tokens.access_token)
    );
    assert!(claims.get("azp").is_none(), "one audience: no azp");

    // Refresh (OIDC Core §12.2): a new ID token, same user and auth_time, no nonce.
    h.clock.advance(100);
    let refreshed = h
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let again = claims_of(&h, refreshed.id_token.as_deref().unwrap());
    assert_eq!(again["sub"], claims["sub"]);
    assert_eq!(again["auth_time"], claims["auth_time"]);
    assert!(again.get("nonce").is_none());

    // openid alone: no profile or email claims; userinfo agrees with the ID token's sub.
    let code = h.code(&[("scope", "openid")]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let claims = claims_of(&h, tokens.id_token.as_deref().unwrap());
    for absent in ["name", "preferred_username", "email", "nonce"] {
        assert!(claims.get(absent).is_none(), "{absent}");
    }
    let info = h.engine.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(info.get("sub"), claims.get("sub"));
    assert_eq!(info.len(), 1);

    // No openid: no ID token, and userinfo refuses the token.
    let code = h.code(&[("scope", "base")]).await;
    let tokens = h.redeem(&code).await.unwrap();
    assert!(tokens.id_token.is_none());
    match h.engine.userinfo(&tokens.access_token).await {
        Err(Error::OAuth(e)) => assert_eq!(e.code, ErrorCode::InsufficientScope),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn prompt_max_age_and_hints_decide_the_interaction() {
    use crate::request::Interaction;
    let h = harness().await;
    let request = |extra: &[(&str, &str)]| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", KEY),
            ("scope", "openid"),
            ("state", "s"),
        ];
        query.extend_from_slice(extra);
        let query = pairs(&query);
        let engine = &h.engine;
        async move { engine.check_authorization(&query).await }
    };
    let error_of = |interaction: Interaction| match interaction {
        Interaction::Redirect(location) => {
            assert_eq!(
                query_param(&location, "iss").as_deref(),
                Some("http://localhost")
            );
            query_param(&location, "error").unwrap_or_default()
        }
        other => panic!("{other:?}"),
    };

    let none = request(&[("prompt", "none")]).await.unwrap();
    let proceed = h.engine.proceed(&none, None).await.unwrap();
    assert_eq!(error_of(proceed), "login_required");
    let proceed = h.engine.proceed(&none, Some(&h.user)).await.unwrap();
    assert_eq!(error_of(proceed), "consent_required");

    let plain = request(&[]).await.unwrap();
    assert!(matches!(
        h.engine.proceed(&plain, None).await.unwrap(),
        Interaction::Login { hint: None }
    ));
    assert!(matches!(
        h.engine.proceed(&plain, Some(&h.user)).await.unwrap(),
        Interaction::Consent
    ));
    h.engine.approve(&h.user, &plain).await.unwrap();
    assert!(matches!(
        h.engine.proceed(&plain, Some(&h.user)).await.unwrap(),
        Interaction::Redirect(_)
    ));
    let proceed = h.engine.proceed(&none, Some(&h.user)).await.unwrap();
    assert!(query_param(
        &match proceed {
            Interaction::Redirect(l) => l,
            other => panic!("{other:?}"),
        },
        "code"
    )
    .is_some());

    for prompt in [
        ("prompt", "login"),
        ("prompt", "select_account"),
        ("max_age", "0"),
    ] {
        let r = request(&[prompt, ("login_hint", "alice")]).await.unwrap();
        match h.engine.proceed(&r, Some(&h.user)).await.unwrap() {
            Interaction::Login { hint } => assert_eq!(hint.as_deref(), Some("alice")),
            other => panic!("{prompt:?}: {other:?}"),
        }
    }
    let consent = request(&[("prompt", "consent")]).await.unwrap();
    assert!(matches!(
        h.engine.proceed(&consent, Some(&h.user)).await.unwrap(),
        Interaction::Consent
    ));
    h.clock.advance(500);
    let fresh_enough = request(&[("max_age", "600")]).await.unwrap();
    assert!(matches!(
        h.engine
            .proceed(&fresh_enough, Some(&h.user))
            .await
            .unwrap(),
        Interaction::Redirect(_)
    ));
    let too_old = request(&[("max_age", "100"), ("prompt", "none")])
        .await
        .unwrap();
    let proceed = h.engine.proceed(&too_old, Some(&h.user)).await.unwrap();
    assert_eq!(error_of(proceed), "login_required");

    for bad in [
        &[("prompt", "none login")][..],
        &[("prompt", "sometimes")][..],
        &[("max_age", "-1")][..],
        &[("max_age", "soon")][..],
        &[("id_token_hint", "not.a.jwt")][..],
    ] {
        match request(bad).await {
            Err(AuthorizeError::Redirect { error, .. }) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest, "{bad:?}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }

    // An ID token of this server names its user; one of another user asks for a sign-in.
    let code = h.code(&[("scope", "openid")]).await;
    let id_token = h.redeem(&code).await.unwrap().id_token.unwrap();
    let hinted = request(&[("id_token_hint", &id_token), ("prompt", "none")])
        .await
        .unwrap();
    assert!(matches!(
        h.engine.proceed(&hinted, Some(&h.user)).await.unwrap(),
        Interaction::Redirect(l) if query_param(&l, "code").is_some()
    ));
    let mut other = h.user.clone();
    other.user.id = uuid::Uuid::nil();
    assert_eq!(
        error_of(h.engine.proceed(&hinted, Some(&other)).await.unwrap()),
        "login_required"
    );
    // An expired ID token still names its user: as a hint it is accepted (as RP-Initiated
    // Logout §2 says for logout), it only says who, never grants anything.
    h.clock.advance(4000);
    let expired = request(&[("id_token_hint", &id_token), ("prompt", "none")])
        .await
        .unwrap();
    assert_eq!(
        expired.hinted_subject.as_deref(),
        Some(h.user.user.id.to_string().as_str())
    );
}

#[tokio::test]
async fn staged_rotation_publishes_before_signing_and_keeps_until_expiry() {
    use crate::config::KeyPolicy;
    use crate::jose::SigningAlg;
    use crate::keys::KeyStage;
    let publish_delay = 100;
    let config = EngineConfig {
        keys: KeyPolicy {
            algorithms: vec![SigningAlg::Es256],
            publish_delay,
            rotation_period: 1000,
        },
        lifetimes: crate::Lifetimes {
            id_token: 50,
            access_token: 60,
            ..Default::default()
        },
        ..EngineConfig::default()
    };
    let h = harness_with(config).await;
    let signer = |h: &Harness| {
        let token = h
            .engine
            .sign_jws(SigningAlg::Es256, None, &serde_json::json!({"sub": "x"}))
            .unwrap();
        jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
    };
    let published = |h: &Harness| -> Vec<String> {
        h.engine
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let first = signer(&h);
    assert_eq!(
        published(&h),
        std::slice::from_ref(&first),
        "first start: one key, signing"
    );

    // Walk 5000 s in 7 s steps with scheduled rotations and one on demand. At every step the
    // signing key has been published for the publish delay (except the very first), and a key
    // stays published for at least the longest token lifetime after its last signature.
    let mut first_seen: HashMap<String, i64> = HashMap::new();
    let mut first_signed: HashMap<String, i64> = HashMap::new();
    let mut last_signed: HashMap<String, i64> = HashMap::new();
    let mut last_published: HashMap<String, i64> = HashMap::new();
    let start = h.engine.now();
    for step in 0..715 {
        if step == 300 {
            let pending = h.engine.rotate_key(SigningAlg::Es256).await.unwrap();
            assert_eq!(pending.stage, KeyStage::Next);
        }
        h.engine.maintain_keys().await.unwrap();
        let now = h.engine.now();
        for kid in published(&h) {
            first_seen.entry(kid.clone()).or_insert(now);
            last_published.insert(kid, now);
        }
        let kid = signer(&h);
        first_signed.entry(kid.clone()).or_insert(now);
        last_signed.insert(kid, now);
        h.clock.advance(7);
    }
    assert!(first_signed.len() >= 5, "{first_signed:?}");
    for (kid, signed) in &first_signed {
        if *kid != first {
            assert!(
                signed - first_seen[kid] >= publish_delay - 7,
                "{kid} signed {} s after being published",
                signed - first_seen[kid]
            );
        }
    }
    let end = h.engine.now() - 7;
    for (kid, last) in &last_signed {
        if last_published[kid] < end {
            assert!(
                last_published[kid] - last >= 60,
                "{kid} removed {} s after its last signature",
                last_published[kid] - last
            );
        }
    }
    assert!(
        h.engine.jwks().keys.len() <= 3,
        "removed keys leave the JWKS"
    );
    assert!(start < end);
}

#[tokio::test]
async fn a_reauthentication_is_proven_by_a_newer_session_not_by_the_return_url() {
    use crate::authorize::REAUTH_PARAM;
    use crate::request::Interaction;
    let h = harness().await;
    let original = pairs(&[
        ("response_type", "code"),
        ("client_id", KEY),
        ("scope", "openid"),
        ("state", "s"),
        ("prompt", "login"),
    ]);
    let request = h.engine.check_authorization(&original).await.unwrap();
    h.engine.approve(&h.user, &request).await.unwrap();
    assert!(matches!(
        h.engine.proceed(&request, Some(&h.user)).await.unwrap(),
        Interaction::Login { .. }
    ));

    // The sign-in page returns to the request with a marker of when the sign-in started.
    h.clock.advance(10);
    let back = url::form_urlencoded::parse(h.engine.reauth_return_query(&original).as_bytes())
        .into_owned()
        .collect::<Vec<_>>();
    assert!(back.iter().any(|(n, _)| n == REAUTH_PARAM));
    let returned = h.engine.check_authorization(&back).await.unwrap();
    assert_eq!(returned.reauthenticated_since, Some(h.engine.now()));
    // Opened by the old session (no new sign-in): still a sign-in, for the page and the form.
    assert!(matches!(
        h.engine.check_sign_in(&returned, &h.user),
        Some(Interaction::Login { .. })
    ));
    // After signing in again: through.
    let (_, fresh) = h.engine.sign_in("alice", &Secret::new("pw")).await.unwrap();
    assert!(h.engine.check_sign_in(&returned, &fresh).is_none());
    assert!(matches!(
        h.engine.proceed(&returned, Some(&fresh)).await.unwrap(),
        Interaction::Redirect(l) if query_param(&l, "code").is_some()
    ));

    // A marker moved to another request, or forged, proves nothing.
    let mut tampered = back.clone();
    for (name, value) in &mut tampered {
        if name == "state" {
            *value = "other".into();
        }
    }
    let moved = h.engine.check_authorization(&tampered).await.unwrap();
    assert_eq!(moved.reauthenticated_since, None);
    let mut forged = original.clone();
    forged.push((REAUTH_PARAM.into(), format!("{}.AAAA", h.engine.now())));
    let forged = h.engine.check_authorization(&forged).await.unwrap();
    assert_eq!(forged.reauthenticated_since, None);
}

#[tokio::test]
async fn introspection_shows_a_client_its_own_tokens_only() {
    use crate::model::ClientPolicy;
    let h = harness().await;
    let code = h.code(&[]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let ask = |id: &str, secret: &str, token: &str| TokenRequest {
        params: [("token".to_owned(), token.to_owned())]
            .into_iter()
            .collect(),
        basic: Some(BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
    };
    let own = h
        .engine
        .introspect(&ask(KEY, SECRET, &tokens.access_token))
        .await
        .unwrap();
    assert!(own.active);
    assert_eq!(own.details["client_id"], KEY);
    for token in [&tokens.access_token, tokens.refresh_token.as_ref().unwrap()] {
        let other = h
            .engine
            .introspect(&ask("other@clients", "other_secret", token))
            .await
            .unwrap();
        assert!(!other.active && other.details.is_empty(), "{other:?}");
    }
    // A client registered as a resource server sees other clients' access tokens, never
    // their refresh tokens.
    h.engine
        .register_client(ClientSpec {
            key: "api@clients".into(),
            display_name: "API".into(),
            app_uri: "http://localhost:9000".into(),
            redirect_uris: vec![RedirectUri::parse("http://localhost:9000/cb").unwrap()],
            secret: Secret::new("api_secret"),
            policy: ClientPolicy {
                resource_server: true,
                ..ClientPolicy::default()
            },
        })
        .await
        .unwrap();
    let api_access = ask("api@clients", "api_secret", &tokens.access_token);
    assert!(h.engine.introspect(&api_access).await.unwrap().active);
    let api_refresh = ask(
        "api@clients",
        "api_secret",
        tokens.refresh_token.as_ref().unwrap(),
    );
    assert!(!h.engine.introspect(&api_refresh).await.unwrap().active);
}
