//! Bearer tokens outside the `Authorization` header (RFC 6750 §2.2, §2.3): in a form body
//! where a `ResourceServer` accepts them (through its `require` layer, the body handed on
//! unchanged), in the query behind its `insecure_` switch; never both methods at once.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::Router;

use super::support::*;

async fn echo(body: String) -> String {
    format!("handler saw {body}")
}

#[tokio::test]
async fn form_body_and_query_tokens_where_a_resource_accepts_them() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/auth", listener.local_addr().unwrap());
    let provider =
        super::remote::three_clients(&issuer, 1_800_000_000, "https://api.example", None).await;
    let strict = provider.resource_server(0);
    let lenient = provider
        .resource_server(0)
        .accept_form_body_tokens()
        .insecure_accept_query_tokens();
    let app = provider.mount(Router::new());
    let (response, body) = send(
        &app,
        Request::post("/auth/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                header::AUTHORIZATION,
                basic("shop@clients", "shop@clients-secret"),
            )
            .body(Body::from(
                "grant_type=password&username=carol&password=carol-pw&scope=base",
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = |resource: crate::protect::ResourceServer| {
        Router::new()
            .route("/items", post(echo).get(echo))
            .layer(resource.require(&[]))
    };
    let form = |path: &str, body: String| {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    // In a form body: accepted by the lenient API, and the handler still reads the body.
    let (response, body) = send(
        &api(lenient.clone()),
        form("/items", format!("x=1&access_token={token}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert!(body.starts_with("handler saw x=1&access_token="), "{body}");
    // The strict API takes the header only.
    let (response, _) = send(
        &api(strict.clone()),
        form("/items", format!("access_token={token}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // In the query, only behind the insecure switch.
    let query = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let (response, _) = send(
        &api(lenient.clone()),
        query(format!("/items?access_token={token}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (response, _) = send(&api(strict), query(format!("/items?access_token={token}"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Two methods at once, or the parameter twice: invalid_request (RFC 6750 §2, §3.1).
    let both = Request::post(format!("/items?access_token={token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("access_token={token}")))
        .unwrap();
    let (response, body) = send(&api(lenient.clone()), both).await;
    assert_eq!(
        (response.status(), error_of(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let header_too = Request::post("/items")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("access_token={token}")))
        .unwrap();
    let (response, _) = send(&api(lenient.clone()), header_too).await;
    // The layer reads no body when a header is there: the header's token is used alone.
    assert_eq!(response.status(), StatusCode::OK);
    let twice = form(
        "/items",
        format!("access_token={token}&access_token={token}"),
    );
    let (response, _) = send(&api(lenient), twice).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // UserInfo takes a form body in a POST (RFC 6750 §2.2; OIDC Core §5.3.1), never the query.
    let (response, body) = send(
        &app,
        form("/auth/oauth/userinfo", format!("access_token={token}")),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "no openid scope: {body}"
    );
    let (response, _) = send(
        &app,
        query(format!("/auth/oauth/userinfo?access_token={token}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
