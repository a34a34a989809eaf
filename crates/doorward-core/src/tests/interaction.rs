//! What the browser is asked (OIDC Core §3.1.2.1): `prompt`, `max_age` and hints, and a
//! re-authentication proven by a newer session.

use doorward_proto::{ErrorCode, Secret};

use crate::request::AuthorizeError;

use super::support::*;

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
    let (_, fresh) = h
        .engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .unwrap();
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
async fn a_reauthentication_marker_expires() {
    use crate::authorize::REAUTH_LIFETIME;
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
    let back = url::form_urlencoded::parse(h.engine.reauth_return_query(&original).as_bytes())
        .into_owned()
        .collect::<Vec<_>>();
    let (_, fresh) = h
        .engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .unwrap();
    // Within its lifetime the return URL passes for the new session…
    h.clock.advance(REAUTH_LIFETIME);
    let returned = h.engine.check_authorization(&back).await.unwrap();
    assert!(h.engine.check_sign_in(&returned, &fresh).is_none());
    // …replayed later (the history of a shared browser), it asks for a sign-in again.
    h.clock.advance(1);
    let replayed = h.engine.check_authorization(&back).await.unwrap();
    assert_eq!(replayed.reauthenticated_since, None);
    assert!(matches!(
        h.engine.proceed(&replayed, Some(&fresh)).await.unwrap(),
        Interaction::Login { .. }
    ));
}

/// A compact JWS that no key of the server signed: `header` and `claims` as given.
fn forged_jws(header: serde_json::Value, claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!("{}.{}.AAAA", b64(header), b64(claims))
}

#[tokio::test]
async fn an_id_token_hint_without_a_known_key_still_refuses_another_user() {
    use crate::request::Interaction;
    use serde_json::json;
    let h = harness().await;
    let request = |hint: String| {
        let query = pairs(&[
            ("response_type", "code"),
            ("client_id", KEY),
            ("scope", "openid"),
            ("state", "s"),
            ("prompt", "none"),
            ("id_token_hint", &hint),
        ]);
        let engine = &h.engine;
        async move { engine.check_authorization(&query).await }
    };
    let plain = request(String::new()).await.unwrap();
    h.engine.approve(&h.user, &plain).await.unwrap();
    let someone_else = uuid::Uuid::from_u128(7).to_string();
    let claims = |sub: &str| json!({"iss": "http://localhost", "sub": sub, "aud": KEY, "exp": 1});
    for header in [
        json!({"alg": "RS256", "typ": "JWT", "kid": "no-such-key"}),
        json!({"alg": "ES256", "typ": "JWT"}),
    ] {
        // A hint naming another user: no code for the signed-in one (OIDC Core §3.1.2.2).
        let forged = request(forged_jws(header.clone(), claims(&someone_else)))
            .await
            .unwrap();
        match h.engine.proceed(&forged, Some(&h.user)).await.unwrap() {
            Interaction::Redirect(location) => {
                assert_eq!(query_param(&location, "code"), None, "{header}");
                assert_eq!(
                    query_param(&location, "error").as_deref(),
                    Some("login_required"),
                    "{header}"
                );
            }
            other => panic!("{header}: {other:?}"),
        }
        // Without prompt=none: a sign-in, not a code.
        let mut interactive = forged.clone();
        interactive.prompt = Default::default();
        assert!(matches!(
            h.engine.proceed(&interactive, Some(&h.user)).await.unwrap(),
            Interaction::Login { .. }
        ));
        // Naming the signed-in user (an ID token of a key rotated out): no worse than no hint.
        let own = request(forged_jws(
            header.clone(),
            claims(&h.user.user.id.to_string()),
        ))
        .await
        .unwrap();
        assert!(matches!(
            h.engine.proceed(&own, Some(&h.user)).await.unwrap(),
            Interaction::Redirect(l) if query_param(&l, "code").is_some()
        ));
        // Not even claiming to be this server's: refused.
        let foreign = json!({"iss": "https://elsewhere", "sub": someone_else, "exp": 1});
        match request(forged_jws(header.clone(), foreign)).await {
            Err(AuthorizeError::Redirect { error, .. }) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest)
            }
            other => panic!("{header}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn parameters_that_change_the_answer_are_refused_when_not_supported() {
    let h = harness().await;
    let request = |extra: &[(&str, &str)]| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", KEY),
            ("state", "s"),
        ];
        query.extend_from_slice(extra);
        let query = pairs(&query);
        let engine = &h.engine;
        async move { engine.check_authorization(&query).await }
    };
    for (extra, expected) in [
        (("response_mode", "query.jwt"), "invalid_request"),
        (("response_mode", "form_post.jwt"), "invalid_request"),
        (("response_mode", "web_message"), "invalid_request"),
        // Unsigned (`alg: none`): an object that proves nothing (RFC 9101 §10.2).
        (
            ("request", "eyJhbGciOiJub25lIn0.e30."),
            "invalid_request_object",
        ),
        (
            ("request_uri", "https://client.example/request.jwt"),
            "request_uri_not_supported",
        ),
    ] {
        match request(&[extra]).await {
            Err(AuthorizeError::Redirect {
                error, response, ..
            }) => {
                let location = response.url();
                assert_eq!(error.code.as_str(), expected, "{extra:?}");
                // In the query, the code flow's default mode, with state and iss.
                assert_eq!(query_param(&location, "error").as_deref(), Some(expected));
                assert_eq!(query_param(&location, "state").as_deref(), Some("s"));
                assert!(!location.contains('#'), "{location}");
            }
            other => panic!("{extra:?}: {other:?}"),
        }
    }
    request(&[("response_mode", "query")]).await.unwrap();
}
