//! `doorward keys …`: the signing keys in the store, for operators. Running servers reload
//! the keys every 30 seconds, so a rotation started here reaches them long before the new key
//! signs (it is published for `keys.publish_delay` first).

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Subcommand;
use doorward_core::jose::SigningAlg;
use doorward_core::Engine;

use doorward_core::keys::seal_stored_keys;
use doorward_core::ports::OsRandom;

use crate::key_secret;
use crate::serve::{build_engine, load_config, open_store};
use crate::ServeArgs;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the keys with their stage (next, active, retiring) and schedule.
    List {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Start a rotation: a new key, published now, signing after the publish delay. With no
    /// --alg, every configured algorithm rotates. A rotation already pending is left as is.
    Rotate {
        #[command(flatten)]
        serve: ServeArgs,
        /// ES256, RS256, EdDSA or Ed25519 (RFC 9864).
        #[arg(long)]
        alg: Option<String>,
    },
    /// Seal, in place, the private keys and the server secret stored in the clear before a
    /// key-encryption secret was set (with one set, `serve` refuses them). Run it once, with
    /// the secret the servers use.
    Seal {
        #[command(flatten)]
        serve: ServeArgs,
    },
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Seal { serve } => {
            let config = load_config(serve)?;
            let key_secret =
                key_secret::resolve(config.key_encryption_secret.as_ref(), &config.database)?;
            let store = open_store(&config.database).await?;
            let report = seal_stored_keys(store.as_ref(), key_secret.secret.secret(), &OsRandom)
                .await
                .context("cannot seal the keys")?;
            println!(
                "sealed {} signing keys and {} server secrets; {} were sealed already",
                report.keys, report.secrets, report.already_sealed
            );
            Ok(())
        }
        KeysCommand::List { serve } => {
            let engine = build_engine(&load_config(serve)?).await?;
            print_keys(&engine);
            Ok(())
        }
        KeysCommand::Rotate { serve, alg } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let algs = match alg {
                Some(name) => vec![SigningAlg::parse(&name)
                    .with_context(|| format!("`{name}` is not one of {}", SigningAlg::names()))?],
                None => engine.signing_algs(),
            };
            for alg in algs {
                let key = engine
                    .rotate_key(alg, &doorward_core::audit::Actor::command_line())
                    .await?;
                println!(
                    "{alg}: key {} published, signs from {}",
                    key.kid,
                    when(key.activate_at)
                );
            }
            print_keys(&engine);
            Ok(())
        }
    }
}

fn print_keys(engine: &Engine) {
    println!(
        "{:<6} {:>3}  {:<9} {:<43}  {:<20}  removed at",
        "alg", "gen", "stage", "kid", "signs from"
    );
    for key in engine.key_status() {
        println!(
            "{:<6} {:>3}  {:<9} {:<43}  {:<20}  {}",
            key.alg.as_str(),
            key.generation,
            key.stage.as_str(),
            key.kid,
            when(key.activate_at),
            key.remove_at.map_or_else(|| "-".to_owned(), when)
        );
    }
}

fn when(t: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
