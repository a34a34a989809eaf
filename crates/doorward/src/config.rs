//! The configuration file, parsed once into a checked [`Config`].
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:50320"            # or --listen / DOORWARD_LISTEN
//! external_uri = "http://localhost:50320" # the issuer origin; or --external-uri
//! database = "sqlite:/var/lib/doorward/doorward.sqlite" # or --database / DOORWARD_DATABASE;
//!                                        # a relative path is relative to the working directory
//! data_dir = "data"                      # relative to this file; holds the default database
//!                                        # when `database` is not set
//!
//! [tokens]                               # lifetimes in seconds
//! access_token = 7200
//! code = 60
//! refresh_token = 2592000
//! session = 1209600
//!
//! [oauth]
//! insecure_allow_plain_pkce = false
//!
//! [clients.NAME]                         # Eternaltwin's form (Key: NAME@clients)
//! display_name = "…"; app_uri = "…"; callback_uri = "…"; secret = "…"
//!
//! [seed.app.NAME]                        # Eternaltwin 0.16's form, the same client
//! display_name = "…"; uri = "…"; oauth_callback = "…"; secret = "…"
//!
//! [seed.user.NAME]                       # development users, created or updated at start
//! username = "…"; password = "…"; display_name = "…"  # display_name defaults to username
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use doorward_core::{ClientSpec, Lifetimes};
use doorward_proto::{RedirectUri, Secret};
use serde::Deserialize;

/// The checked configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// The origin users and clients reach the server at, without a trailing slash.
    pub external_uri: String,
    pub database: String,
    pub lifetimes: Lifetimes,
    pub allow_plain_pkce: bool,
    pub clients: Vec<ClientSpec>,
    pub users: Vec<SeedUser>,
}

#[derive(Debug)]
pub struct SeedUser {
    pub username: String,
    pub display_name: String,
    pub password: Secret,
}

/// Values given on the command line or in `DOORWARD_*` variables, which win over the file.
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub external_uri: Option<String>,
    pub database: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    oauth: RawOAuth,
    #[serde(default)]
    clients: BTreeMap<String, RawClient>,
    #[serde(default)]
    seed: RawSeed,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    external_uri: Option<String>,
    database: Option<String>,
    data_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    access_token: Option<u32>,
    code: Option<u32>,
    refresh_token: Option<u32>,
    session: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOAuth {
    #[serde(default)]
    insecure_allow_plain_pkce: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    display_name: String,
    app_uri: String,
    callback_uri: String,
    secret: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    #[serde(default)]
    app: BTreeMap<String, RawSeedApp>,
    #[serde(default)]
    user: BTreeMap<String, RawSeedUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeedApp {
    display_name: String,
    uri: String,
    oauth_callback: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeedUser {
    username: String,
    password: String,
    display_name: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50320";
pub const DEFAULT_EXTERNAL_URI: &str = "http://localhost:50320";

impl Config {
    /// Reads and checks the file. Errors name the file, the key and the reason.
    pub fn load(path: &Path, overrides: Overrides) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let raw = parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        check(raw, base, overrides).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }
}

fn parse(text: &str) -> Result<RawConfig, String> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            before.bytes().filter(|&b| b == b'\n').count() + 1
        });
        let location = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        if path == "." {
            format!("{location}{}", inner.message())
        } else {
            format!("{location}key `{path}`: {}", inner.message())
        }
    })
}

fn check(raw: RawConfig, base: &Path, overrides: Overrides) -> anyhow::Result<Config> {
    let listen_text = overrides
        .listen
        .or(raw.server.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.parse().with_context(|| {
        format!("key `server.listen`: `{listen_text}` is not an address like 127.0.0.1:50320")
    })?;
    let external_uri = external_uri(
        &overrides
            .external_uri
            .or(raw.server.external_uri)
            .unwrap_or_else(|| DEFAULT_EXTERNAL_URI.to_owned()),
    )?;
    let database = match overrides.database.or(raw.server.database) {
        Some(url) => url,
        None => {
            let dir = base.join(raw.server.data_dir.unwrap_or_else(|| "data".into()));
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("key `server.data_dir`: cannot create {}", dir.display())
            })?;
            format!("sqlite:{}", dir.join("doorward.sqlite").display())
        }
    };
    let defaults = Lifetimes::default();
    let t = raw.tokens;
    let code = i64::from(t.code.unwrap_or(60));
    if !(1..=60).contains(&code) {
        bail!("key `tokens.code`: a code lives 1 to 60 seconds");
    }
    let lifetimes = Lifetimes {
        access_token: t.access_token.map_or(defaults.access_token, i64::from),
        code,
        refresh_token: t.refresh_token.map_or(defaults.refresh_token, i64::from),
        session: t.session.map_or(defaults.session, i64::from),
    };
    Ok(Config {
        listen,
        external_uri,
        database,
        lifetimes,
        allow_plain_pkce: raw.oauth.insecure_allow_plain_pkce,
        clients: clients(raw.clients, raw.seed.app)?,
        users: users(raw.seed.user)?,
    })
}

fn external_uri(value: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(value)
        .with_context(|| format!("key `server.external_uri`: `{value}` is not an absolute URI"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("key `server.external_uri`: `{value}` must be an http or https origin");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        bail!("key `server.external_uri`: `{value}` must be an origin without a path (the Eternaltwin client ignores paths)");
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn clients(
    clients: BTreeMap<String, RawClient>,
    apps: BTreeMap<String, RawSeedApp>,
) -> anyhow::Result<Vec<ClientSpec>> {
    let mut out: Vec<ClientSpec> = Vec::new();
    let from_clients = clients.into_iter().map(|(name, c)| {
        (
            format!("clients.{name}"),
            name,
            c.display_name,
            c.app_uri,
            c.callback_uri,
            c.secret,
        )
    });
    let from_apps = apps.into_iter().map(|(name, a)| {
        (
            format!("seed.app.{name}"),
            name,
            a.display_name,
            a.uri,
            a.oauth_callback,
            a.secret,
        )
    });
    for (key_path, name, display_name, app_uri, callback, secret) in from_clients.chain(from_apps) {
        if name.is_empty() || name.contains(['@', ' ', '/']) {
            bail!("key `{key_path}`: a client name must not be empty or contain '@', ' ' or '/'");
        }
        let key = format!("{name}@clients");
        if out.iter().any(|c| c.key == key) {
            bail!("key `{key_path}`: the client `{name}` is declared twice");
        }
        let redirect_uri = RedirectUri::parse(&callback)
            .with_context(|| format!("key `{key_path}`: callback `{callback}`"))?;
        if secret.is_empty() {
            bail!("key `{key_path}.secret`: the secret must not be empty");
        }
        out.push(ClientSpec {
            key,
            display_name,
            app_uri,
            redirect_uris: vec![redirect_uri],
            secret: Secret::new(secret),
        });
    }
    Ok(out)
}

fn users(users: BTreeMap<String, RawSeedUser>) -> anyhow::Result<Vec<SeedUser>> {
    users
        .into_iter()
        .map(|(name, u)| {
            if u.username.is_empty() || u.password.is_empty() {
                bail!("key `seed.user.{name}`: username and password must not be empty");
            }
            Ok(SeedUser {
                display_name: u.display_name.unwrap_or_else(|| u.username.clone()),
                username: u.username,
                password: Secret::new(u.password),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> anyhow::Result<Config> {
        let raw = parse(text).map_err(|e| anyhow!(e))?;
        check(
            raw,
            Path::new("."),
            Overrides {
                database: Some("sqlite::memory:".into()),
                ..Overrides::default()
            },
        )
    }

    #[test]
    fn reads_both_eternaltwin_client_forms() {
        let config = load(
            r#"
            [clients.python_client]
            display_name = "Python Client"
            app_uri = "http://localhost:8000"
            callback_uri = "http://localhost:8000/oauth/callback"
            secret = "dev_secret"

            [seed.app.other]
            display_name = "Other"
            uri = "http://localhost:8001"
            oauth_callback = "http://localhost:8001/cb"
            secret = "s"

            [seed.user.alice]
            username = "alice"
            password = "pw"
            "#,
        )
        .unwrap();
        let keys: Vec<_> = config.clients.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["python_client@clients", "other@clients"]);
        assert_eq!(config.users[0].display_name, "alice");
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.external_uri, DEFAULT_EXTERNAL_URI);
        assert_eq!(config.lifetimes.access_token, 7200);
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let err = load("[clients.a]\ndisplay_name = \"A\"\napp_uri = \"x\"\ncallback_uri = \"http://a/cb\"\nsecret = \"s\"\nsecrt = \"s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("clients.a"), "{err}");
        assert!(err.contains("secrt"), "{err}");
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_and_reason() {
        let err = load("[clients.a]\ndisplay_name = \"A\"\napp_uri = \"x\"\ncallback_uri = \"/cb\"\nsecret = \"s\"\n")
            .unwrap_err();
        assert!(format!("{err:#}").contains("clients.a"), "{err:#}");
        let err = load("[server]\nexternal_uri = \"http://h/path\"\n").unwrap_err();
        assert!(err.to_string().contains("server.external_uri"), "{err}");
        let err = load("[tokens]\ncode = 600\n").unwrap_err();
        assert!(err.to_string().contains("tokens.code"), "{err}");
        let err = load("[server]\nlisten = 5\n").unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
    }

    #[test]
    fn a_client_declared_twice_is_an_error() {
        let client = "display_name = \"A\"\napp_uri = \"x\"\n";
        let text = format!(
            "[clients.a]\n{client}callback_uri = \"http://a/cb\"\nsecret = \"s\"\n[seed.app.a]\ndisplay_name = \"A\"\nuri = \"x\"\noauth_callback = \"http://a/cb\"\nsecret = \"s\"\n"
        );
        assert!(load(&text)
            .unwrap_err()
            .to_string()
            .contains("declared twice"));
    }
}
