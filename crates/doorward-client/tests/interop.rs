//! Past 700 lines, still one idea: doorward-client against real providers; the harness of
//! each provider (start, sign-in pages) lives beside the flows that use it (device flow and
//! `doorward serve` cases are in `interop/`).
//!
//! doorward-client against real providers over loopback HTTP:
//! - node-oidc-provider (npm, pinned in `tests/node-oidc/`): every token-endpoint auth method,
//!   PKCE, OIDC ID tokens (RS256 and ES256), userinfo, refresh with rotation, introspection,
//!   revocation, `access_denied`, `login_required`, state mismatch, code replay, opaque states,
//!   the device flow (`interop/node_device.rs`);
//! - the Eternaltwin 0.16.4 server (crates.io, built by `scripts/eternaltwin.sh`): the Eternaltwin
//!   preset signs a user in, and its quirks become typed errors.
//!
//! `bash scripts/test.sh` sets `DOORWARD_TEST_NODE`, `DOORWARD_TEST_NODE_OIDC` and
//! `DOORWARD_TEST_ETERNALTWIN_BIN`; without them each test prints that it was skipped, and in
//! CI (`CI` set) fails (`tests/rust/required_env.rs`).
//! - `doorward serve` (`DOORWARD_BIN`): the device authorization grant and pushed
//!   authorization requests (`interop/doorward.rs`); its other flows are exercised through the
//!   example app, from `tests/interop/`.
//!
//! Past 700 lines, still one idea: the client against each real provider, one section each;
//! a new provider or flow goes in a module of its own under `interop/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use doorward_client::eternaltwin::current_user;
use doorward_client::{
    Algorithm, ApiError, AuthMethod, AuthorizationOptions, Callback, Client, DiscoveryError,
    ErrorCode, FinishError, InvalidState, MemoryStateStore, PrivateKey, ProviderConfig,
    RefreshError, StartError, Token, TokenError,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

const CALLBACK: &str = "http://localhost:8000/oauth/callback";

#[path = "../../../tests/rust/required_env.rs"]
mod required_env;

#[path = "interop/doorward.rs"]
mod doorward;
#[path = "interop/ephemeral.rs"]
mod ephemeral;
#[path = "interop/node_device.rs"]
mod node_device;
#[cfg(feature = "axum")]
#[path = "interop/sign_in_routes.rs"]
mod sign_in_routes;

/// A path from a `DOORWARD_TEST_*` variable: `None` (skipped) without it, a failure in CI.
fn env_path(name: &str) -> Option<PathBuf> {
    required_env::required_env(name).map(PathBuf::from)
}

/// A browser: keeps cookies, follows nothing by itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> Url {
    let value = response
        .headers()
        .get("location")
        .unwrap_or_else(|| {
            panic!(
                "no Location in {} from {}",
                response.status(),
                response.url()
            )
        })
        .to_str()
        .unwrap();
    response.url().join(value).unwrap()
}

fn callback_of(url: &Url) -> Callback {
    assert!(
        url.as_str().starts_with(CALLBACK),
        "expected the callback, got {url}"
    );
    Callback::from_query(url.query().unwrap_or(""))
}

// ---------------------------------------------------------------------------------------------
// node-oidc-provider

struct NodeOidc {
    issuer: String,
    private_key_pem: String,
    _child: Child,
}

async fn start_node_oidc() -> Option<NodeOidc> {
    let node = env_path("DOORWARD_TEST_NODE")?;
    let script = env_path("DOORWARD_TEST_NODE_OIDC")?;
    let mut child = Command::new(node)
        .arg(&script)
        .current_dir(script.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node-oidc-provider");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("node-oidc-provider did not start within 60 s")
        .unwrap()
        .expect("node-oidc-provider exited");
    // Keep reading: a closed pipe would kill the provider at its next log line.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    Some(NodeOidc {
        issuer: ready["issuer"].as_str().unwrap().to_owned(),
        private_key_pem: ready["private_key_pem"].as_str().unwrap().to_owned(),
        _child: child,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Decision {
    Approve,
    Abort,
}

/// Follows the provider from the authorization URL through its development login and consent
/// forms to the redirect to the callback.
async fn node_sign_in(
    browser: &reqwest::Client,
    start: &Url,
    login: &str,
    decision: Decision,
) -> Url {
    node_sign_in_until(browser, start, login, decision, CALLBACK).await
}

/// [`node_sign_in`] up to the redirect to a URL that starts with `callback`.
async fn node_sign_in_until(
    browser: &reqwest::Client,
    start: &Url,
    login: &str,
    decision: Decision,
    callback: &str,
) -> Url {
    let mut url = start.clone();
    let mut form: Option<Vec<(&str, &str)>>;
    for _ in 0..12 {
        let response = browser.get(url.clone()).send().await.unwrap();
        if response.status().is_redirection() {
            let next = location(&response);
            if next.as_str().starts_with(callback) {
                return next;
            }
            url = next;
            continue;
        }
        assert_eq!(response.status(), 200, "at {url}");
        let page = response.text().await.unwrap();
        if decision == Decision::Abort {
            url = Url::parse(&format!("{}/abort", url.as_str().trim_end_matches('/'))).unwrap();
            continue;
        }
        form = Some(if page.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        });
        let response = browser
            .post(url.clone())
            .form(&form.take().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_redirection(),
            "form at {url}: {}",
            response.status()
        );
        url = location(&response);
        if url.as_str().starts_with(callback) {
            return url;
        }
    }
    panic!("no redirect to the callback from {start}");
}

fn node_config(node: &NodeOidc, client_id: &str) -> ProviderConfig {
    let mut config = ProviderConfig::oidc(&node.issuer, client_id)
        .with_redirect_uri(CALLBACK.parse().unwrap())
        .with_scopes(["openid", "profile", "email"]);
    match client_id {
        "rp-pkjwt" => {
            let key = PrivateKey::from_pem(
                Algorithm::ES256,
                node.private_key_pem.as_bytes(),
                Some("rp-es256".into()),
            )
            .unwrap();
            config.auth_method = AuthMethod::PrivateKeyJwt(key);
        }
        "rp-public" => config.auth_method = AuthMethod::None,
        other => {
            config = config.with_secret("rp-secret-0123456789-0123456789-0123456789");
            config.auth_method = match other {
                "rp-post" => AuthMethod::ClientSecretPost,
                "rp-jwt" => AuthMethod::ClientSecretJwt,
                _ => AuthMethod::ClientSecretBasic,
            };
        }
    }
    config
}

#[tokio::test]
async fn node_oidc_provider() {
    let Some(node) = start_node_oidc().await else {
        return;
    };
    for client_id in [
        "rp-basic",
        "rp-post",
        "rp-jwt",
        "rp-pkjwt",
        "rp-public",
        "rp-es256",
    ] {
        full_flow(&node, client_id).await;
    }
    failures(&node).await;
    auto_refresh_and_opaque_state(&node).await;
    max_age_is_enforced(&node).await;
    node_device::device_flow(&node).await;
    node_device::doorward_login_loopback(&node).await;
    for client_id in ["rp-public", "rp-basic"] {
        dpop_flow(&node, client_id).await;
    }
}

/// DPoP (RFC 9449) against node-oidc-provider, which requires nonces: the code bound by
/// `dpop_jkt`, the token request and userinfo each retried once with the nonce, a DPoP-bound
/// token (`cnf.jkt` = the key's thumbprint), the refresh proven with the same key.
async fn dpop_flow(node: &NodeOidc, client_id: &str) {
    let key = doorward_client::DpopKey::generate();
    let client = Client::builder(node_config(node, client_id))
        .dpop(key.clone())
        .build()
        .unwrap();
    let authorization = client.start_authorization().await.unwrap();
    assert!(
        authorization
            .url
            .query_pairs()
            .any(|(k, v)| k == "dpop_jkt" && v == key.thumbprint()),
        "{}",
        authorization.url
    );
    let login = format!("dpop-{client_id}");
    let back = node_sign_in(&browser(), &authorization.url, &login, Decision::Approve).await;
    let sign_in = client
        .finish_authorization(&callback_of(&back), Some(&authorization.state))
        .await
        .unwrap_or_else(|e| panic!("{client_id}: {e:?}"));
    let token = sign_in.token;
    assert!(
        token.token_type().eq_ignore_ascii_case("dpop"),
        "{client_id}: {}",
        token.token_type()
    );
    let info = client.userinfo(&token).await.unwrap();
    assert_eq!(info.subject, login);

    // The same token without the key is refused: a client without DPoP cannot use it.
    let keyless = Client::builder(node_config(node, client_id))
        .build()
        .unwrap();
    assert!(keyless.userinfo(&token).await.is_err());

    let refreshed = client.refresh(&token).await.unwrap();
    assert!(refreshed.token_type().eq_ignore_ascii_case("dpop"));
    assert_eq!(client.userinfo(&refreshed).await.unwrap().subject, login);
    if client_id != "rp-public" {
        let seen = client.introspect(refreshed.access_token()).await.unwrap();
        assert!(seen.active);
        assert_eq!(seen.extra["cnf"]["jkt"], key.thumbprint(), "{client_id}");
    } else {
        // A public client's refresh token is bound to its key: another key cannot use it.
        let other = Client::builder(node_config(node, client_id))
            .dpop(doorward_client::DpopKey::generate())
            .build()
            .unwrap();
        assert!(other.refresh(&refreshed).await.is_err());
    }
}

/// `max_age` sent: the ID token must carry a recent enough `auth_time` (OIDC Core §3.1.3.7).
async fn max_age_is_enforced(node: &NodeOidc) {
    use std::sync::atomic::AtomicI64;
    let skew = Arc::new(AtomicI64::new(0));
    let clock_skew = skew.clone();
    let client = Client::builder(node_config(node, "rp-basic"))
        .clock(move || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            now + clock_skew.load(Ordering::SeqCst)
        })
        .build()
        .unwrap();
    let mut options = AuthorizationOptions::default();
    options.max_age = Some(300);
    for (advance, ok) in [(0, true), (400, false)] {
        skew.store(0, Ordering::SeqCst);
        let authorization = client
            .start_authorization_with(options.clone())
            .await
            .unwrap();
        assert!(authorization.url.as_str().contains("max_age=300"));
        let back = node_sign_in(&browser(), &authorization.url, "recent", Decision::Approve).await;
        // The callback handled `advance` seconds later (within the state's 600 s).
        skew.store(advance, Ordering::SeqCst);
        let finished = client
            .finish_authorization(&callback_of(&back), Some(&authorization.state))
            .await;
        match (finished, ok) {
            (Ok(sign_in), true) => assert!(sign_in.id_token.unwrap().auth_time.is_some()),
            (
                Err(FinishError::IdToken(doorward_client::IdTokenError::AuthTooOld {
                    max_age,
                    ..
                })),
                false,
            ) => {
                assert_eq!(max_age, 300)
            }
            (other, _) => panic!("max_age 300, callback {advance} s later: {other:?}"),
        }
    }
}

/// Sign in, ID token, userinfo, refresh with rotation, introspection, revocation.
async fn full_flow(node: &NodeOidc, client_id: &str) {
    let client = Client::builder(node_config(node, client_id))
        .build()
        .unwrap();
    let login = format!("user-{client_id}");
    let authorization = client.start_authorization().await.unwrap();
    let query: Vec<(String, String)> = authorization.url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(
        param("nonce").is_some(),
        "openid requested: a nonce is sent"
    );
    assert_eq!(
        param("state").as_deref(),
        Some(authorization.state.as_str())
    );

    let back = node_sign_in(&browser(), &authorization.url, &login, Decision::Approve).await;
    let callback = callback_of(&back);
    assert_eq!(
        callback.iss.as_deref(),
        Some(node.issuer.as_str()),
        "RFC 9207 iss"
    );
    let sign_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .unwrap_or_else(|e| panic!("{client_id}: {e:?}"));
    let claims = sign_in.id_token.expect("an ID token");
    assert_eq!(claims.subject, login, "{client_id}");
    assert_eq!(claims.issuer, node.issuer);
    assert_eq!(claims.audience, vec![client_id.to_owned()]);
    let token = sign_in.token;
    assert!(
        token.refresh_token().is_some(),
        "{client_id}: a refresh token"
    );
    assert!(token.expires_at().is_some());

    let info = client.userinfo(&token).await.unwrap();
    assert_eq!(info.subject, login);
    assert_eq!(info.claims["name"], format!("User {login}"));
    assert_eq!(info.claims["email"], format!("{login}@example.com"));

    let refreshed = client.refresh(&token).await.unwrap();
    assert_ne!(refreshed.access_token(), token.access_token());
    assert_ne!(refreshed.refresh_token(), token.refresh_token(), "rotated");
    assert!(refreshed.id_token().is_some());

    if client_id != "rp-public" {
        let active = client.introspect(refreshed.access_token()).await.unwrap();
        assert!(active.active, "{client_id}: fresh access token is active");
        assert_eq!(active.sub.as_deref(), Some(login.as_str()));
    }
    client.revoke(&refreshed).await.unwrap();
    match client.refresh(&refreshed).await {
        Err(RefreshError::Token(TokenError::Provider { status, error })) => {
            assert_eq!(status, 400);
            assert_eq!(error.code, Some(ErrorCode::InvalidGrant), "{error}");
        }
        other => panic!("{client_id}: refresh after revocation: {other:?}"),
    }
    if client_id != "rp-public" {
        client
            .revoke_token(refreshed.access_token(), None)
            .await
            .unwrap();
        let inactive = client.introspect(refreshed.access_token()).await.unwrap();
        assert!(
            !inactive.active,
            "{client_id}: revoked access token is inactive"
        );
    }
}

/// Refusals: access_denied, login_required, state mismatch, code replay, wrong secret.
async fn failures(node: &NodeOidc) {
    let client = Client::builder(node_config(node, "rp-basic"))
        .build()
        .unwrap();

    let authorization = client.start_authorization().await.unwrap();
    let back = node_sign_in(&browser(), &authorization.url, "denier", Decision::Abort).await;
    match client
        .finish_authorization(&callback_of(&back), Some(&authorization.state))
        .await
    {
        Err(FinishError::Authorization(error)) => assert!(error.is_access_denied(), "{error}"),
        other => panic!("abort: {other:?}"),
    }

    let mut options = AuthorizationOptions::default();
    options.prompt = Some("none".into());
    let authorization = client.start_authorization_with(options).await.unwrap();
    let response = browser()
        .get(authorization.url.clone())
        .send()
        .await
        .unwrap();
    let back = location(&response);
    match client
        .finish_authorization(&callback_of(&back), Some(&authorization.state))
        .await
    {
        Err(FinishError::Authorization(error)) => {
            assert_eq!(error.code, Some(ErrorCode::LoginRequired), "{error}")
        }
        other => panic!("prompt=none: {other:?}"),
    }

    let first = client.start_authorization().await.unwrap();
    let second = client.start_authorization().await.unwrap();
    let back = node_sign_in(&browser(), &first.url, "replayer", Decision::Approve).await;
    let callback = callback_of(&back);
    match client
        .finish_authorization(&callback, Some(&second.state))
        .await
    {
        Err(FinishError::InvalidState(InvalidState::Mismatch)) => {}
        other => panic!("state of another authorization: {other:?}"),
    }
    client
        .finish_authorization(&callback, Some(&first.state))
        .await
        .unwrap();
    match client
        .finish_authorization(&callback, Some(&first.state))
        .await
    {
        Err(FinishError::Token(TokenError::Provider { error, .. })) => {
            assert_eq!(error.code, Some(ErrorCode::InvalidGrant), "{error}")
        }
        other => panic!("code replay: {other:?}"),
    }

    let wrong = Client::builder(node_config(node, "rp-basic").with_secret("wrong-secret"))
        .build()
        .unwrap();
    let authorization = wrong.start_authorization().await.unwrap();
    let back = node_sign_in(
        &browser(),
        &authorization.url,
        "wrongsecret",
        Decision::Approve,
    )
    .await;
    match wrong
        .finish_authorization(&callback_of(&back), Some(&authorization.state))
        .await
    {
        Err(FinishError::Token(TokenError::Provider { status: 401, error })) => {
            assert_eq!(error.code, Some(ErrorCode::InvalidClient), "{error}")
        }
        other => panic!("wrong secret: {other:?}"),
    }
}

/// `Authorized` refreshes before expiry and calls the persistence hook; opaque states work.
async fn auto_refresh_and_opaque_state(node: &NodeOidc) {
    let mut config = node_config(node, "rp-basic");
    // Every token "expires soon": each call refreshes first.
    config.refresh_margin = 1_000_000;
    let updates = Arc::new(AtomicUsize::new(0));
    let seen = updates.clone();
    let client = Client::builder(config)
        .opaque_state(Arc::new(MemoryStateStore::default()))
        .on_token_updated(move |update| {
            let seen = seen.clone();
            async move {
                assert_ne!(
                    update.previous.access_token(),
                    update.current.access_token()
                );
                assert_ne!(
                    update.previous.refresh_token(),
                    update.current.refresh_token()
                );
                seen.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let authorization = client.start_authorization().await.unwrap();
    assert_eq!(authorization.state.len(), 43, "an opaque random state");
    let back = node_sign_in(&browser(), &authorization.url, "keeper", Decision::Approve).await;
    let callback = callback_of(&back);
    let sign_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .unwrap();
    match client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
    {
        Err(FinishError::InvalidState(InvalidState::Unknown)) => {}
        other => panic!("opaque state used twice: {other:?}"),
    }
    match client.finish_authorization(&callback, None).await {
        Err(FinishError::InvalidState(InvalidState::NotBound)) => {}
        other => panic!("no state from the browser: {other:?}"),
    }
    let api = client.authorized(sign_in.token.clone());
    let info = api.userinfo().await.unwrap();
    assert_eq!(info.subject, "keeper");
    assert_eq!(updates.load(Ordering::SeqCst), 1);
    let current = api.token().await.unwrap();
    assert_eq!(updates.load(Ordering::SeqCst), 2);
    assert_ne!(current.refresh_token(), sign_in.token.refresh_token());
    // The rotated-out refresh token is spent.
    assert!(client.refresh(&sign_in.token).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// Eternaltwin 0.16.4

struct Eternaltwin {
    url: Url,
    /// The port of `doorward_cli`'s registered loopback callback (`doorward login`).
    cli_port: u16,
    _child: Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `doorward login …` (`DOORWARD_BIN`) started with `args`, its stderr read until a line that
/// `pick` accepts: the child, the rest of its stderr (kept open: the command writes to it when
/// it ends), and what `pick` answered.
async fn doorward_login_until<T>(
    bin: &std::path::Path,
    args: &[&str],
    store: &std::path::Path,
    pick: impl Fn(&str) -> Option<T>,
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    T,
) {
    let mut login = Command::new(bin)
        .arg("login")
        .args(args)
        .arg("--store")
        .arg(store)
        // The token file only: these tests are not about the OS keyring (test_login.py is).
        .env("DOORWARD_NO_KEYRING", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("doorward login ended before printing what the test waits for");
        if let Some(found) = pick(&line) {
            return (login, lines, found);
        }
    }
}

/// `doorward token <args> --store <store>`, run to completion.
fn doorward_token(
    bin: &std::path::Path,
    args: &[&str],
    store: &std::path::Path,
) -> std::process::Output {
    std::process::Command::new(bin)
        .arg("token")
        .args(args)
        .arg("--store")
        .arg(store)
        .env("DOORWARD_NO_KEYRING", "1")
        .output()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_eternaltwin() -> Option<Eternaltwin> {
    let binary = env_path("DOORWARD_TEST_ETERNALTWIN_BIN")?;
    // The port is picked free, then bound by the server: another process may take it in
    // between, so a server that exits before answering is started again on other ports.
    for attempt in 1..=3 {
        if let Some(etw) = try_start_eternaltwin(&binary).await {
            return Some(etw);
        }
        eprintln!("the Eternaltwin server exited before answering (attempt {attempt})");
    }
    panic!("the Eternaltwin server exited before answering, three times");
}

/// One start of the Eternaltwin server on free ports: `None` when it exits before answering.
async fn try_start_eternaltwin(binary: &std::path::Path) -> Option<Eternaltwin> {
    let port = free_port();
    let cli_port = free_port();
    let dir = std::env::temp_dir().join(format!("doorward-etw-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("eternaltwin.toml"),
        format!(
            r#"[backend]
listen = "127.0.0.1:{port}"
secret = "dev"
clock = "System"
mailer = "Mock"
store = "Memory"
oauth_client = "Mock"

[opentelemetry]
enabled = false

[seed.app.doorward_rp]
display_name = "Doorward RP"
uri = "http://localhost:8000/"
oauth_callback = "{CALLBACK}"
secret = "rp_secret"

[seed.app.doorward_cli]
display_name = "Doorward CLI"
uri = "http://127.0.0.1:{cli_port}/"
oauth_callback = "http://127.0.0.1:{cli_port}/callback"
secret = "cli_secret"

[seed.user.alice]
username = "alice"
password = "1234567891"
"#
        ),
    )
    .unwrap();
    let mut child = Command::new(binary)
        .arg("backend")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Eternaltwin server");
    let url: Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let http = browser();
    for _ in 0..240 {
        if let Ok(response) = http.get(url.join("api/v1").unwrap()).send().await {
            if response.status() == 200 {
                return Some(Eternaltwin {
                    url,
                    cli_port,
                    _child: child,
                    _dir: TempDir(dir),
                });
            }
        }
        if child.try_wait().unwrap().is_some() {
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("Eternaltwin did not answer within 60 s");
}

fn eternaltwin_client(etw: &Eternaltwin, secret: &str) -> Client {
    let config = ProviderConfig::eternaltwin(&etw.url, "doorward_rp@clients")
        .with_secret(secret)
        .with_redirect_uri(CALLBACK.parse().unwrap());
    Client::builder(config).build().unwrap()
}

/// Signs `alice` in to Eternaltwin (its session login, wire.md §4.1) in `browser`.
async fn eternaltwin_login(etw: &Eternaltwin, browser: &reqwest::Client) {
    let password: String = b"1234567891".iter().map(|b| format!("{b:02x}")).collect();
    let response = browser
        .put(etw.url.join("api/v1/auth/self?method=Etwin").unwrap())
        .json(&serde_json::json!({"login": "alice", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "Eternaltwin login");
}

async fn eternaltwin_callback(browser: &reqwest::Client, url: &Url) -> Callback {
    let response = browser.get(url.clone()).send().await.unwrap();
    assert_eq!(response.status(), 303, "Eternaltwin authorize");
    callback_of(&location(&response))
}

#[tokio::test]
async fn eternaltwin_server() {
    let Some(etw) = start_eternaltwin().await else {
        return;
    };
    let browser = browser();
    eternaltwin_login(&etw, &browser).await;
    doorward_login_to_eternaltwin(&etw, &browser).await;
    let client = eternaltwin_client(&etw, "rp_secret");

    let authorization = client.start_authorization().await.unwrap();
    let query: Vec<(String, String)> = authorization.url.query_pairs().into_owned().collect();
    assert!(query.contains(&("access_type".into(), "offline".into())));
    assert!(query.contains(&("scope".into(), "base".into())));
    assert_eq!(authorization.url.path(), "/oauth/authorize");
    let callback = eternaltwin_callback(&browser, &authorization.url).await;
    let sign_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .unwrap();
    assert!(sign_in.id_token.is_none());
    let token = sign_in.token;
    assert!(
        token.refresh_token().is_none(),
        "Eternaltwin issues no refresh token"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lifetime = token.expires_at().unwrap() - now;
    assert!(
        (999_999_000..=1_000_000_000).contains(&lifetime),
        "expires_in 1e9: {lifetime}"
    );

    let user = current_user(&client.authorized(token.clone()))
        .await
        .unwrap();
    // Eternaltwin capitalises the seeded username for the display name.
    assert!(user.display_name.eq_ignore_ascii_case("alice"), "{user:?}");
    assert_eq!(user.id.len(), 36, "a UUID: {}", user.id);

    // 200 {"type":"Guest"} for a token it does not know becomes InvalidToken.
    match current_user(&client.authorized(Token::new("not-a-token", None))).await {
        Err(ApiError::InvalidToken) => {}
        other => panic!("unknown token: {other:?}"),
    }
    // No refresh token to use.
    assert!(matches!(
        client.refresh(&token).await,
        Err(RefreshError::NoRefreshToken)
    ));

    // 422 {"code","message","extra"} for a garbage code: a typed error with the raw body.
    let authorization = client.start_authorization().await.unwrap();
    let mut callback = eternaltwin_callback(&browser, &authorization.url).await;
    callback.code = Some("abc".into());
    match client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
    {
        Err(FinishError::Token(TokenError::UnexpectedResponse { status, body })) => {
            assert_eq!(status, 422);
            assert!(body.contains("Q1010"), "{body}");
        }
        other => panic!("garbage code: {other:?}"),
    }

    // 401 Q0002 for a wrong secret.
    let wrong = eternaltwin_client(&etw, "not_the_secret");
    let authorization = wrong.start_authorization().await.unwrap();
    let callback = eternaltwin_callback(&browser, &authorization.url).await;
    match wrong
        .finish_authorization(&callback, Some(&authorization.state))
        .await
    {
        Err(FinishError::Token(TokenError::UnexpectedResponse { status, body })) => {
            assert_eq!(status, 401);
            assert!(body.contains("Q0002"), "{body}");
        }
        other => panic!("wrong secret: {other:?}"),
    }

    // A state tampered with on the way back.
    let authorization = client.start_authorization().await.unwrap();
    let mut callback = eternaltwin_callback(&browser, &authorization.url).await;
    callback.state = Some(format!("{}x", authorization.state));
    match client.finish_authorization(&callback, None).await {
        Err(FinishError::InvalidState(InvalidState::BadSignature)) => {}
        other => panic!("tampered state: {other:?}"),
    }

    // Discovery on Eternaltwin: no metadata (the backend alone answers 404; with its web
    // front-end, an HTML page), a clear error rather than a parse failure.
    let issuer = etw.url.as_str().trim_end_matches('/');
    let oidc = Client::builder(
        ProviderConfig::oidc(issuer, "doorward_rp@clients")
            .with_secret("rp_secret")
            .with_redirect_uri(CALLBACK.parse().unwrap()),
    )
    .build()
    .unwrap();
    match oidc.start_authorization().await {
        Err(StartError::Discovery(DiscoveryError::Status { status: 404, url })) => {
            assert!(
                url.ends_with("/.well-known/oauth-authorization-server"),
                "{url}"
            )
        }
        Err(StartError::Discovery(DiscoveryError::NotJson { content_type, .. })) => {
            assert_eq!(content_type, "text/html")
        }
        other => panic!("discovery on Eternaltwin: {other:?}"),
    }
}

/// The `blocking` wrappers, from plain synchronous code.
#[cfg(feature = "blocking")]
#[test]
fn blocking_client_against_eternaltwin() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(etw) = runtime.block_on(start_eternaltwin()) else {
        return;
    };
    let browser = browser();
    runtime.block_on(eternaltwin_login(&etw, &browser));
    let client =
        doorward_client::blocking::Client::new(eternaltwin_client(&etw, "rp_secret")).unwrap();
    let authorization = client.start_authorization().unwrap();
    let callback = runtime.block_on(eternaltwin_callback(&browser, &authorization.url));
    let sign_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .unwrap();
    let user = client.authorized(sign_in.token).eternaltwin_user().unwrap();
    assert!(user.display_name.eq_ignore_ascii_case("alice"), "{user:?}");
    assert!(matches!(
        client.finish_authorization(&callback, Some("another state")),
        Err(FinishError::InvalidState(InvalidState::Mismatch))
    ));
}

/// `doorward login --eternaltwin` (`DOORWARD_BIN`) with `--redirect-uri` the app's registered
/// loopback callback (Eternaltwin matches it exactly, port included), the signed-in `browser`
/// following the printed URL; then the kept token calls Eternaltwin's API.
async fn doorward_login_to_eternaltwin(etw: &Eternaltwin, browser: &reqwest::Client) {
    let Some(bin) = env_path("DOORWARD_BIN") else {
        return;
    };
    let store = std::env::temp_dir().join(format!("doorward-etw-login-{}.json", etw.cli_port));
    let redirect = format!("http://127.0.0.1:{}/callback", etw.cli_port);
    let args = [
        "--no-browser",
        "--eternaltwin",
        etw.url.as_str(),
        "--client-id",
        "doorward_cli@clients",
        "--client-secret",
        "cli_secret",
        "--redirect-uri",
        &redirect,
    ];
    let (mut login, _stderr, url) = doorward_login_until(&bin, &args, &store, |line| {
        line.starts_with(etw.url.as_str())
            .then(|| Url::parse(line).unwrap())
    })
    .await;
    let authorized = browser.get(url).send().await.unwrap();
    assert_eq!(authorized.status(), 303, "Eternaltwin authorize");
    let back = location(&authorized);
    assert!(back.as_str().starts_with(&redirect), "{back}");
    assert_eq!(browser.get(back).send().await.unwrap().status(), 200);
    let status = tokio::time::timeout(Duration::from_secs(30), login.wait())
        .await
        .expect("doorward login did not finish")
        .unwrap();
    assert!(status.success());
    let printed = doorward_token(&bin, &["print"], &store);
    assert!(printed.status.success());
    let access = String::from_utf8(printed.stdout).unwrap();
    let me: serde_json::Value = browser
        .get(etw.url.join("api/v1/auth/self").unwrap())
        .bearer_auth(access.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["type"], "AccessToken", "{me}");
    let _ = std::fs::remove_file(&store);
}
