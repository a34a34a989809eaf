//! Extension grants (RFC 6749 §4.5) and the JWT bearer grant built on them (RFC 7523 §2.1):
//! who may use them, what they issue, and each check of an assertion refusing what it must.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use doorward_proto::{ErrorCode, OAuthError, TokenResponse};
use serde_json::json;

use crate::extension_grant::{ExtensionGrant, ExtensionRequest, Granted, RegisterError, Subject};
use crate::jose::SigningAlg;
use crate::jwt_bearer::{JwtBearerGrant, JWT_BEARER_GRANT};
use crate::model::{ClientPolicy, TrustedIssuer};
use crate::request::TokenRequest;
use crate::{Engine, Error};

use super::client_assertions::{
    jwks, key, maced, signed, HS_CLIENT, HS_SECRET, PK_CLIENT, TOKEN_URL,
};
use super::support::*;

const TICKET: &str = "https://games.example/grants/ticket";

/// A toy grant: a game server's ticket names a player (`player:NAME`) or the server itself
/// (`server`); the grant takes `email` away from whatever was asked.
struct TicketGrant;

#[async_trait]
impl ExtensionGrant for TicketGrant {
    fn grant_type(&self) -> &str {
        TICKET
    }

    async fn decide(
        &self,
        engine: &Engine,
        request: ExtensionRequest<'_>,
    ) -> Result<Granted, Error> {
        let ticket = request
            .params
            .get("ticket")
            .ok_or_else(|| OAuthError::invalid_request("ticket is missing"))?;
        let subject = match ticket.strip_prefix("player:") {
            Some(name) => {
                let user = engine
                    .store()
                    .find_user_by_username(name)
                    .await?
                    .ok_or_else(|| OAuthError::invalid_grant("no such player"))?;
                Subject::User(user.id)
            }
            None if ticket == "server" => Subject::Client,
            None => return Err(OAuthError::invalid_grant("not a ticket").into()),
        };
        Ok(Granted {
            subject,
            scopes: request.scopes.without("email"),
        })
    }
}

fn with(h: Harness, grant: Arc<dyn ExtensionGrant>) -> Harness {
    Harness {
        engine: h.engine.with_extension_grant(grant).unwrap(),
        ..h
    }
}

async fn allow(h: &Harness, key: &str, policy: impl FnOnce(&mut ClientPolicy)) {
    let mut client =
        std::sync::Arc::unwrap_or_clone(h.engine.find_client(key).await.unwrap().unwrap());
    policy(&mut client.policy);
    h.engine.store().upsert_client(&client).await.unwrap();
}

fn unauthenticated(params: &[(&str, &str)]) -> TokenRequest {
    TokenRequest {
        resources: Vec::new(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        basic: None,
        client_address: None,
        dpop: Default::default(),
    }
}

async fn subject_of(h: &Harness, answer: &TokenResponse) -> Option<String> {
    let info = h
        .engine
        .check_access_token(&answer.access_token)
        .await
        .expect("the token works");
    info.user.map(|u| u.username.clone())
}

#[tokio::test]
async fn an_extension_grant_issues_what_it_decides_within_the_clients_rights() {
    let h = with(harness().await, Arc::new(TicketGrant));
    let ask = |ticket: &'static str, scope: &'static str| {
        let h = &h;
        async move {
            h.token(&[("grant_type", TICKET), ("ticket", ticket), ("scope", scope)])
                .await
        }
    };
    // Not in the client's grant types: unauthorized_client.
    assert_eq!(
        code_of(ask("player:alice", "base").await),
        ErrorCode::UnauthorizedClient
    );
    allow(&h, KEY, |p| p.extension_grants = vec![TICKET.to_owned()]).await;

    let answer = ask("player:alice", "base email").await.unwrap();
    assert_eq!(subject_of(&h, &answer).await.as_deref(), Some("alice"));
    assert_eq!(
        answer.scope.as_deref(),
        Some("base"),
        "narrowed, and said so"
    );
    assert!(answer.refresh_token.is_none() && answer.id_token.is_none());

    // The client itself: no user, and never openid.
    let answer = ask("server", "base openid").await.unwrap();
    assert_eq!(subject_of(&h, &answer).await, None);
    assert_eq!(answer.scope.as_deref(), Some("base"));

    // The grant's own refusal, and the engine's (a scope beyond the client's).
    assert_eq!(
        code_of(ask("forged", "base").await),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(ask("player:nobody", "base").await),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(ask("player:alice", "admin").await),
        ErrorCode::InvalidScope
    );
    // Client authentication still applies: a wrong secret, or none at all.
    let wrong = h
        .engine
        .token(&basic_request(
            KEY,
            "wrong",
            &[("grant_type", TICKET), ("ticket", "server")],
        ))
        .await;
    assert_eq!(code_of(wrong), ErrorCode::InvalidClient);
    let none = h
        .engine
        .token(&unauthenticated(&[
            ("grant_type", TICKET),
            ("ticket", "server"),
        ]))
        .await;
    assert_eq!(code_of(none), ErrorCode::InvalidClient);
    // Metadata lists it.
    assert!(h.engine.supported_grant_types().contains(&TICKET));
}

#[tokio::test]
async fn an_unregistered_extension_grant_is_unsupported_and_bad_names_are_refused() {
    let h = harness().await;
    allow(&h, KEY, |p| p.extension_grants = vec![TICKET.to_owned()]).await;
    assert_eq!(
        code_of(
            h.token(&[("grant_type", TICKET), ("ticket", "server")])
                .await
        ),
        ErrorCode::UnsupportedGrantType
    );

    struct Named(&'static str);
    #[async_trait]
    impl ExtensionGrant for Named {
        fn grant_type(&self) -> &str {
            self.0
        }
        async fn decide(&self, _: &Engine, _: ExtensionRequest<'_>) -> Result<Granted, Error> {
            Err(OAuthError::invalid_grant("no").into())
        }
    }
    let mut engine = h.engine;
    for (name, refused) in [
        ("ticket", "relative"),
        ("/grants/ticket", "relative"),
        ("client_credentials", "built-in"),
        ("urn:ietf:params:oauth:grant-type:device_code", "built-in"),
        (TICKET, "registered"),
        (TICKET, "duplicate"),
    ] {
        let result = engine.add_extension_grant(Arc::new(Named(name)));
        match (refused, result) {
            ("relative", Err(RegisterError::NotAbsoluteUri(_)))
            | ("built-in", Err(RegisterError::BuiltIn(_)))
            | ("registered", Ok(()))
            | ("duplicate", Err(RegisterError::Duplicate(_))) => {}
            (what, other) => panic!("{name}: expected {what}, got {other:?}"),
        }
    }
}

/// The same ES256 JWS with its signature's `s` replaced by `n - s` (P-256's order `n`): a
/// signature of the same bytes that ECDSA verification accepts too.
fn other_ecdsa_signature(jws: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let (signed, signature) = jws.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let s = &mut signature[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut digit = N[i] as i16 - s[i] as i16 - borrow;
        borrow = (digit < 0) as i16;
        if digit < 0 {
            digit += 256;
        }
        s[i] = digit as u8;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn bearer(assertion: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", JWT_BEARER_GRANT.to_owned()),
        ("assertion", assertion.to_owned()),
        ("scope", scope.to_owned()),
    ]
}

fn params<'a>(list: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    list.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn assertion_claims(iss: &str, sub: &str, jti: Option<&str>) -> serde_json::Value {
    let mut claims = json!({
        "iss": iss, "sub": sub, "aud": TOKEN_URL,
        "exp": super::client_assertions::NOW + 60, "iat": super::client_assertions::NOW,
    });
    if let Some(jti) = jti {
        claims["jti"] = json!(jti);
    }
    claims
}

/// RFC 7523 §2.1 with the client's own key: no other client authentication (§3.1), a token
/// for the client; each check of the assertion refusing with `invalid_grant`.
#[tokio::test]
async fn a_client_trades_its_own_assertion_for_a_token() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with(
        super::client_assertions::with_jwt_clients(&pk).await,
        Arc::new(JwtBearerGrant),
    );
    let grant = |assertion: String| {
        let engine = &h.engine;
        async move {
            engine
                .token(&unauthenticated(&params(&bearer(&assertion, "base"))))
                .await
        }
    };
    let own = |jti: Option<&str>| signed(&pk, &assertion_claims(PK_CLIENT, PK_CLIENT, jti));
    // The client must list the grant type.
    assert_eq!(
        code_of(grant(own(Some("a"))).await),
        ErrorCode::InvalidClient
    );
    allow(&h, PK_CLIENT, |p| {
        p.extension_grants = vec![JWT_BEARER_GRANT.to_owned()];
    })
    .await;
    let answer = grant(own(Some("b"))).await.unwrap();
    let info = h
        .engine
        .check_access_token(&answer.access_token)
        .await
        .unwrap();
    assert!(info.user.is_none());
    assert_eq!(info.client.key, PK_CLIENT);
    assert_eq!(answer.scope, None);
    // Once only: by jti, and without one by the assertion's digest.
    assert_eq!(
        code_of(grant(own(Some("b"))).await),
        ErrorCode::InvalidGrant
    );
    let no_jti = own(None);
    assert!(grant(no_jti.clone()).await.is_ok());
    assert_eq!(code_of(grant(no_jti).await), ErrorCode::InvalidGrant);

    // Each check.
    let now = super::client_assertions::NOW;
    let other_key = key(SigningAlg::Es256, 2);
    let mut cases = vec![(
        "another key",
        signed(
            &other_key,
            &assertion_claims(PK_CLIENT, PK_CLIENT, Some("k")),
        ),
    )];
    for (why, field, value) in [
        (
            "another audience",
            "aud",
            json!("https://elsewhere/oauth/token"),
        ),
        ("expired", "exp", json!(now - 60)),
        ("too far ahead", "exp", json!(now + 7200)),
        ("not valid yet", "nbf", json!(now + 600)),
        ("issued in the future", "iat", json!(now + 600)),
        ("an empty jti", "jti", json!("")),
        (
            "a user, from an issuer not trusted with users",
            "sub",
            json!("alice"),
        ),
    ] {
        let mut claims = assertion_claims(PK_CLIENT, PK_CLIENT, Some(why));
        claims[field] = value;
        cases.push((why, signed(&pk, &claims)));
    }
    for (why, assertion) in cases {
        assert_eq!(
            code_of(grant(assertion).await),
            ErrorCode::InvalidGrant,
            "{why}"
        );
    }
    // Not a JWT at all: the client is not known, so it is not authenticated.
    assert_eq!(
        code_of(grant("e30.e30.".to_owned()).await),
        ErrorCode::InvalidClient
    );
    // A client may not use another's assertion, whatever it authenticates with.
    let stolen = own(Some("stolen"));
    let answer = h
        .engine
        .token(&basic_request(
            KEY,
            SECRET,
            &params(&bearer(&stolen, "base")),
        ))
        .await;
    assert_eq!(code_of(answer), ErrorCode::UnauthorizedClient);
    allow(&h, KEY, |p| {
        p.extension_grants = vec![JWT_BEARER_GRANT.to_owned()]
    })
    .await;
    let answer = h
        .engine
        .token(&basic_request(
            KEY,
            SECRET,
            &params(&bearer(&stolen, "base")),
        ))
        .await;
    assert_eq!(code_of(answer), ErrorCode::InvalidGrant);
    // A request object (RFC 9101) is no grant, even unused.
    let mut object = assertion_claims(PK_CLIENT, PK_CLIENT, Some("jar"));
    object["aud"] = json!("http://localhost");
    object["response_type"] = json!("code");
    object["redirect_uri"] = json!(CALLBACK);
    assert_eq!(
        code_of(grant(signed(&pk, &object)).await),
        ErrorCode::InvalidGrant
    );
    // A client assertion spent authenticating the client is spent as a grant too, and the
    // other way round: one namespace.
    let spent = signed(&pk, &assertion_claims(PK_CLIENT, PK_CLIENT, Some("both")));
    let authenticated = h
        .engine
        .token(&super::client_assertions::request(&spent, &[]))
        .await;
    assert_eq!(
        code_of(authenticated),
        ErrorCode::UnsupportedGrantType,
        "authenticated"
    );
    assert_eq!(code_of(grant(spent).await), ErrorCode::InvalidGrant);
    let granted = signed(
        &pk,
        &assertion_claims(PK_CLIENT, PK_CLIENT, Some("grant-first")),
    );
    assert!(grant(granted.clone()).await.is_ok());
    let again = h
        .engine
        .token(&super::client_assertions::request(&granted, &[]))
        .await;
    assert_eq!(code_of(again), ErrorCode::InvalidClient);
    // Without a jti, the same claims with another valid signature (ECDSA's (r, n - s)) are the
    // same assertion: refused.
    let mut claims = assertion_claims(PK_CLIENT, PK_CLIENT, None);
    claims["iat"] = json!(super::client_assertions::NOW - 1);
    let first = signed(&pk, &claims);
    let second = other_ecdsa_signature(&first);
    assert_ne!(first, second);
    // (Such a signature verifies: alone, it is accepted.)
    claims["iat"] = json!(super::client_assertions::NOW - 2);
    assert!(grant(other_ecdsa_signature(&signed(&pk, &claims)))
        .await
        .is_ok());
    assert!(grant(first).await.is_ok());
    assert_eq!(code_of(grant(second).await), ErrorCode::InvalidGrant);
}

/// An issuer the client trusts with users: its assertion names a user by username or id, who
/// gets a token without being asked; the client must authenticate besides.
#[tokio::test]
async fn a_trusted_issuer_speaks_for_users_and_the_client_authenticates() {
    const IDP: &str = "https://idp.example";
    const SET_URI: &str = "https://idp.example/jwks.json";
    let idp = key(SigningAlg::Rs256, 3);
    let fetcher = Arc::new(FakeFetcher::default());
    fetcher.serve(
        SET_URI,
        &serde_json::to_string(&jwks(&[&idp])).unwrap(),
        Some(600),
    );
    let h = with(
        harness_fetching(crate::EngineConfig::default(), fetcher.clone()).await,
        Arc::new(JwtBearerGrant),
    );
    allow(&h, KEY, |p| {
        p.extension_grants = vec![JWT_BEARER_GRANT.to_owned()];
        p.assertion_issuers = vec![
            TrustedIssuer {
                issuer: IDP.to_owned(),
                jwks_uri: Some(url::Url::parse(SET_URI).unwrap()),
                users: true,
                ..TrustedIssuer::default()
            },
            TrustedIssuer {
                issuer: "https://cluster.example".to_owned(),
                jwks: Some(jwks(&[&idp])),
                client_subject: Some("system:serviceaccount:games:scores".to_owned()),
                ..TrustedIssuer::default()
            },
        ];
    })
    .await;
    let alice = h.user.user.id.to_string();
    let by_name = signed(&idp, &assertion_claims(IDP, "alice", Some("1")));
    let answer = h
        .token(&params(&bearer(&by_name, "base openid")))
        .await
        .unwrap();
    assert_eq!(subject_of(&h, &answer).await.as_deref(), Some("alice"));
    assert!(answer.id_token.is_none(), "nobody signed in: no ID token");
    let by_id = signed(&idp, &assertion_claims(IDP, &alice, Some("2")));
    let answer = h.token(&params(&bearer(&by_id, "base"))).await.unwrap();
    assert_eq!(subject_of(&h, &answer).await.as_deref(), Some("alice"));
    // Alice's token is a grant of hers for this client: revoking those ends it.
    let python = h.engine.find_client(KEY).await.unwrap().unwrap();
    h.engine
        .store()
        .revoke_consent(h.user.user.id, python.id, h.engine.now())
        .await
        .unwrap();
    assert!(!h.token_works(&answer.access_token).await);
    assert_eq!(fetcher.count(SET_URI), 1, "the issuer's set is cached");
    // An unknown user; an issuer not trusted; the issuer's assertion without the client's
    // authentication.
    let nobody = signed(&idp, &assertion_claims(IDP, "nobody", Some("3")));
    assert_eq!(
        code_of(h.token(&params(&bearer(&nobody, "base"))).await),
        ErrorCode::InvalidGrant
    );
    let elsewhere = signed(
        &idp,
        &assertion_claims("https://other.example", "alice", Some("4")),
    );
    assert_eq!(
        code_of(h.token(&params(&bearer(&elsewhere, "base"))).await),
        ErrorCode::InvalidGrant
    );
    let bare = signed(&idp, &assertion_claims(IDP, "alice", Some("5")));
    let answer = h
        .engine
        .token(&unauthenticated(&params(&bearer(&bare, "base"))))
        .await;
    assert_eq!(code_of(answer), ErrorCode::InvalidClient);
    // The other client does not trust the issuer.
    allow(&h, "other@clients", |p| {
        p.extension_grants = vec![JWT_BEARER_GRANT.to_owned()];
    })
    .await;
    let answer = h
        .engine
        .token(&basic_request(
            "other@clients",
            "other_secret",
            &params(&bearer(&bare, "base")),
        ))
        .await;
    assert_eq!(code_of(answer), ErrorCode::InvalidGrant);

    // A workload identity: the cluster's service account is the client; users it may not name.
    let workload = signed(
        &idp,
        &assertion_claims(
            "https://cluster.example",
            "system:serviceaccount:games:scores",
            Some("6"),
        ),
    );
    let answer = h.token(&params(&bearer(&workload, "base"))).await.unwrap();
    assert_eq!(subject_of(&h, &answer).await, None);
    let user = signed(
        &idp,
        &assertion_claims("https://cluster.example", "alice", Some("7")),
    );
    assert_eq!(
        code_of(h.token(&params(&bearer(&user, "base"))).await),
        ErrorCode::InvalidGrant
    );

    // A public client trusting the issuer: its client_id alone proves nothing, so the
    // issuer's assertion is not enough.
    let mut spec = crate::testing::client("app@clients", "app", CALLBACK, "unused");
    spec.policy.auth_method = Some(crate::model::AuthMethod::None);
    spec.policy.extension_grants = vec![JWT_BEARER_GRANT.to_owned()];
    spec.policy.assertion_issuers = vec![TrustedIssuer {
        issuer: IDP.to_owned(),
        jwks_uri: Some(url::Url::parse(SET_URI).unwrap()),
        users: true,
        ..TrustedIssuer::default()
    }];
    h.engine.register_client(spec).await.unwrap();
    let bare = signed(&idp, &assertion_claims(IDP, "alice", Some("8")));
    let body = bearer(&bare, "base");
    let mut public = params(&body);
    public.push(("client_id", "app@clients"));
    let answer = h.engine.token(&unauthenticated(&public)).await;
    assert_eq!(code_of(answer), ErrorCode::UnauthorizedClient);
}

/// A `client_secret_jwt` client MACs its own assertions with its secret.
#[tokio::test]
async fn a_client_macs_its_assertion_with_its_secret() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with(
        super::client_assertions::with_jwt_clients(&pk).await,
        Arc::new(JwtBearerGrant),
    );
    allow(&h, HS_CLIENT, |p| {
        p.extension_grants = vec![JWT_BEARER_GRANT.to_owned()];
    })
    .await;
    let claims = assertion_claims(HS_CLIENT, HS_CLIENT, Some("hs"));
    let assertion = maced(HS_SECRET, jsonwebtoken::Algorithm::HS256, &claims);
    let answer = h
        .engine
        .token(&unauthenticated(&params(&bearer(&assertion, ""))))
        .await
        .unwrap();
    assert_eq!(subject_of(&h, &answer).await, None);
    let forged = maced(
        "another secret of at least 32 bytes, for HS256",
        jsonwebtoken::Algorithm::HS256,
        &assertion_claims(HS_CLIENT, HS_CLIENT, Some("forged")),
    );
    let answer = h
        .engine
        .token(&unauthenticated(&params(&bearer(&forged, ""))))
        .await;
    assert_eq!(code_of(answer), ErrorCode::InvalidGrant);
}
