//! `doorward serve --ephemeral` from a `cargo test`, as the README shows it: started with a
//! client from a flag, its issuer read from the `listening on` line, used at once by
//! doorward-client (discovery, `client_credentials`, introspection), stopped with the test.

use std::time::Duration;

use doorward_client::{Client, ProviderConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::env_path;

#[tokio::test]
async fn an_ephemeral_doorward_serves_a_test_at_once() {
    let Some(bin) = env_path("DOORWARD_BIN") else {
        return;
    };
    // The README's snippet, from here to `issuer`.
    let mut server = Command::new(bin)
        .args(["serve", "--ephemeral", "--client", "svc:svc-secret-1:"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start doorward serve --ephemeral");
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let issuer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(origin) = line.strip_prefix("listening on ") {
                return origin.to_owned();
            }
        }
        panic!("doorward exited before listening");
    })
    .await
    .expect("listening within 30 s");

    let config = ProviderConfig::oidc(&issuer, "svc@clients").with_secret("svc-secret-1");
    let client = Client::builder(config)
        .build()
        .expect("a valid configuration");
    let token = client.client_credentials(&[]).await.expect("a token");
    assert!(!token.access_token().is_empty());
    let discovered = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .expect("metadata")
        .json::<serde_json::Value>()
        .await
        .expect("JSON");
    assert_eq!(discovered["issuer"], issuer.as_str());
    server.kill().await.expect("stopped");
}
