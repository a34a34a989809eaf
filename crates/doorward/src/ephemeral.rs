//! `doorward serve --ephemeral`: a throwaway authorization server for other people's tests.
//! The store is SQLite in memory (the same engine and SQL as a real deployment; nothing is
//! written to disk), the port is a free one on 127.0.0.1 unless `--listen` says otherwise,
//! and the issuer is that address. Users and clients come from `--user USERNAME:PASSWORD`
//! and `--client NAME:SECRET:REDIRECT_URI`, turned into the configuration file's own tables
//! (`[seed.user.*]`, `[clients.*]`) so that they are checked exactly as in a file; a
//! `--config` file may add anything else. No metrics listener unless `--metrics-listen`.
//!
//! The start-up lines are the server's: a test waits for `listening on http://HOST:PORT`.

use anyhow::{bail, Context};
use toml::Value;

use crate::config::{Config, Overrides};
use crate::RunArgs;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let serve = args.serve;
    let listen = serve
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot listen there"))?;
    let address = listener.local_addr()?;
    let external_uri = serve
        .external_uri
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let extra = tables(&args.users, &args.clients)?;
    let config = Config::load_with(
        serve.config.as_deref(),
        &extra,
        Overrides {
            listen: Some(address.to_string()),
            metrics_listen: Some(serve.metrics_listen.unwrap_or_else(|| "off".to_owned())),
            external_uri: Some(external_uri),
            database: Some("sqlite::memory:".to_owned()),
            key_encryption_secret: None,
            insecure_allow_http: serve.insecure_allow_http,
        },
    )?;
    crate::serve::serve_on(config, listener).await
}

/// The `[seed.user.*]` and `[clients.*]` tables of the flags.
fn tables(users: &[String], clients: &[String]) -> anyhow::Result<String> {
    let quoted = |s: &str| Value::String(s.to_owned()).to_string();
    let mut text = String::new();
    for (i, user) in users.iter().enumerate() {
        let Some((username, password)) = user.split_once(':') else {
            bail!("--user {user}: write USERNAME:PASSWORD");
        };
        text.push_str(&format!(
            "[seed.user.flag_user_{i}]\nusername = {}\npassword = {}\n",
            quoted(username),
            quoted(password)
        ));
    }
    for client in clients {
        let mut parts = client.splitn(3, ':');
        let (Some(name), Some(secret), Some(redirect)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("--client {client}: write NAME:SECRET:REDIRECT_URI (SECRET or REDIRECT_URI may be empty)");
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            bail!("--client {client}: NAME is letters, digits, '_' and '-'");
        }
        let app_uri = match url::Url::parse(redirect) {
            Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {
                url.origin().ascii_serialization()
            }
            _ => "http://localhost".to_owned(),
        };
        text.push_str(&format!(
            "[clients.{name}]\ndisplay_name = {}\napp_uri = {}\n",
            quoted(name),
            quoted(&app_uri)
        ));
        match redirect {
            "" => text.push_str("redirect_uris = []\ngrant_types = [\"client_credentials\"]\n"),
            uri => text.push_str(&format!("redirect_uris = [{}]\n", quoted(uri))),
        }
        match secret {
            "" => text.push_str("token_endpoint_auth_method = \"none\"\n"),
            secret => {
                text.push_str(&format!("secret = {}\n", quoted(secret)));
                if !redirect.is_empty() {
                    text.push_str(
                        "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\"]\n",
                    );
                }
            }
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::tables;

    #[test]
    fn flags_become_the_files_tables_with_their_values_quoted() {
        let text = tables(
            &["ada:pass \"word\" 1".into()],
            &[
                "web:s3cret-s3cret:http://127.0.0.1:8000/cb".into(),
                "spa::http://localhost:3000/cb".into(),
                "svc:svc-secret-1:".into(),
            ],
        )
        .unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            value["seed"]["user"]["flag_user_0"]["password"].as_str(),
            Some("pass \"word\" 1")
        );
        assert_eq!(
            value["clients"]["web"]["app_uri"].as_str(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            value["clients"]["spa"]["token_endpoint_auth_method"].as_str(),
            Some("none")
        );
        assert_eq!(
            value["clients"]["svc"]["secret"].as_str(),
            Some("svc-secret-1")
        );
        assert!(tables(&["nocolon".into()], &[]).is_err());
        assert!(tables(&[], &["a b:x:y".into()]).is_err());
        assert!(tables(&[], &["only-name".into()]).is_err());
    }
}
