//! Client ID Metadata Documents through the engine (draft-ietf-oauth-client-id-metadata-document):
//! fetched once and cached for the response's lifetime, stored as a client with a stable Id,
//! refreshed (upserted) when stale, off unless enabled, and refused without a redirect.

use std::sync::Arc;

use doorward_proto::ErrorCode;
use serde_json::json;

use crate::client_document::{DocumentPolicy, LookupError, MIN_LIFETIME};
use crate::model::ClientSource;
use crate::request::{AuthorizeError, ShowReason};
use crate::EngineConfig;

use super::support::*;

const URL: &str = "https://app.example/oauth/client.json";

fn document(name: &str) -> String {
    json!({
        "client_id": URL,
        "client_name": name,
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

fn enabled() -> EngineConfig {
    EngineConfig {
        client_documents: DocumentPolicy {
            enabled: true,
            insecure_allow_http: false,
        },
        ..EngineConfig::default()
    }
}

#[tokio::test]
async fn a_document_client_is_fetched_stored_cached_and_refreshed() {
    let fetcher = Arc::new(FakeFetcher::default());
    fetcher.serve(URL, &document("First"), Some(120));
    let h = harness_fetching(enabled(), fetcher.clone()).await;
    let client = h.engine.resolve_client(URL).await.unwrap().unwrap();
    assert_eq!(
        (
            client.key.as_str(),
            client.source,
            client.display_name.as_str()
        ),
        (URL, ClientSource::MetadataDocument, "First")
    );
    assert!(client.policy.is_public() && !client.is_verified());
    let stored = h.engine.find_client(URL).await.unwrap().unwrap();
    assert_eq!(stored.id, client.id, "stored under its URL");

    fetcher.serve(URL, &document("Second"), Some(120));
    h.clock.advance(119);
    let cached = h.engine.resolve_client(URL).await.unwrap().unwrap();
    assert_eq!(
        (cached.display_name.as_str(), fetcher.count(URL)),
        ("First", 1)
    );
    h.clock.advance(1);
    let fresh = h.engine.resolve_client(URL).await.unwrap().unwrap();
    assert_eq!(
        (fresh.display_name.as_str(), fetcher.count(URL)),
        ("Second", 2)
    );
    assert_eq!(fresh.id, client.id, "the Id is stable across refreshes");

    // max-age=0 still caches for the minimum.
    fetcher.serve(URL, &document("Third"), Some(0));
    h.clock.advance(120);
    h.engine.resolve_client(URL).await.unwrap();
    h.clock.advance(MIN_LIFETIME - 1);
    h.engine.resolve_client(URL).await.unwrap();
    assert_eq!(fetcher.count(URL), 3);

    // Found by its URL only: its UUID names no client.
    let by_id = h
        .engine
        .resolve_client(&client.id.to_string())
        .await
        .unwrap();
    assert!(by_id.is_none());
}

#[tokio::test]
async fn documents_are_off_unless_enabled() {
    let fetcher = Arc::new(FakeFetcher::default());
    fetcher.serve(URL, &document("App"), None);
    let on = harness_fetching(enabled(), fetcher.clone()).await;
    on.engine.resolve_client(URL).await.unwrap().unwrap();
    // The same store, documents off: the stored client is not served, nothing is fetched.
    let off = crate::testing::engine_over(
        on.engine.store().clone(),
        on.clock.clone(),
        EngineConfig::default(),
    )
    .await
    .with_fetcher(fetcher.clone());
    assert!(off.resolve_client(URL).await.unwrap().is_none());
    assert_eq!(fetcher.count(URL), 1);
    assert!(!off
        .metadata()
        .as_object()
        .unwrap()
        .contains_key("client_id_metadata_document_supported"));
    assert_eq!(
        on.engine.metadata()["client_id_metadata_document_supported"],
        json!(true)
    );
}

#[tokio::test]
async fn a_refused_document_is_shown_at_authorize_and_invalid_client_at_token() {
    let fetcher = Arc::new(FakeFetcher::default());
    fetcher.serve(
        URL,
        &json!({"client_id": "https://evil.example/c.json", "redirect_uris": ["https://app.example/cb"]}).to_string(),
        None,
    );
    let h = harness_fetching(enabled(), fetcher.clone()).await;
    let params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", URL),
        ("redirect_uri", "https://app.example/cb"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    match h.engine.check_authorization(&params).await {
        Err(AuthorizeError::Show(ShowReason::ClientDocument(why))) => {
            assert!(why.contains("client_id"), "{why}")
        }
        other => panic!("expected a stage-1 page, got {other:?}"),
    }
    assert!(matches!(
        h.engine.resolve_client(URL).await,
        Err(LookupError::Document(_))
    ));
    // Refused again from memory within the cooldown: one fetch for all of the above.
    assert_eq!(fetcher.count(URL), 1);
    h.clock.advance(crate::client_document::FAILURE_COOLDOWN);
    fetcher.fail(URL, crate::fetch::FetchError::TooLarge(65536));
    let request = crate::request::TokenRequest {
        params: [
            ("grant_type", "authorization_code"),
            ("code", "dwc_x"),
            ("client_id", URL),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect(),
        basic: None,
        client_address: None,
        dpop: Default::default(),
        resources: Vec::new(),
    };
    assert_eq!(
        code_of(h.engine.token(&request).await),
        ErrorCode::InvalidClient
    );
    assert_eq!(fetcher.count(URL), 2);
    // Nothing was stored for a refused document.
    assert!(h.engine.find_client(URL).await.unwrap().is_none());
}
