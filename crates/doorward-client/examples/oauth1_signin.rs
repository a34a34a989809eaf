//! OAuth 1.0a sign-in from a terminal with `doorward_client::oauth1`: temporary credentials,
//! the authorization URL printed for the user, the callback URL read back from standard input,
//! token credentials, then one signed GET and one signed form POST to an API.
//!
//! Configured by the environment: `OAUTH1_REQUEST_TOKEN_URL`, `OAUTH1_AUTHORIZE_URL`,
//! `OAUTH1_ACCESS_TOKEN_URL`, `OAUTH1_CONSUMER_KEY`, `OAUTH1_CONSUMER_SECRET`, `OAUTH1_CALLBACK`,
//! `OAUTH1_API_URL`, and optionally `OAUTH1_METHOD` (`HMAC-SHA1`, `RSA-SHA1` with
//! `OAUTH1_RSA_KEY` a PEM file, `PLAINTEXT`), `OAUTH1_PLACEMENT` (`header`, `body`, `query`)
//! and `OAUTH1_REALM`. Prints one JSON object per step on standard output.

use std::io::BufRead;

use doorward_client::oauth1::{Oauth1Client, Oauth1Config, Placement, SignatureMethod};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn url(name: &str) -> url::Url {
    env(name).parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let method = match std::env::var("OAUTH1_METHOD").as_deref() {
        Ok("RSA-SHA1") => {
            SignatureMethod::rsa_sha1_from_pem(&std::fs::read_to_string(env("OAUTH1_RSA_KEY"))?)?
        }
        Ok("PLAINTEXT") => SignatureMethod::Plaintext,
        Ok("HMAC-SHA1") | Err(_) => SignatureMethod::HmacSha1,
        Ok(other) => return Err(format!("OAUTH1_METHOD {other}").into()),
    };
    let placement = match std::env::var("OAUTH1_PLACEMENT").as_deref() {
        Ok("body") => Placement::Body,
        Ok("query") => Placement::Query,
        _ => Placement::Header,
    };
    let mut config = Oauth1Config::new(
        env("OAUTH1_CONSUMER_KEY"),
        std::env::var("OAUTH1_CONSUMER_SECRET").unwrap_or_default(),
        url("OAUTH1_REQUEST_TOKEN_URL"),
        url("OAUTH1_AUTHORIZE_URL"),
        url("OAUTH1_ACCESS_TOKEN_URL"),
    )
    .with_method(method)
    .with_placement(placement);
    if let Ok(realm) = std::env::var("OAUTH1_REALM") {
        config = config.with_realm(realm);
    }
    let client = Oauth1Client::new(config)?;

    let temporary = client
        .request_temporary_credentials(&env("OAUTH1_CALLBACK"))
        .await?;
    let authorize = client.authorization_url(&temporary);
    println!("{}", serde_json::json!({ "authorize": authorize.as_str() }));

    let mut callback = String::new();
    std::io::stdin().lock().read_line(&mut callback)?;
    let callback: url::Url = callback.trim().parse()?;
    let verifier = temporary.verifier_from_callback(callback.query().unwrap_or(""))?;
    let token = client
        .request_token_credentials(&temporary, &verifier)
        .await?;
    let extra: serde_json::Map<String, serde_json::Value> = token
        .extra
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into()))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "token": token.token, "extra": extra })
    );

    let api = url("OAUTH1_API_URL");
    // A GET has no body for the parameters (RFC 5849 §3.5.2): with `body`, only the POST.
    if placement == Placement::Body {
        println!("{}", serde_json::json!({ "get": null }));
    } else {
        let got = client.get(&api, &token).await?;
        println!(
            "{}",
            serde_json::json!({ "get": got.status.as_u16(), "body": got.text() })
        );
    }
    let form = vec![("note".to_owned(), "Dogs, Cats & Mice ☃".to_owned())];
    let posted = client.post_form(&api, &form, &token).await?;
    println!(
        "{}",
        serde_json::json!({ "post": posted.status.as_u16(), "body": posted.text() })
    );
    Ok(())
}
