//! Resource indicators (RFC 8707) and Protected Resource Metadata (RFC 9728) over real loopback
//! HTTP: a provider on one socket, an API protected by `ResourceServer::with_metadata` on
//! another.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use doorward_core::memory::MemoryStore;
use doorward_core::model::{ClientPolicy, GrantType};
use doorward_core::passwords::HashCost;
use doorward_core::{ClientSpec, EngineConfig, Grants};
use doorward_proto::{RedirectUri, ResourceUri, Secret};
use tokio::net::TcpListener;

use crate::protect::{Authenticated, ProtectedResource, ResourceServer};
use crate::Provider;

use super::support::*;

const KEY: &str = "machine@clients";
const SECRET: &str = "machine-secret-value";

async fn items(auth: Authenticated) -> String {
    format!("items for {}", auth.grant.subject)
}

struct Setup {
    issuer: String,
    api: String,
    http: reqwest::Client,
}

impl Setup {
    async fn start() -> Self {
        let provider_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", provider_listener.local_addr().unwrap());
        let api = format!("http://{}", api_listener.local_addr().unwrap());
        let resource = format!("{api}/mcp");
        let mut grants = Grants::CODE_AND_REFRESH;
        grants.client_credentials = true;
        let provider = Provider::builder(issuer.clone())
            .config(EngineConfig {
                issuer: issuer.clone(),
                hash_cost: HashCost::InsecureFastForTests,
                resources: vec![
                    ResourceUri::parse(&resource).unwrap(),
                    ResourceUri::parse("https://elsewhere.example/").unwrap(),
                ],
                ..EngineConfig::default()
            })
            .grants(grants)
            .store(Arc::new(MemoryStore::default()))
            .client(ClientSpec {
                key: KEY.into(),
                display_name: "Machine".into(),
                app_uri: "http://client.example".into(),
                redirect_uris: vec![RedirectUri::parse("http://client.example/cb").unwrap()],
                secret: Secret::new(SECRET),
                policy: ClientPolicy {
                    grant_types: Some(vec![GrantType::ClientCredentials]),
                    ..ClientPolicy::default()
                },
            })
            .build()
            .await
            .unwrap();
        let protected = provider.resource_server(0).with_metadata(
            ProtectedResource::new(&resource)
                .unwrap()
                .authorization_server(&issuer)
                .scopes(&["base"])
                .name("Items"),
        );
        let api_router = Router::new()
            .route("/mcp", get(items))
            .merge(protected.metadata_routes())
            .with_state(protected);
        let served = provider.standalone();
        tokio::spawn(async move { axum::serve(provider_listener, served).await.unwrap() });
        tokio::spawn(async move { axum::serve(api_listener, api_router).await.unwrap() });
        Self {
            issuer,
            api,
            http: reqwest::Client::new(),
        }
    }

    /// A `client_credentials` token for `resources` (none: the default audience).
    async fn token(&self, resources: &[&str]) -> Result<String, (u16, String)> {
        let mut body = vec![("grant_type", "client_credentials")];
        body.extend(resources.iter().map(|r| ("resource", *r)));
        let response = self
            .http
            .post(format!("{}/oauth/token", self.issuer))
            .header("authorization", basic(KEY, SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&body))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let json: serde_json::Value = serde_json::from_str(&response.text().await.unwrap())
            .expect("the token endpoint answers JSON");
        match json["access_token"].as_str() {
            Some(token) if status == 200 => Ok(token.to_owned()),
            _ => Err((status, json["error"].as_str().unwrap_or("").to_owned())),
        }
    }

    async fn get(&self, url: &str, token: Option<&str>) -> (u16, String, String) {
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, challenge, response.text().await.unwrap())
    }
}

#[tokio::test]
async fn a_resource_server_publishes_its_metadata_and_names_it_when_refusing() {
    let s = Setup::start().await;
    let resource = format!("{}/mcp", s.api);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", s.api);
    for url in [
        metadata_url.clone(),
        format!("{}/.well-known/oauth-protected-resource", s.api),
    ] {
        let (status, _, body) = s.get(&url, None).await;
        assert_eq!(status, 200, "{url}: {body}");
        let document: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(document["resource"], resource.as_str());
        assert_eq!(
            document["authorization_servers"],
            serde_json::json!([s.issuer])
        );
        assert_eq!(document["scopes_supported"], serde_json::json!(["base"]));
        assert_eq!(
            document["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(document["resource_name"], "Items");
    }
    // No token: a bare challenge that names the metadata (RFC 9728 §5.1).
    let (status, challenge, _) = s.get(&resource, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!("Bearer realm=\"doorward\", resource_metadata=\"{metadata_url}\"")
    );
    // A token for the default audience (the issuer) is not meant for this resource.
    let default = s.token(&[]).await.unwrap();
    let (status, challenge, _) = s.get(&resource, Some(&default)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.ends_with(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    // A token for another resource neither.
    let other = s.token(&["https://elsewhere.example/"]).await.unwrap();
    assert_eq!(s.get(&resource, Some(&other)).await.0, 401);
    // A token for this resource is accepted, alone or among others.
    for resources in [
        vec![resource.as_str()],
        vec!["https://elsewhere.example/", &resource],
    ] {
        let token = s.token(&resources).await.unwrap();
        let (status, _, body) = s.get(&resource, Some(&token)).await;
        assert_eq!((status, body.as_str()), (200, "items for machine@clients"));
    }
}

#[tokio::test]
async fn the_providers_own_api_takes_its_own_audience_only() {
    let s = Setup::start().await;
    let own = format!("{}/api/v1/auth/self", s.issuer);
    // A client's own token is valid there but is about no user: 403, not 401 (the token
    // passed the audience check).
    let (status, _, body) = s.get(&own, Some(&s.token(&[]).await.unwrap())).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = s
        .get(&own, Some(&s.token(&[&s.issuer]).await.unwrap()))
        .await;
    assert_eq!(status, 403, "{body}");
    let narrowed = s.token(&[&format!("{}/mcp", s.api)]).await.unwrap();
    let (status, challenge, _) = s.get(&own, Some(&narrowed)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Its metadata names the issuer as the resource (RFC 9728).
    let (status, _, body) = s
        .get(
            &format!("{}/.well-known/oauth-protected-resource", s.issuer),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["resource"], s.issuer.as_str());
    assert_eq!(
        document["authorization_servers"],
        serde_json::json!([s.issuer])
    );
}

#[tokio::test]
async fn unknown_malformed_and_fragment_resources_are_invalid_target() {
    let s = Setup::start().await;
    for bad in [
        vec!["https://unknown.example/"],
        vec!["/mcp"],
        vec!["https://elsewhere.example/#part"],
        vec!["https://elsewhere.example/", "not a uri"],
    ] {
        assert_eq!(
            s.token(&bad).await,
            Err((400, "invalid_target".to_owned())),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn resource_repeats_in_forms_and_is_an_array_in_json() {
    let s = Setup::start().await;
    let post = |content_type: &'static str, body: String| {
        let s = &s;
        async move {
            let response = s
                .http
                .post(format!("{}/oauth/token", s.issuer))
                .header("authorization", basic(KEY, SECRET))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let json: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, json)
        }
    };
    let resource = format!("{}/mcp", s.api);
    let json = serde_json::json!({
        "grant_type": "client_credentials",
        "resource": [resource, "https://elsewhere.example/"],
    });
    let (status, answer) = post("application/json", json.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(s.get(&resource, Some(token)).await.0, 200);
    let single = serde_json::json!({"grant_type": "client_credentials", "resource": resource});
    assert_eq!(post("application/json", single.to_string()).await.0, 200);
    for odd in [serde_json::json!(5), serde_json::json!([resource, 7])] {
        let body = serde_json::json!({"grant_type": "client_credentials", "resource": odd});
        let (status, answer) = post("application/json", body.to_string()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_request"))
        );
    }
    // Only `resource` may repeat.
    let (status, answer) = post(
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials&scope=base&scope=base".into(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[test]
fn metadata_urls_insert_the_well_known_suffix_before_the_path() {
    for (resource, url) in [
        (
            "https://api.example/",
            "https://api.example/.well-known/oauth-protected-resource",
        ),
        (
            "https://api.example",
            "https://api.example/.well-known/oauth-protected-resource",
        ),
        (
            "https://api.example:8443/v1/mcp/",
            "https://api.example:8443/.well-known/oauth-protected-resource/v1/mcp",
        ),
    ] {
        assert_eq!(
            ProtectedResource::new(resource).unwrap().metadata_url(),
            url
        );
    }
    for bad in [
        "/relative",
        "urn:x:y",
        "https://api.example/#f",
        "https://api.example/?q=1",
        "ftp://api.example/",
    ] {
        assert!(ProtectedResource::new(bad).is_err(), "{bad}");
    }
    // A resource server without metadata has no routes and names none.
    let plain = ResourceServer::new(NoTokens);
    assert!(plain.metadata().is_none());
}

struct NoTokens;

#[crate::protect::async_trait]
impl crate::protect::TokenVerifier for NoTokens {
    async fn verify(
        &self,
        _: &str,
    ) -> Result<crate::protect::AccessGrant, crate::protect::VerifyError> {
        Err(crate::protect::VerifyError::Invalid("none".into()))
    }
}
