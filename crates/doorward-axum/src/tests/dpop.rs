//! DPoP-bound tokens (RFC 9449 §7) at a `ResourceServer`: in the provider's process (proofs'
//! `jti`s recorded in its store) and in another one, by introspection and by JWT (`jti`s kept
//! in memory), the provider on a real socket.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use doorward_client::DpopKey;

use crate::protect::ResourceServer;

use super::support::embedded::*;
use super::support::*;

const API: &str = "http://api.test/api/items";

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_proof_of_their_key_at_every_resource_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{origin}/auth");
    let now = 1_800_000_000;
    let provider = super::remote::three_clients(&issuer, now, API, None).await;
    let local = provider
        .resource_server(0)
        .with_public_url("http://api.test");
    let served = provider.mount(Router::new());
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });

    let key = DpopKey::generate();
    let token_url: url::Url = format!("{issuer}/oauth/token").parse().unwrap();
    let token_for = |client: &'static str, proof: Option<String>| {
        let token_url = token_url.clone();
        async move {
            let mut request = reqwest::Client::new()
                .post(token_url)
                .header("authorization", basic(client, &format!("{client}-secret")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=password&username=carol&password=carol-pw&scope=items%3Aread");
            if let Some(proof) = proof {
                request = request.header("dpop", proof);
            }
            let text = request.send().await.unwrap().text().await.unwrap();
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            let field = |name: &str| -> String {
                answer[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("{text}"))
                    .to_owned()
            };
            (field("access_token"), field("token_type"))
        }
    };
    let proof_at = |iat: i64| key.proof("POST", &token_url, None, None, iat).unwrap();
    let (opaque, kind) = token_for("shop@clients", Some(proof_at(now))).await;
    assert_eq!(kind, "DPoP");
    let (jwt, kind) = token_for("jwt@clients", Some(proof_at(now + 1))).await;
    assert_eq!(kind, "DPoP");
    let (bearer, kind) = token_for("shop@clients", None).await;
    assert_eq!(kind, "Bearer");

    let remote = |config: doorward_client::ProviderConfig| {
        doorward_client::Client::builder(config)
            .clock(move || now)
            .build()
            .unwrap()
    };
    let introspecting = ResourceServer::introspection(
        remote(
            doorward_client::ProviderConfig::oidc(&issuer, "api@clients")
                .with_secret("api@clients-secret"),
        ),
        issuer.clone(),
    )
    .with_public_url("http://api.test");
    let checking = ResourceServer::jwt(
        remote(doorward_client::ProviderConfig::oidc(&issuer, "api@clients").with_secret("x")),
        API,
    )
    .with_public_url("http://api.test");

    // Each resource server with the token it accepts, and the clock its proofs are checked
    // on: the provider's for the local one, this machine's for the others.
    let cases = [
        ("local", local, opaque.clone(), now),
        ("introspection", introspecting, opaque.clone(), system_now()),
        ("jwt", checking, jwt.clone(), system_now()),
    ];
    for (name, resource, token, iat) in cases {
        let app = Router::new()
            .route("/api/items", get(read))
            .with_state(resource);
        let api_url: url::Url = API.parse().unwrap();
        let proof = |url: &url::Url, method: &str, token: &str| {
            key.proof(method, url, Some(token), None, iat).unwrap()
        };
        let call = |scheme: &str, token: &str, proof: Option<String>| {
            let authorization = format!("{scheme} {token}");
            let app = app.clone();
            async move {
                let mut headers = vec![("authorization", authorization.as_str())];
                if let Some(proof) = &proof {
                    headers.push(("dpop", proof.as_str()));
                }
                let (response, body) = send(&app, get_with("/api/items", &headers)).await;
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                (response.status(), body, challenge)
            }
        };
        let good = proof(&api_url, "GET", &token);
        let (status, body, _) = call("DPoP", &token, Some(good.clone())).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body, challenge) = call("DPoP", &token, Some(good)).await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_dpop_proof"),
            "{name}: a replayed proof"
        );
        assert!(challenge.starts_with("DPoP "), "{name}: {challenge}");
        assert!(challenge.contains("algs=\"ES256"), "{name}: {challenge}");
        let refusals = [
            ("as a bearer token", "Bearer", None, "invalid_token"),
            ("without a proof", "DPoP", None, "invalid_dpop_proof"),
            (
                "a proof for another URL",
                "DPoP",
                Some(proof(
                    &"http://api.test/api/other".parse().unwrap(),
                    "GET",
                    &token,
                )),
                "invalid_dpop_proof",
            ),
            (
                "a proof for another method",
                "DPoP",
                Some(proof(&api_url, "POST", &token)),
                "invalid_dpop_proof",
            ),
            (
                "a proof for another token",
                "DPoP",
                Some(proof(&api_url, "GET", "other")),
                "invalid_dpop_proof",
            ),
            (
                "a proof by another key",
                "DPoP",
                Some(
                    DpopKey::generate()
                        .proof("GET", &api_url, Some(&token), None, iat)
                        .unwrap(),
                ),
                "invalid_dpop_proof",
            ),
            (
                "a future-dated proof",
                "DPoP",
                Some(
                    key.proof("GET", &api_url, Some(&token), None, iat + 600)
                        .unwrap(),
                ),
                "invalid_dpop_proof",
            ),
        ];
        for (why, scheme, proof, error) in refusals {
            let (status, body, _) = call(scheme, &token, proof).await;
            assert_eq!(
                (status, error_of(&body).as_str()),
                (StatusCode::UNAUTHORIZED, error),
                "{name}: {why}"
            );
        }
        // A bearer token never goes with the DPoP scheme.
        if name != "jwt" {
            let (status, body, _) =
                call("DPoP", &bearer, Some(proof(&api_url, "GET", &bearer))).await;
            assert_eq!(
                (status, error_of(&body).as_str()),
                (StatusCode::UNAUTHORIZED, "invalid_token"),
                "{name}: a bearer token with the DPoP scheme"
            );
            let (status, body, _) = call("Bearer", &bearer, None).await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
        }
    }
}
