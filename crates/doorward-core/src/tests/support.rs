//! What the tests share: an engine over the in-memory store with a fixed clock, two registered
//! clients and a signed-in user, and shortcuts to authorize, redeem and refresh.

use std::collections::HashMap;
use std::sync::Arc;

use doorward_proto::{ErrorCode, Secret, TokenResponse};

use crate::model::SignedIn;
use crate::request::{BasicCredentials, TokenRequest};
use crate::testing::{self, FixedClock};
use crate::{Engine, EngineConfig, Error};

pub(super) const CALLBACK: &str = "http://localhost:8000/oauth/callback";
pub(super) const KEY: &str = "python_client@clients";
pub(super) const SECRET: &str = "dev_secret";
/// RFC 7636 Appendix B.
pub(super) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(super) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(super) struct Harness {
    pub(super) engine: Engine,
    pub(super) clock: Arc<FixedClock>,
    pub(super) user: SignedIn,
}

pub(super) async fn harness() -> Harness {
    harness_with(EngineConfig::default()).await
}

pub(super) async fn harness_with(config: EngineConfig) -> Harness {
    harness_over(Arc::new(crate::memory::MemoryStore::default()), config).await
}

/// [`harness_with`] over `store` (a [`testing::FailingStore`], say).
pub(super) async fn harness_over(
    store: crate::ports::SharedStore,
    config: EngineConfig,
) -> Harness {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let engine = testing::engine_over(store, clock.clone(), config).await;
    for (name, callback, secret) in [
        ("python_client", CALLBACK, SECRET),
        ("other", "http://localhost:8001/cb", "other_secret"),
    ] {
        engine
            .register_client(testing::client(
                &format!("{name}@clients"),
                name,
                callback,
                secret,
            ))
            .await
            .unwrap();
    }
    engine
        .seed_user(&testing::user("alice", "Alice", "pw"))
        .await
        .unwrap();
    let (_, user) = engine
        .sign_in("alice", &Secret::new("pw"), None)
        .await
        .unwrap();
    Harness {
        engine,
        clock,
        user,
    }
}

pub(super) fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A URL, or an authorization response read as the URL that carries it in its query.
pub(super) trait AsUrl {
    fn as_url(&self) -> String;
}

impl AsUrl for str {
    fn as_url(&self) -> String {
        self.to_owned()
    }
}

impl AsUrl for String {
    fn as_url(&self) -> String {
        self.clone()
    }
}

impl AsUrl for crate::request::AuthorizationResponse {
    fn as_url(&self) -> String {
        self.url()
    }
}

pub(super) fn query_param<U: AsUrl + ?Sized>(url: &U, name: &str) -> Option<String> {
    let url = url.as_url();
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// A client request with `params` in its body and HTTP Basic credentials.
pub(super) fn basic_request(id: &str, secret: &str, params: &[(&str, &str)]) -> TokenRequest {
    TokenRequest {
        resources: Vec::new(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        basic: Some(BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
        client_address: None,
        dpop: Default::default(),
    }
}

impl Harness {
    /// Authorizes (approving consent) and returns the code.
    pub(super) async fn code(&self, extra: &[(&str, &str)]) -> String {
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

    pub(super) async fn token(&self, params: &[(&str, &str)]) -> Result<TokenResponse, Error> {
        self.engine.token(&basic_request(KEY, SECRET, params)).await
    }

    pub(super) async fn redeem(&self, code: &str) -> Result<TokenResponse, Error> {
        self.token(&[("grant_type", "authorization_code"), ("code", code)])
            .await
    }

    pub(super) async fn refresh(&self, token: &str) -> Result<TokenResponse, Error> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .await
    }

    pub(super) async fn token_works(&self, token: &str) -> bool {
        self.engine.check_access_token(token).await.is_ok()
    }
}

pub(super) fn code_of(result: Result<TokenResponse, Error>) -> ErrorCode {
    match result {
        Err(Error::OAuth(e)) => e.code,
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

pub(super) fn claims_of(h: &Harness, id_token: &str) -> serde_json::Value {
    h.engine
        .verify_own_jws::<serde_json::Value>(id_token, false)
        .expect("the ID token verifies with the published keys")
}

/// A [`crate::fetch::Fetcher`] that serves what the test puts in it, by URL, and counts the
/// fetches of each URL.
/// What a [`FakeFetcher`] answers for a URL: a body and its `max-age`, or a failure.
type Served = Result<(String, Option<u64>), crate::fetch::FetchError>;

#[derive(Default)]
pub(super) struct FakeFetcher {
    served: std::sync::Mutex<HashMap<String, Served>>,
    fetches: std::sync::Mutex<HashMap<String, usize>>,
}

impl FakeFetcher {
    pub(super) fn serve(&self, url: &str, body: &str, max_age: Option<u64>) {
        self.served
            .lock()
            .unwrap()
            .insert(url.to_owned(), Ok((body.to_owned(), max_age)));
    }

    pub(super) fn fail(&self, url: &str, error: crate::fetch::FetchError) {
        self.served
            .lock()
            .unwrap()
            .insert(url.to_owned(), Err(error));
    }

    pub(super) fn count(&self, url: &str) -> usize {
        self.fetches.lock().unwrap().get(url).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl crate::fetch::Fetcher for FakeFetcher {
    async fn fetch_json(
        &self,
        url: &url::Url,
    ) -> Result<crate::fetch::Fetched, crate::fetch::FetchError> {
        *self
            .fetches
            .lock()
            .unwrap()
            .entry(url.to_string())
            .or_default() += 1;
        let served = self.served.lock().unwrap().get(url.as_str()).cloned();
        let (body, max_age) = served.unwrap_or(Err(crate::fetch::FetchError::Status(404)))?;
        Ok(crate::fetch::Fetched {
            body: body.into_bytes(),
            max_age,
        })
    }
}

/// [`harness_with`], the engine fetching through `fetcher`.
pub(super) async fn harness_fetching(config: EngineConfig, fetcher: Arc<FakeFetcher>) -> Harness {
    let h = harness_with(config).await;
    Harness {
        engine: h.engine.with_fetcher(fetcher),
        ..h
    }
}
