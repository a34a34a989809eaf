//! `doorward serve`: wire the configuration, the store, the engine and the router, then serve.

use doorward_core::jwt_bearer::JwtBearerGrant;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use doorward_axum::fetch::{FetchPolicy, HttpFetcher};
use doorward_axum::metrics::Metrics;
use doorward_axum::{health, EngineConfig, Grants, Provider};
use doorward_core::keys::seal_stored_keys;
use doorward_core::ports::{ChangeFeed, ClientRef, OsRandom, SharedStore};
use doorward_core::Engine;
use doorward_store::{PostgresStore, SqliteStore};

use crate::config::{Config, Overrides};
use crate::key_secret::{self, Source};
use crate::ServeArgs;

/// The configuration file when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "doorward.toml";

/// `doorward serve` is the library's [`Provider`], wired from the configuration file: mounted
/// at the root of its own router, with Doorward's sign-in pages.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve_on(config, listener).await
}

/// Serves `config` on `listener` (already bound: `--ephemeral` learns its port first) until
/// SIGTERM or Ctrl-C.
pub async fn serve_on(config: Config, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let provider = build_provider(&config, true).await?;
    let safe_delay = 2 * doorward_core::keys::RELOAD_INTERVAL + 300;
    if config.keys.publish_delay < safe_delay {
        tracing::warn!(
            publish_delay = config.keys.publish_delay,
            "keys.publish_delay is below {safe_delay} s: with several instances, or relying \
             parties that cache the JWKS, a new key may sign before they have seen it"
        );
    }
    print_clients(provider.engine(), &config).await?;
    provider.spawn_maintenance();
    let (stop_audit, audit_stopped) = tokio::sync::oneshot::channel::<()>();
    let audit = provider.engine().audit_writer().map(|writer| {
        let stderr = config.audit.stderr;
        tokio::spawn(writer.run(
            async {
                let _ = audit_stopped.await;
            },
            move |batch, result| {
                if let Err(e) = result {
                    tracing::warn!(error = %e, events = batch.len(), "audit events could not be stored");
                }
                if stderr {
                    write_json_lines(batch);
                }
            },
        ))
    });

    let address = listener.local_addr()?;
    let engine = provider.engine().clone();
    let metrics = Metrics::new(engine.clone());
    let app = metrics.track(provider.standalone().merge(health::routes(engine.clone())));
    // One signal stops both listeners: each lets its requests in flight finish.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopping = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let operations = match bind_operations(config.metrics_listen).await? {
        Some(listener) => {
            let at = listener.local_addr()?;
            let routes = metrics.routes().merge(health::routes(engine));
            let limits = config.limits.clone();
            let stopping = stopping();
            Some((
                at,
                tokio::spawn(async move {
                    crate::listener::serve(listener, routes, limits, stopping).await;
                }),
            ))
        }
        None => None,
    };
    if let Some((at, _)) = &operations {
        println!("metrics on http://{at}/metrics");
    }
    println!("sign in at {}/", config.external_uri);
    println!("{}", config.transport.banner());
    // Printed last, once the sockets accept connections: tests and scripts wait for this line,
    // and everything above it is printed by then.
    println!("listening on http://{address}");
    tracing::info!(%address, "listening");
    let signal = tokio::spawn(async move {
        shutdown().await;
        tracing::info!("shutting down: answering the requests in flight, accepting no more");
        let _ = stop.send(true);
    });
    crate::listener::serve(listener, app, config.limits.clone(), stopping()).await;
    signal.abort();
    if let Some((_, task)) = operations {
        let _ = task.await;
    }
    // The last requests are answered: what they noted is written before the process ends.
    let _ = stop_audit.send(());
    if let Some(writer) = audit {
        let _ = writer.await;
    }
    Ok(())
}

pub fn load_config(args: ServeArgs) -> anyhow::Result<Config> {
    Config::load(
        args.config.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG)),
        Overrides {
            listen: args.listen,
            metrics_listen: args.metrics_listen,
            external_uri: args.external_uri,
            database: args.database,
            key_encryption_secret: std::env::var(crate::key_secret::ENV).ok(),
            insecure_allow_http: args.insecure_allow_http,
        },
    )
}

/// The provider the configuration describes, its clients and users registered when `register`
/// is set. The authorization-code grant with refresh tokens is what `doorward serve` answers.
pub async fn build_provider(config: &Config, register: bool) -> anyhow::Result<Provider> {
    let (store, feed) = open_store_and_feed(&config.database).await?;
    let key_secret = key_secret::resolve(config.key_encryption_secret.as_ref(), &config.database)?;
    if let Source::KeyFile {
        path,
        created: true,
    } = &key_secret.source
    {
        // The first start with a key file: nothing was sealed before, so rows in the clear are
        // this deployment's own; seal them now rather than refuse them.
        let report = seal_stored_keys(store.as_ref(), key_secret.secret.secret(), &OsRandom)
            .await
            .with_context(|| {
                format!(
                    "the key file {} was created now, but the database holds keys sealed with \
                     another secret (was its key file lost?)",
                    path.display()
                )
            })?;
        tracing::info!(file = %path.display(), ?report, "created the key file that seals the keys in the database");
    }
    let mut builder = Provider::builder(config.external_uri.clone())
        .audit()
        .config(EngineConfig {
            issuer: config.external_uri.clone(),
            lifetimes: config.lifetimes.clone(),
            allow_plain_pkce: config.allow_plain_pkce,
            require_pkce: config.require_pkce,
            require_pushed_requests: config.require_pushed_requests,
            scopes: config.scopes.clone(),
            default_scopes: config.default_scopes.clone(),
            keys: config.keys.clone(),
            key_encryption_secret: Some(key_secret.secret),
            resources: config.resources.clone(),
            registration: config.registration.clone(),
            client_documents: config.client_documents,
            dpop: config.dpop,
            passwords: config.passwords,
            sign_up: config.sign_up,
            second_factor_required: config.second_factor_required,
            admin_fresh_sign_in: config.admin_fresh_sign_in,
            audit_retention: config.audit.retention,
            audit_tokens: config.audit.token_events,
            ..EngineConfig::default()
        })
        .fetcher(Arc::new(HttpFetcher::new(FetchPolicy {
            allow_private_addresses: config.fetch.insecure_allow_private_addresses,
            insecure_allow_http: config.fetch.insecure_allow_http,
            ..FetchPolicy::default()
        })?))
        .grants({
            let mut grants = Grants::CODE_AND_REFRESH;
            grants.client_credentials = config.client_credentials;
            grants.token_exchange = config.token_exchange;
            grants.device_code = config.device_authorization;
            grants
        })
        .store(store)
        .change_feed(feed);
    if config.jwt_bearer {
        builder = builder.extension_grant(JwtBearerGrant);
    }
    if register {
        for client in &config.clients {
            builder = builder.client(client.clone());
        }
        for user in &config.users {
            builder = builder.user(user.clone());
        }
    }
    Ok(builder.build().await?)
}

/// The engine alone (`doorward keys`), with nothing registered.
pub async fn build_engine(config: &Config) -> anyhow::Result<Arc<Engine>> {
    Ok(build_provider(config, false).await?.engine().clone())
}

/// The store the database URL names: `sqlite:…` (the default) or `postgres://…`. Both run
/// their migrations on opening (PostgreSQL's under an advisory lock, so that instances starting
/// together do not race).
pub async fn open_store(url: &str) -> anyhow::Result<SharedStore> {
    Ok(open_store_and_feed(url).await?.0)
}

/// [`open_store`], with the store's change feed (the same value), for the read cache.
pub async fn open_store_and_feed(url: &str) -> anyhow::Result<(SharedStore, Arc<dyn ChangeFeed>)> {
    let shown = redact_url(url);
    if url.starts_with("sqlite:") {
        let store = Arc::new(
            SqliteStore::open(url)
                .await
                .with_context(|| format!("cannot open the database {shown}"))?,
        );
        Ok((store.clone(), store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = Arc::new(
            PostgresStore::open(url)
                .await
                .with_context(|| format!("cannot open the database {shown}"))?,
        );
        Ok((store.clone(), store))
    } else {
        bail!("database `{shown}`: use a sqlite: or postgres:// URL");
    }
}

/// Runs the migrations of the configured database and nothing else (`doorward migrate`).
pub async fn migrate(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    let shown = redact_url(&config.database);
    if config.database.starts_with("sqlite:") {
        SqliteStore::open(&config.database)
            .await
            .with_context(|| format!("cannot migrate {shown}"))?;
    } else {
        PostgresStore::migrate(&config.database)
            .await
            .with_context(|| format!("cannot migrate {shown}"))?;
    }
    println!("{shown}: migrations applied");
    Ok(())
}

/// The `[audit] stderr` sink: each event as one JSON line on standard error, written whole
/// (one `write` per batch), apart from the human log lines by its `"audit": true` member.
pub fn write_json_lines(events: &[doorward_core::audit::AuditEvent]) {
    let mut text = String::new();
    for event in events {
        let mut object = event.to_json();
        if let Some(map) = object.as_object_mut() {
            map.insert("audit".into(), true.into());
        }
        text.push_str(&object.to_string());
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The listener of `/metrics`, `/healthz` and `/readyz`: `None` when off, or when the
/// default address is taken (said in the log); a configured address must be free.
async fn bind_operations(
    at: Option<crate::config::MetricsListen>,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(at) = at else {
        return Ok(None);
    };
    match tokio::net::TcpListener::bind(at.address).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if !at.configured => {
            tracing::warn!(
                address = %at.address,
                error = %e,
                "no metrics: the default address of /metrics is taken (set server.metrics_listen)"
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot listen on {} for the metrics (server.metrics_listen, or \"off\")",
            at.address
        ))),
    }
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Prints each configured client as Eternaltwin does.
async fn print_clients(engine: &Engine, config: &Config) -> anyhow::Result<()> {
    for spec in &config.clients {
        let Some(client) = engine
            .store()
            .find_client(ClientRef::Key(&spec.key))
            .await?
        else {
            continue;
        };
        let name = client.key.trim_end_matches("@clients");
        let callbacks: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
        println!(
            "{name} {{\n  Id: {}\n  Key: {}\n  Display name: {}\n  App URI: {}\n  Callback URI: {}\n}}",
            client.id,
            client.key,
            client.display_name,
            client.app_uri,
            callbacks.join(", ")
        );
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
