//! doorward-client against `doorward serve` (`DOORWARD_BIN`, built by `scripts/test.sh`): the
//! device authorization grant (RFC 8628: the client starts it and polls) and pushed
//! authorization requests (RFC 9126: pushed because the provider requires it). The user's side
//! (sign-in, consent, the device code, Allow or Deny) is driven over HTTP through Doorward's
//! pages, CSRF tokens and all. Then both again with DPoP (RFC 9449), the server requiring
//! nonces: tokens bound to the client's key, presented with proofs. And token exchange (RFC
//! 8693): a service trades the user's token for its own, which the user's account page lists
//! and revokes. And the JWT bearer grant (RFC 7523): a service signs its own assertions, for
//! itself and for a user.

use std::process::Stdio;
use std::time::Duration;

use doorward_client::{
    Algorithm, AuthMethod, Callback, Client, DeviceError, DevicePoll, DpopKey, JwtBearer,
    PrivateKey, ProviderConfig, TokenError, TokenExchange,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{browser, env_path, free_port, location, CALLBACK};

pub(super) struct Doorward {
    pub(super) origin: String,
    dir: std::path::PathBuf,
    _child: Child,
}

impl Drop for Doorward {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const CONFIG: &str = r#"
[oauth]
scopes = ["base", "openid", "profile"]
require_pushed_authorization_requests = true
dpop_require_nonce = true
resources = ["https://orders.example/"]

[clients.tv]
display_name = "TV"
app_uri = "http://localhost:8000"
redirect_uris = []
token_endpoint_auth_method = "none"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]

[keys]
algorithms = ["ES256", "RS256", "Ed25519"]

[clients.par]
display_name = "Pushing app"
app_uri = "http://localhost:8000"
callback_uri = "http://localhost:8000/oauth/callback"
secret = "par_secret_0123456789"
# RFC 9864's fully-specified name: doorward-client validates these ID tokens.
id_token_signed_response_alg = "Ed25519"

[clients.orders]
display_name = "Orders service"
app_uri = "http://localhost:8000"
redirect_uris = []
secret = "orders_secret_0123456789"
grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
resources = ["https://orders.example/"]
# An API the user's tokens are sent to: it may pass them on.
resource_server = true

[clients.reports]
display_name = "Reports service"
app_uri = "http://localhost:8000"
redirect_uris = []
token_endpoint_auth_method = "private_key_jwt"
jwks = '{"keys": [{"crv": "P-256", "x": "6qhq7ODrajSU9bEN2tl9nK-tfa4sni_HAIbDT4DYJdE", "y": "643YpMMmqTNiA3w6udRIGLCtykuhaDS0yCF25_yE4aA", "kty": "EC", "kid": "jb-1"}]}'
grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
# Its own assertions may name users (Google's domain-wide delegation).
assertion_issuers = [{ issuer = "reports@clients", users = true }]
resource_server = true

[clients.webapp]
display_name = "Web app"
app_uri = "http://127.0.0.1"
# RFC 8252 §7.3: a loopback redirect URI without a port matches any port.
redirect_uris = ["http://127.0.0.1/callback/doorward"]
secret = "webapp_secret_0123456789"

[seed.user.tess]
username = "tess"
password = "tess-password-1"
"#;

/// The private half of the `reports` client's key (a test key, nothing else uses it).
const REPORTS_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPbA9J60TjgoPIo/Y
lenS5JqzA2U7w7BGchEnBNMJQoChRANCAATqqGrs4OtqNJT1sQ3a2X2cr619riye
L8cAhsNPgNgl0euN2KTDJqkzYgN8OrnUSBiwrcpLoWg0tMghduf8hOGg
-----END PRIVATE KEY-----
";

pub(super) async fn start_doorward() -> Option<Doorward> {
    let bin = env_path("DOORWARD_BIN")?;
    // The port is picked free, then bound by the child: another process may take it in
    // between, so a server that exits before listening is started again on another port.
    for attempt in 1..=3 {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "doorward-client-device-{}-{port}-{attempt}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("doorward.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let origin = format!("http://127.0.0.1:{port}");
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--external-uri",
                &origin,
            ])
            .arg("--database")
            .arg(format!("sqlite:{}", dir.join("db.sqlite").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start doorward serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wanted = format!("listening on {origin}");
        let listening = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(&wanted) {
                    return true;
                }
            }
            false
        })
        .await
        .expect("doorward serve did not listen within 60 s");
        if !listening {
            eprintln!("doorward serve exited before listening on port {port} (attempt {attempt})");
            let _ = std::fs::remove_dir_all(&dir);
            continue;
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        return Some(Doorward {
            origin,
            dir,
            _child: child,
        });
    }
    panic!("doorward serve exited before listening, three times");
}

/// The value of the hidden or text input `name` of a page (Doorward's, node-oidc-provider's).
pub(super) fn input(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no input {name} in {page}"));
    let tag_start = page[..at].rfind('<').unwrap();
    let tag = &page[tag_start..at + page[at..].find('>').unwrap()];
    let value = tag.split("value=\"").nth(1).unwrap_or("\"");
    // The page escapes what it writes (maud): undo the entities it uses.
    value[..value.find('"').unwrap()]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Signs tess in with `user` at the sign-in page `login` (a URL with its `next`); answers
/// where the sign-in sends the browser.
async fn sign_in(user: &reqwest::Client, origin: &str, login: &str) -> url::Url {
    let page = user.get(login).send().await.unwrap().text().await.unwrap();
    let signed_in = user
        .post(format!("{origin}/login"))
        .form(&[
            ("csrf", input(&page, "csrf").as_str()),
            ("next", input(&page, "next").as_str()),
            ("username", "tess"),
            ("password", "tess-password-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    location(&signed_in)
}

/// The user signs in at `/device`, types `user_code` and answers.
async fn answer(origin: &str, user_code: &str, approve: bool) {
    let user = browser();
    let response = user.get(format!("{origin}/device")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let login = user
        .get(format!("{origin}/login?next=%2Fdevice"))
        .send()
        .await
        .unwrap();
    let page = login.text().await.unwrap();
    let signed_in = user
        .post(format!("{origin}/login"))
        .form(&[
            ("csrf", input(&page, "csrf").as_str()),
            ("next", "/device"),
            ("username", "tess"),
            ("password", "tess-password-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let page = user
        .get(format!("{origin}/device"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let typed = user_code.to_lowercase();
    let question = user
        .post(format!("{origin}/device"))
        .form(&[
            ("csrf", input(&page, "csrf").as_str()),
            ("user_code", &typed),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(question.contains("Allow TV on your device?"), "{question}");
    let decision = if approve { "approve" } else { "deny" };
    let done = user
        .post(format!("{origin}/device"))
        .form(&[
            ("csrf", input(&question, "csrf").as_str()),
            ("user_code", input(&question, "user_code").as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
}

#[tokio::test]
async fn device_flow_against_doorward_serve() {
    let Some(doorward) = start_doorward().await else {
        return;
    };
    let mut config =
        ProviderConfig::oidc(&doorward.origin, "tv@clients").with_scopes(["openid", "base"]);
    config.auth_method = AuthMethod::None;
    let client = Client::builder(config).build().unwrap();

    let mut device = client.start_device_authorization(&[]).await.unwrap();
    assert_eq!(
        device.verification_uri,
        format!("{}/device", doorward.origin)
    );
    assert_eq!(device.user_code.len(), 9);
    assert_eq!(device.interval, 5);
    assert!(matches!(
        client.poll_device(&mut device).await.unwrap(),
        DevicePoll::Pending
    ));
    // Sooner than the interval: slow_down, and the interval grows (RFC 8628 §3.5).
    assert!(matches!(
        client.poll_device(&mut device).await.unwrap(),
        DevicePoll::SlowDown
    ));
    assert_eq!(device.interval, 10);
    device.interval = 5;
    answer(&doorward.origin, &device.user_code, true).await;
    let token = client.wait_for_device(&mut device).await.unwrap();
    assert!(token.id_token().is_some(), "openid was asked for");
    assert!(token.refresh_token().is_some());

    // Denied: the next poll says so.
    let mut denied = client.start_device_authorization(&["base"]).await.unwrap();
    answer(&doorward.origin, &denied.user_code, false).await;
    assert!(matches!(
        client.poll_device(&mut denied).await,
        Err(DeviceError::Denied)
    ));
}

#[tokio::test]
async fn pushed_requests_when_doorward_serve_requires_them() {
    let Some(doorward) = start_doorward().await else {
        return;
    };
    let config = ProviderConfig::oidc(&doorward.origin, "par@clients")
        .with_secret("par_secret_0123456789")
        .with_redirect_uri(CALLBACK.parse().unwrap())
        .with_scopes(["openid", "base"]);
    let client = Client::builder(config).build().unwrap();
    // The server requires pushed requests: the client pushes without being told to.
    let metadata = client.metadata().await.unwrap();
    assert!(metadata.pushed_authorization_request_endpoint.is_some());
    assert!(metadata.require_pushed_authorization_requests);

    let authorization = client.start_authorization().await.unwrap();
    let keys: Vec<String> = authorization
        .url
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(keys, ["client_id", "request_uri"]);

    let user = browser();
    let callback = approve_in_browser(&user, &doorward.origin, &authorization.url).await;
    let sign_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .unwrap();
    assert!(sign_in.id_token.is_some());
    let header = sign_in.token.id_token().unwrap().split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "Ed25519", "validated by doorward-client");

    // A request sent without pushing gets invalid_request at the redirect URI.
    let mut plain = authorization.url.clone();
    plain.set_query(Some(
        "response_type=code&client_id=par%40clients&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback&state=s",
    ));
    let refused = user.get(plain).send().await.unwrap();
    let error = Callback::from_uri(location(&refused).as_str());
    assert_eq!(error.error.as_deref(), Some("invalid_request"));
}

/// Signs `tess` in and approves the consent page for the authorization at `url`; the callback.
async fn approve_in_browser(user: &reqwest::Client, origin: &str, url: &url::Url) -> Callback {
    Callback::from_uri(
        approved_location(user, origin, url, "Pushing app")
            .await
            .as_str(),
    )
}

/// Tess signs in and approves `app` on Doorward's pages, from the authorization URL `url`: where
/// the approval sends the browser (the callback).
pub(super) async fn approved_location(
    user: &reqwest::Client,
    origin: &str,
    url: &url::Url,
    app: &str,
) -> url::Url {
    let to_login = user.get(url.clone()).send().await.unwrap();
    // Signed in and approved already: straight back to the client.
    if to_login.status() == 302 {
        return location(&to_login);
    }
    assert_eq!(to_login.status(), 303, "{}", location(&to_login));
    let back = sign_in(user, origin, location(&to_login).as_str()).await;
    let consent = user.get(back).send().await.unwrap().text().await.unwrap();
    assert!(consent.contains(app), "{consent}");
    let approved = user
        .post(format!("{origin}/oauth/authorize"))
        .form(&[
            ("csrf", input(&consent, "csrf").as_str()),
            ("request", input(&consent, "request").as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    location(&approved)
}

#[tokio::test]
async fn dpop_against_doorward_serve_with_nonces() {
    let Some(doorward) = start_doorward().await else {
        return;
    };
    let key = DpopKey::generate();
    // A pushed request with a proof (RFC 9449 §10.1), then the code redeemed with a proof: the
    // server requires nonces, so each goes through one use_dpop_nonce round trip.
    let config = ProviderConfig::oidc(&doorward.origin, "par@clients")
        .with_secret("par_secret_0123456789")
        .with_redirect_uri(CALLBACK.parse().unwrap())
        .with_scopes(["openid", "base"]);
    let client = Client::builder(config).dpop(key.clone()).build().unwrap();
    let metadata = client.metadata().await.unwrap();
    assert!(metadata
        .extra
        .get("dpop_signing_alg_values_supported")
        .is_some_and(|algs| algs
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "ES256"))));
    let authorization = client.start_authorization().await.unwrap();
    let user = browser();
    let callback = approve_in_browser(&user, &doorward.origin, &authorization.url).await;
    let sign_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .unwrap();
    let token = sign_in.token;
    assert_eq!(token.token_type(), "DPoP");
    let info = client.userinfo(&token).await.unwrap();
    assert_eq!(info.subject, sign_in.id_token.unwrap().subject);
    let seen = client.introspect(token.access_token()).await.unwrap();
    assert_eq!(seen.extra["cnf"]["jkt"], key.thumbprint());
    assert_eq!(seen.token_type.as_deref(), Some("DPoP"));

    // The token as a bearer token: refused (RFC 9449 §7.2).
    let bearer = user
        .get(format!("{}/oauth/userinfo", doorward.origin))
        .bearer_auth(token.access_token())
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    // A replayed proof: refused.
    let url: url::Url = format!("{}/oauth/userinfo", doorward.origin)
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let proof = key
        .proof("GET", &url, Some(token.access_token()), None, now)
        .unwrap();
    let call = || {
        user.get(url.clone())
            .header("authorization", format!("DPoP {}", token.access_token()))
            .header("dpop", &proof)
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);
    let replayed = call().await.unwrap();
    assert_eq!(replayed.status(), 401);
    let challenge = replayed.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");

    let refreshed = client.refresh(&token).await.unwrap();
    assert_eq!(refreshed.token_type(), "DPoP");

    // The device grant with DPoP: the public client's refresh token is bound to its key.
    let mut config =
        ProviderConfig::oidc(&doorward.origin, "tv@clients").with_scopes(["openid", "base"]);
    config.auth_method = AuthMethod::None;
    config.dpop = true;
    let tv = Client::builder(config.clone()).build().unwrap();
    let mut device = tv.start_device_authorization(&[]).await.unwrap();
    answer(&doorward.origin, &device.user_code, true).await;
    let token = tv.wait_for_device(&mut device).await.unwrap();
    assert_eq!(token.token_type(), "DPoP");
    tv.userinfo(&token).await.unwrap();
    let thief = Client::builder(config).build().unwrap();
    assert!(
        thief.refresh(&token).await.is_err(),
        "another key cannot use the bound refresh token"
    );
    assert_eq!(tv.refresh(&token).await.unwrap().token_type(), "DPoP");
}

#[tokio::test]
async fn token_exchange_against_doorward_serve_and_the_account_page() {
    let Some(doorward) = start_doorward().await else {
        return;
    };
    let config = ProviderConfig::oidc(&doorward.origin, "par@clients")
        .with_secret("par_secret_0123456789")
        .with_redirect_uri(CALLBACK.parse().unwrap())
        .with_scopes(["openid", "base"]);
    let app = Client::builder(config).build().unwrap();
    let authorization = app.start_authorization().await.unwrap();
    let user = browser();
    let callback = approve_in_browser(&user, &doorward.origin, &authorization.url).await;
    let users_token = app
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .unwrap()
        .token;

    let service = Client::builder(
        ProviderConfig::oidc(&doorward.origin, "orders@clients")
            .with_secret("orders_secret_0123456789"),
    )
    .build()
    .unwrap();
    let metadata = service.metadata().await.unwrap();
    assert!(metadata.extra["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "urn:ietf:params:oauth:grant-type:token-exchange"));
    let exchanged = service
        .exchange_token(
            users_token.access_token(),
            &TokenExchange::for_resource("https://orders.example/").with_scopes(["base"]),
        )
        .await
        .unwrap();
    assert!(exchanged.refresh_token().is_none());
    let seen = service.introspect(exchanged.access_token()).await.unwrap();
    assert!(seen.active);
    assert_eq!(seen.extra["act"]["sub"], "orders@clients");
    assert_eq!(seen.scope.as_deref(), Some("base"));

    // Asking for more than the user's token had: refused, nothing issued.
    match service
        .exchange_token(
            users_token.access_token(),
            &TokenExchange::for_resource("https://orders.example/").with_scopes(["profile"]),
        )
        .await
    {
        Err(TokenError::Provider { error, .. }) => {
            assert_eq!(error.code, Some(doorward_client::ErrorCode::InvalidScope))
        }
        other => panic!("a wider scope: {other:?}"),
    }
    // The user's own application may not exchange (its grant types do not name it).
    assert!(app
        .exchange_token(users_token.access_token(), &TokenExchange::default())
        .await
        .is_err());

    // The account page lists the service and revokes it.
    let page = user
        .get(format!("{}/account", doorward.origin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let section = page
        .split("Services acting for you")
        .nth(1)
        .unwrap_or_else(|| panic!("no delegation listed: {page}"));
    assert!(section.contains("Orders service"), "{section}");
    let revoked = user
        .post(format!("{}/account/delegations/revoke", doorward.origin))
        .form(&[
            ("csrf", input(section, "csrf").as_str()),
            ("client_id", input(section, "client_id").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 303);
    assert!(
        !service
            .introspect(exchanged.access_token())
            .await
            .unwrap()
            .active
    );
    // The user's own token is untouched.
    assert!(app.userinfo(&users_token).await.is_ok());
    // Without the CSRF token the form is refused (403).
    let forged = user
        .post(format!("{}/account/delegations/revoke", doorward.origin))
        .form(&[("client_id", "00000000-0000-0000-0000-000000000000")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn jwt_bearer_grant_against_doorward_serve() {
    let Some(doorward) = start_doorward().await else {
        return;
    };
    let key = PrivateKey::from_pem(
        Algorithm::ES256,
        REPORTS_KEY.as_bytes(),
        Some("jb-1".into()),
    )
    .unwrap();
    // The assertion is the client's proof (RFC 7523 §3.1): no other authentication.
    let mut config = ProviderConfig::oidc(&doorward.origin, "reports@clients");
    config.auth_method = AuthMethod::None;
    let reports = Client::builder(config).build().unwrap();
    let own = reports
        .jwt_bearer_grant(&key, &JwtBearer::default().with_scopes(["base"]))
        .await
        .unwrap();
    assert!(own.refresh_token().is_none());
    // For tess, by username; the same client introspects it with its key (private_key_jwt).
    let for_tess = reports
        .jwt_bearer_grant(
            &key,
            &JwtBearer::for_subject("tess").with_scopes(["openid", "profile"]),
        )
        .await
        .unwrap();
    let mut config = ProviderConfig::oidc(&doorward.origin, "reports@clients");
    config.auth_method = AuthMethod::PrivateKeyJwt(key.clone());
    let authenticated = Client::builder(config).build().unwrap();
    let seen = authenticated.introspect(own.access_token()).await.unwrap();
    assert!(seen.active);
    assert_eq!(seen.sub.as_deref(), Some("reports@clients"));
    let seen = authenticated
        .introspect(for_tess.access_token())
        .await
        .unwrap();
    assert_eq!(seen.username.as_deref(), Some("tess"), "{seen:?}");
    // With the client authenticated besides, the same grant.
    assert!(authenticated
        .jwt_bearer_grant(&key, &JwtBearer::for_subject("tess"))
        .await
        .is_ok());
    // A user who does not exist, and an assertion for another audience: invalid_grant.
    for request in [
        JwtBearer::for_subject("nobody"),
        JwtBearer::default().with_audience("https://elsewhere.example/token"),
    ] {
        match reports.jwt_bearer_grant(&key, &request).await {
            Err(TokenError::Provider { error, .. }) => {
                assert_eq!(error.code, Some(doorward_client::ErrorCode::InvalidGrant))
            }
            other => panic!("{request:?}: {other:?}"),
        }
    }
}
