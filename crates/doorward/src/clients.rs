//! `doorward clients …`: clients registered in the store while servers run on it. Servers read
//! a client from the store at every request, so a change here reaches every instance at its
//! next request. A new secret is printed once; the store keeps only its Argon2id hash.
//!
//! `registration-token` makes an initial access token for dynamic client registration
//! (RFC 7591 §3), printed once and stored as a digest.
//!
//! Clients declared in the configuration file are upserted again at every start of `serve`:
//! `update`, `rotate-secret` and `remove` refuse them unless `--force` is given, since the
//! configuration would undo the change at the next start.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Subcommand;
use doorward_core::audit::Actor;
use doorward_core::clients::NewClient;
use doorward_core::config::RegistrationMode;
use doorward_core::jwt_bearer::JWT_BEARER_GRANT;
use doorward_core::model::{AuthMethod, Client, ClientPolicy, ClientSource, GrantType};
use doorward_core::Engine;
use doorward_proto::{RedirectUri, ScopeSet, Secret};
use serde_json::{json, Value};

use crate::config::Config;
use crate::serve::{build_engine, load_config};
use crate::ServeArgs;

/// The longest overlap `rotate-secret` accepts: 90 days.
const MAX_OVERLAP: u32 = 90 * 24 * 3600;

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client (Key NAME@clients, a random Id) and print its new secret, once (a
    /// public or private_key_jwt client has none).
    Add {
        #[command(flatten)]
        serve: ServeArgs,
        /// The client's name: its Key is NAME@clients.
        #[arg(long)]
        name: String,
        /// The name the consent page shows (default: NAME).
        #[arg(long)]
        display_name: Option<String>,
        /// The client's home page: an absolute http or https URL.
        #[arg(long)]
        app_uri: String,
        /// A redirect URI, compared as an exact string (repeat for several; required unless
        /// the client only uses client_credentials).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A scope the client may ask for (repeat; default: every scope the server offers).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// client_secret_basic, client_secret_post (default: either of the two), none (a
        /// public client: no secret, PKCE S256 required), private_key_jwt (with --jwks) or
        /// client_secret_jwt.
        #[arg(long)]
        auth_method: Option<String>,
        /// The client's public keys, a JWK Set as JSON or @FILE: for private_key_jwt, and for
        /// signed request objects (RFC 9101) of any client.
        #[arg(long)]
        jwks: Option<String>,
        /// A grant type the client may use: authorization_code, refresh_token,
        /// client_credentials (repeat; default: authorization_code and refresh_token).
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Require PKCE at the authorization endpoint (public clients always need it).
        #[arg(long)]
        require_pkce: bool,
        /// Require pushed authorization requests (RFC 9126, POST /oauth/par).
        #[arg(long)]
        require_pushed_authorization_requests: bool,
        /// Bind every token of the client to its DPoP key (RFC 9449 §5.2): token requests
        /// without a DPoP proof are refused.
        #[arg(long)]
        dpop_bound_access_tokens: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the clients (never a secret nor its hash).
    List {
        #[command(flatten)]
        serve: ServeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one client, by Key or Id.
    Show {
        #[command(flatten)]
        serve: ServeArgs,
        client: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a client's display name, app URI, redirect URIs or scopes.
    Update {
        #[command(flatten)]
        serve: ServeArgs,
        client: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        app_uri: Option<String>,
        /// Replaces every redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replaces the allowed scopes (repeat for several).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Allow every scope the server offers again.
        #[arg(long, conflicts_with = "scopes")]
        all_scopes: bool,
        /// Replace the client's public keys (a JWK Set as JSON or @FILE), e.g. to rotate its
        /// key: publish both keys, then the new one alone.
        #[arg(long)]
        jwks: Option<String>,
        /// Change a client of the configuration file (the next start undoes it).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Give a client a new secret, printed once. The old one stays valid for --overlap seconds.
    RotateSecret {
        #[command(flatten)]
        serve: ServeArgs,
        client: String,
        /// Seconds the old secret stays valid (0: it stops at once; at most 90 days).
        #[arg(long, default_value_t = 0)]
        overlap: u32,
        /// Rotate the secret of a client of the configuration file (the next start puts the
        /// configured secret back).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make an initial access token for dynamic client registration (RFC 7591 §3), printed
    /// once; the store keeps its digest, its expiry and the registrations it has left.
    RegistrationToken {
        #[command(flatten)]
        serve: ServeArgs,
        /// How long it is valid: seconds, or a number with s, m, h or d (at most 30 days).
        #[arg(long, default_value = "1h")]
        expires_in: String,
        /// How many clients it may register (1 to 1000000).
        #[arg(long, default_value_t = 1)]
        uses: u32,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and revoke its tokens, codes and consents at once.
    Remove {
        #[command(flatten)]
        serve: ServeArgs,
        client: String,
        /// Remove a client of the configuration file (the next start registers it again, its
        /// former tokens still revoked).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: ClientsCommand) -> anyhow::Result<()> {
    let actor = Actor::command_line();
    match command {
        ClientsCommand::Add {
            serve,
            name,
            display_name,
            app_uri,
            redirect_uris,
            scopes,
            auth_method,
            jwks,
            grant_types,
            require_pkce,
            require_pushed_authorization_requests,
            dpop_bound_access_tokens,
            json,
        } => {
            let config = load_config(serve)?;
            if name.is_empty() || name.contains(['@', ' ', '/']) {
                bail!(
                    "--name `{name}`: a client name must not be empty or contain '@', ' ' or '/'"
                );
            }
            let auth_method = auth_method
                .map(|m| {
                    AuthMethod::parse(&m).with_context(|| {
                        format!(
                            "--auth-method `{m}`: one of {}",
                            AuthMethod::ALL.map(AuthMethod::as_str).join(", ")
                        )
                    })
                })
                .transpose()?;
            let public = auth_method == Some(AuthMethod::None);
            // Keys also sign request objects (RFC 9101 §10.2), whatever the method.
            let jwks = match (jwks, auth_method) {
                (Some(value), _) => Some(jwks_of(&value)?),
                (None, Some(AuthMethod::PrivateKeyJwt)) => {
                    bail!("--auth-method private_key_jwt needs --jwks (the client's public keys)")
                }
                (None, _) => None,
            };
            // The JWT bearer grant (RFC 7523) is an extension grant, kept apart.
            let jwt_bearer = grant_types.iter().any(|g| g == JWT_BEARER_GRANT);
            let mut grant_types = grant_types;
            grant_types.retain(|g| g != JWT_BEARER_GRANT);
            if jwt_bearer && public {
                bail!("--grant-type {JWT_BEARER_GRANT}: not for a public client (--auth-method none; RFC 7523 section 3.1)");
            }
            let grant_types = if jwt_bearer && grant_types.is_empty() {
                Some(Vec::new())
            } else {
                grant_types_of(&grant_types)?
            };
            if public
                && grant_types
                    .as_ref()
                    .is_some_and(|g| g.contains(&GrantType::ClientCredentials))
            {
                bail!("--grant-type client_credentials: not for a public client (--auth-method none; RFC 6749 section 4.4)");
            }
            if public
                && grant_types
                    .as_ref()
                    .is_some_and(|g| g.contains(&GrantType::TokenExchange))
            {
                bail!("--grant-type urn:ietf:params:oauth:grant-type:token-exchange: not for a public client (--auth-method none; RFC 8693 section 2.1)");
            }
            let redirects = grant_types
                .as_ref()
                .is_none_or(|g| g.contains(&GrantType::AuthorizationCode));
            if redirects && redirect_uris.is_empty() {
                bail!("--redirect-uri: at least one, for the authorization_code grant");
            }
            let new = NewClient {
                key: format!("{name}@clients"),
                display_name: display_name.unwrap_or_else(|| name.clone()),
                app_uri: checked_app_uri(app_uri)?,
                redirect_uris: redirect_uris_of(&redirect_uris, public)?,
                policy: ClientPolicy {
                    scopes: scopes_of(&config, &scopes)?,
                    auth_method,
                    jwks,
                    grant_types,
                    require_pkce,
                    require_pushed_requests: require_pushed_authorization_requests,
                    dpop_bound_access_tokens,
                    extension_grants: if jwt_bearer {
                        vec![JWT_BEARER_GRANT.to_owned()]
                    } else {
                        Vec::new()
                    },
                    ..ClientPolicy::default()
                },
            };
            let engine = build_engine(&config).await?;
            let (client, secret) = engine.add_client(new, &actor).await?;
            match secret {
                Some(secret) => print_with_secret(&engine, &client, &secret, json),
                None => print_client(&engine, &client, json),
            }
            Ok(())
        }
        ClientsCommand::List { serve, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let clients = engine.list_clients().await?;
            if json {
                let list: Vec<Value> = clients.iter().map(|c| describe(&engine, c)).collect();
                println!("{}", Value::Array(list));
            } else {
                println!(
                    "{:<36}  {:<24}  {:<10}  {:<20}  secret",
                    "id", "key", "source", "created"
                );
                for client in &clients {
                    println!(
                        "{:<36}  {:<24}  {:<10}  {:<20}  {}",
                        client.id,
                        client.key,
                        client.source.as_str(),
                        when(client.created_at),
                        rotation(&engine, client)
                    );
                }
            }
            Ok(())
        }
        ClientsCommand::Show {
            serve,
            client,
            json,
        } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let client = known(&engine, &client).await?;
            print_client(&engine, &client, json);
            Ok(())
        }
        ClientsCommand::Update {
            serve,
            client,
            display_name,
            app_uri,
            redirect_uris,
            scopes,
            all_scopes,
            jwks,
            force,
            json,
        } => {
            let config = load_config(serve)?;
            let app_uri = app_uri.map(checked_app_uri).transpose()?;
            let jwks = jwks.map(|v| jwks_of(&v)).transpose()?;
            let scopes = match (all_scopes, scopes.is_empty()) {
                (true, _) => Some(None),
                (false, true) => None,
                (false, false) => Some(scopes_of(&config, &scopes)?),
            };
            if let Some(name) = &display_name {
                if name.trim().is_empty() {
                    bail!("--display-name: must not be empty");
                }
            }
            let engine = build_engine(&config).await?;
            let current = known(&engine, &client).await?;
            allowed(&current, force, "update")?;
            let public = current.policy.auth_method == Some(AuthMethod::None);
            let redirect_uris = if redirect_uris.is_empty() {
                None
            } else {
                Some(redirect_uris_of(&redirect_uris, public)?)
            };
            let updated = engine
                .update_client(
                    &client,
                    |c| {
                        if let Some(name) = display_name {
                            c.display_name = name;
                        }
                        if let Some(uri) = app_uri {
                            c.app_uri = uri;
                        }
                        if let Some(uris) = redirect_uris {
                            c.redirect_uris = uris;
                        }
                        if let Some(scopes) = scopes {
                            c.policy.scopes = scopes;
                        }
                        if let Some(jwks) = jwks {
                            c.policy.jwks = Some(jwks);
                        }
                    },
                    &actor,
                )
                .await?;
            settled().await;
            print_client(&engine, &updated, json);
            Ok(())
        }
        ClientsCommand::RotateSecret {
            serve,
            client,
            overlap,
            force,
            json,
        } => {
            if overlap > MAX_OVERLAP {
                bail!("--overlap {overlap}: at most {MAX_OVERLAP} seconds (90 days)");
            }
            let engine = build_engine(&load_config(serve)?).await?;
            allowed(
                &known(&engine, &client).await?,
                force,
                "rotate the secret of",
            )?;
            let (client, secret) = engine
                .rotate_client_secret(&client, overlap, &actor)
                .await?;
            settled().await;
            print_with_secret(&engine, &client, &secret, json);
            Ok(())
        }
        ClientsCommand::RegistrationToken {
            serve,
            expires_in,
            uses,
            json,
        } => {
            let lifetime =
                duration_of(&expires_in).with_context(|| format!("--expires-in `{expires_in}`"))?;
            if !(1..=1_000_000).contains(&uses) {
                bail!("--uses {uses}: 1 to 1000000");
            }
            let config = load_config(serve)?;
            let engine = build_engine(&config).await?;
            let issued = engine.issue_initial_token(lifetime, uses, &actor).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "initial_access_token": issued.token.secret(),
                        "expires_at": issued.record.expires_at,
                        "uses": uses,
                    })
                );
            } else {
                println!("Initial access token: {}", issued.token.secret());
                println!("Expires:              {}", when(issued.record.expires_at));
                println!("Registrations:        {uses}");
                println!("(shown once: the store keeps only its hash)");
            }
            if config.registration.mode == RegistrationMode::Off {
                eprintln!(
                    "warning: registration is off in this configuration ([registration] mode)"
                );
            }
            Ok(())
        }
        ClientsCommand::Remove {
            serve,
            client,
            force,
            json,
        } => {
            let engine = build_engine(&load_config(serve)?).await?;
            allowed(&known(&engine, &client).await?, force, "remove")?;
            let removed = engine.remove_client(&client, &actor).await?;
            settled().await;
            if json {
                println!(
                    "{}",
                    json!({"removed": removed.key, "client_id": removed.id})
                );
            } else {
                println!(
                    "removed {} ({}); its tokens, codes and consents are revoked",
                    removed.key, removed.id
                );
            }
            Ok(())
        }
    }
}

/// Waits until every running server has seen the change just made: their read caches follow
/// the database within `STALENESS_BOUND`. A script may rely on the change once the command
/// returns (a removed client's tokens refused, a rotated secret's predecessor with it).
pub(crate) async fn settled() {
    tokio::time::sleep(doorward_core::cache::STALENESS_BOUND).await;
}

async fn known(engine: &Engine, client: &str) -> anyhow::Result<Client> {
    engine
        .find_client(client)
        .await?
        .map(std::sync::Arc::unwrap_or_clone)
        .with_context(|| format!("no client `{client}` (give its Key or Id)"))
}

/// A configured client is changed only with `--force`: the next start re-applies the file.
fn allowed(client: &Client, force: bool, what: &str) -> anyhow::Result<()> {
    if client.source == ClientSource::Config {
        if !force {
            bail!(
                "{} comes from the configuration file, which `serve` applies again at every \
                 start: change it there, or pass --force to {what} it in the store anyway",
                client.key
            );
        }
        eprintln!(
            "warning: {} comes from the configuration file: the next start of `serve` applies \
             the file again",
            client.key
        );
    }
    Ok(())
}

fn checked_app_uri(value: String) -> anyhow::Result<String> {
    let ok = url::Url::parse(&value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if !ok {
        bail!("--app-uri `{value}`: must be an absolute http or https URL");
    }
    Ok(value)
}

fn redirect_uris_of(values: &[String], public: bool) -> anyhow::Result<Vec<RedirectUri>> {
    let mut uris: Vec<RedirectUri> = Vec::new();
    for value in values {
        let uri = RedirectUri::parse(value).with_context(|| format!("--redirect-uri `{value}`"))?;
        // The same rules as the config file's (RFC 8252 for loopback and private-use URIs).
        doorward_core::redirect::check_registration(&uri, public)
            .with_context(|| format!("--redirect-uri `{value}`"))?;
        if !uris.iter().any(|u| u.as_str() == uri.as_str()) {
            uris.push(uri);
        }
    }
    Ok(uris)
}

/// A client's public keys (`--jwks`): a JWK Set as JSON, or `@FILE`; private members refused.
fn jwks_of(value: &str) -> anyhow::Result<doorward_core::jose::JwkSet> {
    let json = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("--jwks: {path}"))?,
        None => value.to_owned(),
    };
    doorward_core::jose::parse_client_jwks(&json).map_err(|e| anyhow::anyhow!("--jwks: {e}"))
}

/// `--grant-type` values: `None` (the default pair) when none is named.
fn grant_types_of(values: &[String]) -> anyhow::Result<Option<Vec<GrantType>>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut grants = Vec::new();
    for value in values {
        let grant = GrantType::parse(value).with_context(|| {
            format!(
                "--grant-type `{value}`: authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:token-exchange or {JWT_BEARER_GRANT}"
            )
        })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    Ok(Some(grants))
}

/// The allowed scopes: `None` (every scope offered) when none is named; each must be offered.
fn scopes_of(config: &Config, values: &[String]) -> anyhow::Result<Option<ScopeSet>> {
    if values.is_empty() {
        return Ok(None);
    }
    if values.iter().any(|s| s.contains(' ')) {
        bail!("--scope: one scope per --scope");
    }
    let set = ScopeSet::parse(&values.join(" ")).context("--scope")?;
    if !set.is_subset(&config.scopes) {
        bail!(
            "--scope: the server offers only `{}` (oauth.scopes)",
            config.scopes
        );
    }
    Ok(Some(set))
}

/// A client as `show` and `--json` give it: never a secret nor a hash.
fn describe(engine: &Engine, client: &Client) -> Value {
    let previous = client
        .previous_secret
        .as_ref()
        .filter(|p| engine.now() < p.expires_at);
    json!({
        "client_id": client.id,
        "key": client.key,
        "display_name": client.display_name,
        "app_uri": client.app_uri,
        "redirect_uris": client.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "scopes": client.policy.scopes.as_ref().map(ToString::to_string),
        "token_endpoint_auth_method": client.policy.auth_method.map(|m| m.as_str()),
        "grant_types": client.policy.grant_types.as_ref().map(|g| g.iter().map(|g| g.as_str()).chain(client.policy.extension_grants.iter().map(String::as_str)).collect::<Vec<_>>()),
        "require_pkce": client.policy.require_pkce,
        "require_pushed_authorization_requests": client.policy.require_pushed_requests,
        "dpop_bound_access_tokens": client.policy.dpop_bound_access_tokens,
        "jwks_keys": client.policy.jwks.as_ref().map(|set| set.keys.len()),
        "source": client.source.as_str(),
        "created_at": client.created_at,
        "previous_secret_expires_at": previous.map(|p| p.expires_at),
    })
}

fn print_client(engine: &Engine, client: &Client, json: bool) {
    if json {
        println!("{}", describe(engine, client));
        return;
    }
    let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
    println!("Id:            {}", client.id);
    println!("Key:           {}", client.key);
    println!("Display name:  {}", client.display_name);
    println!("App URI:       {}", client.app_uri);
    println!("Redirect URIs: {}", uris.join(", "));
    println!(
        "Scopes:        {}",
        client
            .policy
            .scopes
            .as_ref()
            .map_or_else(|| "every scope offered".to_owned(), ToString::to_string)
    );
    println!(
        "Auth method:   {}",
        client
            .policy
            .auth_method
            .map_or("client_secret_basic or client_secret_post", |m| m.as_str())
    );
    println!("Source:        {}", client.source.as_str());
    println!("Created:       {}", when(client.created_at));
    println!("Secret:        {}", rotation(engine, client));
}

fn print_with_secret(engine: &Engine, client: &Client, secret: &Secret, json: bool) {
    if json {
        let mut value = describe(engine, client);
        value["client_secret"] = Value::from(secret.secret());
        println!("{value}");
        return;
    }
    print_client(engine, client, false);
    println!("Client secret: {}", secret.secret());
    println!("(shown once: the store keeps only its hash)");
}

/// The secret's rotation state.
fn rotation(engine: &Engine, client: &Client) -> String {
    match &client.previous_secret {
        _ if client.secret_hash.is_none() => "none".to_owned(),
        Some(p) if engine.now() < p.expires_at => {
            format!("rotated, previous valid until {}", when(p.expires_at))
        }
        _ => "current only".to_owned(),
    }
}

/// The longest `--expires-in`: 30 days.
const MAX_TOKEN_LIFETIME: i64 = 30 * 24 * 3600;

/// Seconds from `90`, `90s`, `15m`, `1h` or `7d`: at least 1 s, at most 30 days.
pub(crate) fn duration_of(text: &str) -> anyhow::Result<i64> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => bail!("use s, m, h or d"),
    };
    let n: i64 = number
        .parse()
        .context("a whole number, then s, m, h or d")?;
    let seconds = n.checked_mul(scale).unwrap_or(i64::MAX);
    if !(1..=MAX_TOKEN_LIFETIME).contains(&seconds) {
        bail!("1 second to 30 days");
    }
    Ok(seconds)
}

pub(crate) fn when(t: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::duration_of;

    #[test]
    fn durations() {
        assert_eq!(duration_of("90").unwrap(), 90);
        assert_eq!(duration_of("15m").unwrap(), 900);
        assert_eq!(duration_of("1h").unwrap(), 3600);
        assert_eq!(duration_of("30d").unwrap(), 30 * 86400);
        for bad in [
            "0",
            "31d",
            "-1h",
            "1w",
            "h",
            "",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(duration_of(bad).is_err(), "{bad}");
        }
    }
}
