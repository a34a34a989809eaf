//! The device flow (RFC 8628) against node-oidc-provider (`deviceFlow` on), by doorward-client
//! and by `doorward login --device`: the client starts it and polls; the user's side goes
//! through node-oidc-provider's own pages (the user code, its confirmation, its development
//! sign-in and consent) over HTTP. Also `doorward login` with its loopback redirect (RFC 8252
//! §7.3) to node-oidc-provider's native client.

use doorward_client::{AuthMethod, Client, DevicePoll, ProviderConfig};
use url::Url;

use super::doorward::input;
use super::{
    browser, doorward_login_until, doorward_token, location, node_sign_in_until, Decision, NodeOidc,
};

pub(super) async fn device_flow(node: &NodeOidc) {
    let mut config = ProviderConfig::oidc(&node.issuer, "rp-device").with_scopes([
        "openid",
        "profile",
        "offline_access",
    ]);
    config.auth_method = AuthMethod::None;
    let client = Client::builder(config).build().unwrap();
    let mut device = client.start_device_authorization(&[]).await.unwrap();
    assert!(matches!(
        client.poll_device(&mut device).await.unwrap(),
        DevicePoll::Pending
    ));

    approve_on_node(&device.verification_uri, &device.user_code).await;

    let token = client.wait_for_device(&mut device).await.unwrap();
    assert!(token.id_token().is_some(), "openid was asked for");
    assert!(
        token.refresh_token().is_some(),
        "offline_access was asked for"
    );
    let refreshed = client.refresh(&token).await.unwrap();
    assert_ne!(refreshed.access_token(), token.access_token());

    doorward_login_device(node).await;
}

/// `doorward login --device` (`DOORWARD_BIN`) against node-oidc-provider, then its token tools.
async fn doorward_login_device(node: &NodeOidc) {
    let Some(bin) = super::env_path("DOORWARD_BIN") else {
        return;
    };
    let store =
        std::env::temp_dir().join(format!("doorward-node-login-{}.json", std::process::id()));
    let args = [
        "--device",
        "--issuer",
        &node.issuer,
        "--client-id",
        "rp-device",
        "--scope",
        "openid",
        "--scope",
        "offline_access",
    ];
    let (mut login, _stderr, (uri, code)) = doorward_login_until(&bin, &args, &store, |line| {
        let rest = line.strip_prefix("On another device, open ")?;
        let (uri, code) = rest.split_once(" and enter the code ")?;
        Some((uri.to_owned(), code.to_owned()))
    })
    .await;
    approve_on_node(&uri, &code).await;
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), login.wait())
        .await
        .expect("doorward login did not finish")
        .unwrap();
    assert!(status.success());
    let run = |args: &[&str]| doorward_token(&bin, args, &store);
    let shown: serde_json::Value = serde_json::from_slice(&run(&["show"]).stdout).unwrap();
    assert_eq!(shown["refresh_token"], true, "{shown}");
    let before = run(&["print"]).stdout;
    assert!(run(&["refresh"]).status.success());
    assert_ne!(run(&["print"]).stdout, before);
    let _ = std::fs::remove_file(&store);
}

/// The user's side on node-oidc-provider's pages: the user code, its confirmation, the
/// development sign-in and consent, up to the success page.
async fn approve_on_node(verification_uri: &str, user_code: &str) {
    let user = browser();
    let entry = Url::parse(verification_uri).unwrap();
    let page = user
        .get(entry.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let confirm = user
        .post(entry.clone())
        .form(&[
            ("xsrf", input(&page, "xsrf").as_str()),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains(user_code), "{confirm}");
    let confirmed = user
        .post(entry)
        .form(&[
            ("xsrf", input(&confirm, "xsrf").as_str()),
            ("user_code", input(&confirm, "user_code").as_str()),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        confirmed.status().is_redirection(),
        "{}",
        confirmed.status()
    );
    // node-oidc-provider's development sign-in and consent, then its success page.
    let mut url = location(&confirmed);
    for _ in 0..12 {
        let response = user.get(url.clone()).send().await.unwrap();
        if response.status().is_redirection() {
            url = location(&response);
            continue;
        }
        let page = response.text().await.unwrap();
        let form: &[(&str, &str)] = if page.contains("name=\"login\"") {
            &[
                ("prompt", "login"),
                ("login", "device-user"),
                ("password", "any"),
            ]
        } else if page.contains("name=\"prompt\" value=\"consent\"") {
            &[("prompt", "consent")]
        } else {
            assert!(page.contains("Sign-in Success"), "at {url}: {page}");
            break;
        };
        let posted = user.post(url.clone()).form(form).send().await.unwrap();
        assert!(
            posted.status().is_redirection(),
            "form at {url}: {}",
            posted.status()
        );
        url = location(&posted);
    }
}

/// `doorward login` (`DOORWARD_BIN`) with a loopback redirect on a free port to
/// node-oidc-provider's native client (`rp-cli`, whose redirect URI matches on any port): the
/// printed URL is followed through node-oidc-provider's pages to the command's listener.
pub(super) async fn doorward_login_loopback(node: &NodeOidc) {
    let Some(bin) = super::env_path("DOORWARD_BIN") else {
        return;
    };
    let store = std::env::temp_dir().join(format!(
        "doorward-node-loopback-{}.json",
        std::process::id()
    ));
    let args = [
        "--no-browser",
        "--issuer",
        &node.issuer,
        "--client-id",
        "rp-cli",
        "--scope",
        "openid",
        "--scope",
        "offline_access",
    ];
    let (mut login, _stderr, url) = doorward_login_until(&bin, &args, &store, |line| {
        (line.starts_with(&format!("{}/", node.issuer)) && line.contains("/auth?"))
            .then(|| Url::parse(line).unwrap())
    })
    .await;
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    let user = browser();
    let back = node_sign_in_until(&user, &url, "cli-user", Decision::Approve, &redirect).await;
    let done = user.get(back).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), login.wait())
        .await
        .expect("doorward login did not finish")
        .unwrap();
    assert!(status.success());
    let run = |args: &[&str]| doorward_token(&bin, args, &store);
    let shown: serde_json::Value = serde_json::from_slice(&run(&["show"]).stdout).unwrap();
    assert_eq!(shown["id_token"], true, "{shown}");
    assert_eq!(shown["refresh_token"], true, "{shown}");
    let access = String::from_utf8(run(&["print"]).stdout).unwrap();
    let info = user
        .get(format!("{}/me", node.issuer))
        .bearer_auth(access.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        200,
        "node-oidc-provider's userinfo accepts the token"
    );
    assert!(run(&["refresh"]).status.success());
    let _ = std::fs::remove_file(&store);
}
