//! `doorward serve`: wire the configuration, the store, the engine and the router, then serve.

use std::sync::Arc;

use anyhow::{bail, Context};
use doorward_axum::AppState;
use doorward_core::ports::{OsRandom, SharedStore, SystemClock};
use doorward_core::{Engine, EngineConfig};
use doorward_store::{PostgresStore, SqliteStore};

use crate::config::{Config, Overrides};
use crate::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    let engine = Arc::new(build_engine(&config).await?);
    let safe_delay = 2 * doorward_core::keys::RELOAD_INTERVAL + 300;
    if config.keys.publish_delay < safe_delay {
        tracing::warn!(
            publish_delay = config.keys.publish_delay,
            "keys.publish_delay is below {safe_delay} s: with several instances, or relying \
             parties that cache the JWKS, a new key may sign before they have seen it"
        );
    }
    register(&engine, &config, true).await?;

    tokio::spawn(purge_periodically(engine.clone()));
    tokio::spawn(maintain_keys_periodically(engine.clone()));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let app = doorward_axum::router(AppState {
        engine,
        secure_cookies: config.external_uri.starts_with("https:"),
    });
    // Printed once the socket accepts connections: tests and scripts wait for this line.
    println!("listening on http://{address}");
    println!("sign in at {}/", config.external_uri);
    tracing::info!(%address, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("the server stopped")
}

pub fn load_config(args: ServeArgs) -> anyhow::Result<Config> {
    Config::load(
        &args.config,
        Overrides {
            listen: args.listen,
            external_uri: args.external_uri,
            database: args.database,
        },
    )
}

pub async fn build_engine(config: &Config) -> anyhow::Result<Engine> {
    let store = open_store(&config.database).await?;
    let engine_config = EngineConfig {
        issuer: config.external_uri.clone(),
        lifetimes: config.lifetimes.clone(),
        allow_plain_pkce: config.allow_plain_pkce,
        scopes: config.scopes.clone(),
        default_scopes: config.default_scopes.clone(),
        keys: config.keys.clone(),
        key_encryption_secret: config.key_encryption_secret.clone(),
        ..EngineConfig::default()
    };
    Ok(Engine::new(
        store,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        engine_config,
    )
    .await?)
}

/// The store the database URL names: `sqlite:…` (the default) or `postgres://…`. Both run
/// their migrations on opening (PostgreSQL's under an advisory lock, so that instances starting
/// together do not race).
pub async fn open_store(url: &str) -> anyhow::Result<SharedStore> {
    let shown = redact_url(url);
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await.with_context(
            || format!("cannot open the database {shown}"),
        )?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await.with_context(
            || format!("cannot open the database {shown}"),
        )?))
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

/// Registers the configured clients and users, printing each client as Eternaltwin does when
/// `print` is set.
pub async fn register(engine: &Engine, config: &Config, print: bool) -> anyhow::Result<()> {
    for spec in &config.clients {
        let client = engine
            .register_client(spec.clone())
            .await
            .with_context(|| format!("cannot register the client {}", spec.key))?;
        if !print {
            continue;
        }
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
    for user in &config.users {
        engine
            .seed_user(user)
            .await
            .with_context(|| format!("cannot create the user {}", user.username))?;
    }
    Ok(())
}

/// Deletes expired sessions, codes and tokens every ten minutes.
async fn purge_periodically(engine: Arc<Engine>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        match engine.purge_expired().await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
        }
    }
}

/// Creates, schedules and deletes signing keys and reloads them from the store (other
/// instances and `doorward keys rotate` change them there).
async fn maintain_keys_periodically(engine: Arc<Engine>) {
    let period = u64::try_from(doorward_core::keys::RELOAD_INTERVAL).unwrap_or(30);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(period));
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = engine.maintain_keys().await {
            tracing::warn!(error = ?e, "signing-key maintenance failed");
        }
    }
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
