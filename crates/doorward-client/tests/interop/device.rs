//! The device authorization grant (RFC 8628) against `doorward serve` (`DOORWARD_BIN`, built
//! by `scripts/test.sh`): the client starts it and polls; the user's side (sign-in, the code,
//! Allow or Deny) is driven over HTTP through Doorward's pages, CSRF tokens and all.

use std::process::Stdio;
use std::time::Duration;

use doorward_client::{AuthMethod, Client, DeviceError, DevicePoll, ProviderConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{browser, env_path, free_port};

struct Doorward {
    origin: String,
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

[clients.tv]
display_name = "TV"
app_uri = "http://localhost:8000"
redirect_uris = []
token_endpoint_auth_method = "none"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]

[seed.user.tess]
username = "tess"
password = "tess-password-1"
"#;

async fn start_doorward() -> Option<Doorward> {
    let bin = env_path("DOORWARD_BIN")?;
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("doorward-client-device-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("doorward.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let origin = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(bin)
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
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(&wanted) {
                return;
            }
        }
        panic!("doorward serve exited before listening");
    })
    .await
    .expect("doorward serve did not listen within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Doorward {
        origin,
        dir,
        _child: child,
    })
}

/// The value of the hidden or text input `name` of a Doorward page.
fn input(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no input {name} in {page}"));
    let tag_start = page[..at].rfind('<').unwrap();
    let tag = &page[tag_start..at + page[at..].find('>').unwrap()];
    let value = tag.split("value=\"").nth(1).unwrap_or("\"");
    value[..value.find('"').unwrap()].to_owned()
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
