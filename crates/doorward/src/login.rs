//! `doorward login` (sign in to a provider from a terminal, on `doorward-client`) and
//! `doorward token show|print|refresh|revoke|introspect` (the tokens it keeps).
//!
//! - **Which provider**: `--issuer URL` (OpenID Connect discovery), `--eternaltwin URL` (the
//!   Eternaltwin preset), with `--client-id` (and `--client-secret` for a confidential client:
//!   a CLI is usually a public one, PKCE S256 standing in for the secret); or `--provider NAME`
//!   from a providers TOML (`--providers FILE`, doorward-client's `[providers.NAME]` tables).
//! - **How**: a loopback redirect (RFC 8252 §7.3): a listener on `127.0.0.1` on a free port,
//!   the redirect URI `http://127.0.0.1:PORT/callback`, PKCE, `state`; the URL is printed (and
//!   opened with `xdg-open` unless `--no-browser`). `--device` uses the device authorization
//!   grant instead (RFC 8628), for an SSH session: the code and the address are printed, and
//!   the command polls.
//! - **Where the tokens go** (`login/keep.rs`): a JSON file only the user can read (0600, in a
//!   0700 directory): `--store`, else `$DOORWARD_TOKENS`, else
//!   `$XDG_CONFIG_HOME/doorward/tokens.json` (or `~/.config/…`), one entry per `--name`
//!   (default: the issuer's or the Eternaltwin URL's origin) with what is needed to refresh
//!   them; the tokens themselves in the OS keyring when one answers (`--no-keyring`: in the
//!   file). A client secret given at login is kept with the provider in the file, for
//!   refreshes.
//! - **`token print`** writes just the access token on stdout (for `$(doorward token print)`),
//!   refreshing it first when it expires within a minute.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use doorward_client::{Callback, Client, ProviderConfig, Token};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

mod keep;

use keep::{Kept, Place};

/// How long `doorward login` waits for the browser's callback.
const LOOPBACK_WAIT: Duration = Duration::from_secs(600);

/// Where the provider is and which client the CLI is.
#[derive(clap::Args)]
pub struct ProviderArgs {
    /// The provider's issuer (OpenID Connect discovery).
    #[arg(long, conflicts_with_all = ["eternaltwin", "provider"])]
    issuer: Option<String>,
    /// An Eternaltwin server's URL (the Eternaltwin preset: its paths, Basic, scope `base`).
    #[arg(long, conflicts_with = "provider")]
    eternaltwin: Option<Url>,
    /// A provider of the providers TOML (`--providers`), by its name.
    #[arg(long, requires = "providers")]
    provider: Option<String>,
    /// The providers TOML (doorward-client's `[providers.NAME]` tables).
    #[arg(long)]
    providers: Option<PathBuf>,
    /// The client's id at the provider (not with --provider: the file names it).
    #[arg(long, required_unless_present = "provider")]
    client_id: Option<String>,
    /// The client's secret, for a confidential client (kept in the token file for refreshes).
    #[arg(long, env = "DOORWARD_CLIENT_SECRET")]
    client_secret: Option<String>,
}

#[derive(clap::Args)]
pub struct StoreArgs {
    /// The token file (default: $DOORWARD_TOKENS, else ~/.config/doorward/tokens.json).
    #[arg(long, env = "DOORWARD_TOKENS")]
    store: Option<PathBuf>,
    /// The entry in the token file (default: the provider's origin at login; the only entry,
    /// or an error when there are several, otherwise).
    #[arg(long)]
    name: Option<String>,
    /// Keep the token in the file even where an OS keyring (the Secret Service) answers.
    #[arg(
        long,
        env = "DOORWARD_NO_KEYRING",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    no_keyring: bool,
}

#[derive(clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    provider: ProviderArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// A scope to ask for (repeat); default: `openid` (`base` for Eternaltwin).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Use the device authorization grant (RFC 8628): for a terminal with no browser.
    #[arg(long)]
    device: bool,
    /// Print the URL without trying to open a browser.
    #[arg(long)]
    no_browser: bool,
    /// The loopback redirect URI to listen on (`http://127.0.0.1:PORT/PATH`, or `localhost`),
    /// for a provider that matches redirect URIs exactly, ports included (Eternaltwin);
    /// default: `http://127.0.0.1:<a free port>/callback` (RFC 8252 §7.3).
    #[arg(long, conflicts_with = "device")]
    redirect_uri: Option<Url>,
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// What the kept token is (no secret): JSON.
    Show(StoreArgs),
    /// Just the access token on stdout, refreshed first when it expires within a minute.
    Print(StoreArgs),
    /// Refresh the kept token now.
    Refresh(StoreArgs),
    /// Revoke the kept token at the provider (RFC 7009) and forget it.
    Revoke(StoreArgs),
    /// Ask the provider about the access token (RFC 7662): JSON.
    Introspect(StoreArgs),
}

/// One provider's entry: where to refresh, and the token.
struct Entry {
    provider: Target,
    token: Token,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Target {
    Oidc {
        issuer: String,
        client_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<String>,
    },
    Eternaltwin {
        url: Url,
        client_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<String>,
    },
    /// A provider of a providers TOML, read again at each use.
    Named { file: PathBuf, name: String },
}

impl Target {
    fn of(args: &ProviderArgs) -> anyhow::Result<Self> {
        if let (Some(name), Some(file)) = (&args.provider, &args.providers) {
            let file = std::path::absolute(file)
                .with_context(|| format!("--providers {}", file.display()))?;
            let target = Self::Named {
                file,
                name: name.clone(),
            };
            target.config()?;
            return Ok(target);
        }
        let client_id = args
            .client_id
            .clone()
            .ok_or_else(|| anyhow!("--client-id is required with --issuer or --eternaltwin"))?;
        let client_secret = args.client_secret.clone();
        match (&args.issuer, &args.eternaltwin) {
            (Some(issuer), None) => Ok(Self::Oidc {
                issuer: issuer.trim_end_matches('/').to_owned(),
                client_id,
                client_secret,
            }),
            (None, Some(url)) => Ok(Self::Eternaltwin {
                url: url.clone(),
                client_id,
                client_secret,
            }),
            _ => bail!("name the provider: --issuer URL, --eternaltwin URL or --provider NAME"),
        }
    }

    /// The default entry name: the provider's origin.
    fn name(&self) -> String {
        let url = match self {
            Self::Oidc { issuer, .. } => Url::parse(issuer).ok(),
            Self::Eternaltwin { url, .. } => Some(url.clone()),
            Self::Named { name, .. } => return name.clone(),
        };
        url.map_or_else(
            || "default".to_owned(),
            |u| u.origin().ascii_serialization(),
        )
    }

    fn config(&self) -> anyhow::Result<ProviderConfig> {
        let (config, secret) = match self {
            Self::Named { file, name } => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                // The registry's clients sign states with this key; login makes its own client.
                let key = doorward_client::StateKey::new([0u8; 32])
                    .map_err(|e| anyhow!("state key: {e}"))?;
                let registry = doorward_client::Registry::from_toml(&text, &key)
                    .map_err(|e| anyhow!("{}: {e}", file.display()))?;
                let client = registry
                    .get(name)
                    .ok_or_else(|| anyhow!("{} has no provider {name:?}", file.display()))?;
                return Ok(client.config().clone());
            }
            Self::Oidc {
                issuer,
                client_id,
                client_secret,
            } => {
                let mut config = ProviderConfig::oidc(issuer.clone(), client_id.clone());
                if client_secret.is_none() {
                    config.auth_method = doorward_client::AuthMethod::None;
                }
                (config, client_secret)
            }
            Self::Eternaltwin {
                url,
                client_id,
                client_secret,
            } => (
                ProviderConfig::eternaltwin(url, client_id.clone()),
                client_secret,
            ),
        };
        Ok(match secret {
            Some(secret) => config.with_secret(secret.clone()),
            None => config,
        })
    }

    fn client(&self, redirect_uri: Option<Url>) -> anyhow::Result<Client> {
        let mut config = self.config()?;
        config.redirect_uri = redirect_uri;
        Client::builder(config)
            .build()
            .map_err(|e| anyhow!("the provider's configuration is not usable: {e}"))
    }
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let target = Target::of(&args.provider)?;
    let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
    let token = if args.device {
        device_login(&target, &scopes).await?
    } else {
        let redirect = Loopback::of(args.redirect_uri.as_ref())?;
        loopback_login(&target, &scopes, !args.no_browser, redirect).await?
    };
    let path = store_path(args.store.store.as_deref())?;
    let name = args.store.name.clone().unwrap_or_else(|| target.name());
    let mut kept = Kept::open(&path)?;
    let entry = Entry {
        provider: target,
        token,
    };
    match kept.put(&name, entry, !args.store.no_keyring).await? {
        Place::Keyring => eprintln!(
            "Signed in; the token is kept as {name:?} in the OS keyring (listed in {}).",
            path.display()
        ),
        Place::File => eprintln!(
            "Signed in; the token is kept as {name:?} in {}.",
            path.display()
        ),
    }
    Ok(())
}

/// Where the browser comes back: a loopback address, a port (0: any free one) and a path.
struct Loopback {
    host: String,
    port: u16,
    path: String,
}

impl Loopback {
    /// `--redirect-uri`, which must be plain http on a loopback host (RFC 8252 §7.3, §8.3), or
    /// `127.0.0.1`, a free port and `/callback`.
    fn of(uri: Option<&Url>) -> anyhow::Result<Self> {
        let Some(uri) = uri else {
            return Ok(Self {
                host: "127.0.0.1".into(),
                port: 0,
                path: "/callback".into(),
            });
        };
        let host = uri.host_str().unwrap_or("");
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
        if uri.scheme() != "http" || !loopback || uri.query().is_some() || uri.fragment().is_some()
        {
            bail!(
                "--redirect-uri must be http://127.0.0.1:PORT/PATH (or localhost, [::1]) without \
                 query or fragment: this command listens there"
            );
        }
        let port = uri
            .port()
            .ok_or_else(|| anyhow!("--redirect-uri must name its port"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            path: uri.path().to_owned(),
        })
    }
}

/// RFC 8252 §7.3: the browser comes back to a listener of this process on the loopback
/// interface; PKCE and `state` as in any sign-in.
async fn loopback_login(
    target: &Target,
    scopes: &[&str],
    open: bool,
    loopback: Loopback,
) -> anyhow::Result<Token> {
    let bind = match loopback.host.as_str() {
        "[::1]" => "[::1]",
        _ => "127.0.0.1",
    };
    let listener = tokio::net::TcpListener::bind(format!("{bind}:{}", loopback.port))
        .await
        .with_context(|| format!("cannot listen on {bind}:{}", loopback.port))?;
    let port = listener.local_addr()?.port();
    let redirect = Url::parse(&format!("http://{}:{port}{}", loopback.host, loopback.path))?;
    let client = target.client(Some(redirect))?;
    let mut options = doorward_client::AuthorizationOptions::default();
    if !scopes.is_empty() {
        options.scopes = Some(scopes.iter().map(|s| (*s).to_owned()).collect());
    }
    let authorization = client
        .start_authorization_with(options)
        .await
        .map_err(|e| anyhow!("cannot start the sign-in: {e}"))?;
    eprintln!(
        "Open this address in a browser to sign in:\n{}",
        authorization.url
    );
    if open {
        // Best effort: a desktop opens it, a server without one prints it only.
        let _ = std::process::Command::new("xdg-open")
            .arg(authorization.url.as_str())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let callback =
        tokio::time::timeout(LOOPBACK_WAIT, wait_for_callback(&listener, &loopback.path))
            .await
            .map_err(|_| anyhow!("no sign-in came back within {} s", LOOPBACK_WAIT.as_secs()))??;
    let signed_in = client
        .finish_authorization(&callback, Some(&authorization.state))
        .await
        .map_err(|e| anyhow!("the sign-in failed: {e}"))?;
    Ok(signed_in.token)
}

/// Answers requests on `listener` until one comes to `path`; its query.
async fn wait_for_callback(
    listener: &tokio::net::TcpListener,
    path: &str,
) -> anyhow::Result<Callback> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or("");
        let arrived = target.split('?').next() == Some(path);
        let (status, body) = if arrived {
            (
                "200 OK",
                "<!doctype html><title>Doorward</title><p>You may close this window and go back \
                 to the terminal.</p>",
            )
        } else {
            ("404 Not Found", "<!doctype html><title>Not found</title>")
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
             content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        if status == "200 OK" {
            return Ok(Callback::from_uri(target));
        }
    }
}

/// RFC 8628: the code and the address are printed; the command polls until the user answers.
async fn device_login(target: &Target, scopes: &[&str]) -> anyhow::Result<Token> {
    let client = target.client(None)?;
    let mut device = client
        .start_device_authorization(scopes)
        .await
        .map_err(|e| anyhow!("the provider refused the device authorization: {e}"))?;
    eprintln!(
        "On another device, open {} and enter the code {}",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        eprintln!("(or open {complete})");
    }
    client
        .wait_for_device(&mut device)
        .await
        .map_err(|e| anyhow!("the device sign-in failed: {e}"))
}

pub async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Show(args) => {
            let (_, name, entry) = open_entry(&args).await?;
            let now = now();
            let shown = serde_json::json!({
                "name": name,
                "provider": match &entry.provider {
                    Target::Oidc { issuer, client_id, .. } => serde_json::json!({"issuer": issuer, "client_id": client_id}),
                    Target::Eternaltwin { url, client_id, .. } => serde_json::json!({"eternaltwin": url, "client_id": client_id}),
                    Target::Named { file, name } => serde_json::json!({"providers": file, "provider": name}),
                },
                "expires_at": entry.token.expires_at(),
                "expired": entry.token.expires_at().is_some_and(|t| t <= now),
                "scope": entry.token.scope(),
                "refresh_token": entry.token.refresh_token().is_some(),
                "id_token": entry.token.id_token().is_some(),
            });
            println!("{shown:#}");
        }
        TokenCommand::Print(args) => {
            let (mut kept, name, mut entry) = open_entry(&args).await?;
            if entry.token.expires_within(now(), 60) && entry.token.refresh_token().is_some() {
                entry.token = refreshed(&entry).await?;
                let access = entry.token.access_token().to_owned();
                let keyring = kept.in_keyring(&name) && !args.no_keyring;
                kept.put(&name, entry, keyring).await?;
                println!("{access}");
            } else {
                println!("{}", entry.token.access_token());
            }
        }
        TokenCommand::Refresh(args) => {
            let (mut kept, name, mut entry) = open_entry(&args).await?;
            entry.token = refreshed(&entry).await?;
            // The token stays where it was; --no-keyring moves it into the file.
            let keyring = kept.in_keyring(&name) && !args.no_keyring;
            kept.put(&name, entry, keyring).await?;
            eprintln!("Refreshed {name:?}.");
        }
        TokenCommand::Revoke(args) => {
            let (mut kept, name, entry) = open_entry(&args).await?;
            let client = entry.provider.client(None)?;
            client
                .revoke(&entry.token)
                .await
                .map_err(|e| anyhow!("the provider did not revoke the token: {e}"))?;
            kept.remove(&name).await?;
            eprintln!("Revoked and forgot {name:?}.");
        }
        TokenCommand::Introspect(args) => {
            let (_, _, entry) = open_entry(&args).await?;
            let client = entry.provider.client(None)?;
            let answer = client
                .introspect(entry.token.access_token())
                .await
                .map_err(|e| anyhow!("introspection failed: {e}"))?;
            let mut shown = serde_json::Map::new();
            shown.insert("active".into(), answer.active.into());
            for (key, value) in [
                ("scope", answer.scope.map(Into::into)),
                ("client_id", answer.client_id.map(Into::into)),
                ("username", answer.username.map(Into::into)),
                ("sub", answer.sub.map(Into::into)),
                ("exp", answer.exp.map(Into::into)),
            ] {
                if let Some(value) = value {
                    shown.insert(key.into(), value);
                }
            }
            println!("{:#}", serde_json::Value::Object(shown));
        }
    }
    Ok(())
}

async fn refreshed(entry: &Entry) -> anyhow::Result<Token> {
    let client = entry.provider.client(None)?;
    client
        .refresh(&entry.token)
        .await
        .map_err(|e| anyhow!("the refresh failed (sign in again with doorward login): {e}"))
}

/// The token file, the entry's name (`--name`, or the only one) and the entry.
async fn open_entry(args: &StoreArgs) -> anyhow::Result<(Kept, String, Entry)> {
    let kept = Kept::open(&store_path(args.store.as_deref())?)?;
    let name = kept.pick(args.name.as_deref())?;
    let entry = kept.get(&name).await?;
    Ok((kept, name, entry))
}

fn store_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set: use --store"))?,
        )
        .join(".config"),
    };
    Ok(base.join("doorward").join("tokens.json"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
