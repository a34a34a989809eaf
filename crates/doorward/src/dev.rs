//! `doorward dev …`: tools for development and benchmarks, run by whoever controls the
//! server's configuration and store.

use anyhow::{anyhow, Context};
use clap::Subcommand;

use crate::serve::{build_engine, load_config, register};
use crate::ServeArgs;

#[derive(Subcommand)]
pub enum DevCommand {
    /// Print COUNT fresh authorization codes, one a line, as if USER had approved CLIENT
    /// (skipping sign-in and consent): the single-use codes a redemption benchmark needs.
    MintCodes {
        #[command(flatten)]
        serve: ServeArgs,
        /// The client's Key or Id.
        #[arg(long, default_value = "python_client@clients")]
        client: String,
        /// The username the codes are issued for.
        #[arg(long, default_value = "user1")]
        user: String,
        count: usize,
    },
}

pub async fn run(command: DevCommand) -> anyhow::Result<()> {
    match command {
        DevCommand::MintCodes {
            serve,
            client,
            user,
            count,
        } => mint_codes(serve, &client, &user, count).await,
    }
}

async fn mint_codes(
    serve: ServeArgs,
    client: &str,
    user: &str,
    count: usize,
) -> anyhow::Result<()> {
    let config = load_config(serve)?;
    let engine = build_engine(&config).await?;
    register(&engine, &config, false).await?;
    let user = engine
        .store()
        .find_user_by_username(user)
        .await?
        .ok_or_else(|| anyhow!("no user `{user}`"))?;
    let params = vec![
        ("response_type".to_owned(), "code".to_owned()),
        ("client_id".to_owned(), client.to_owned()),
    ];
    let request = engine
        .check_authorization(&params)
        .await
        .map_err(|e| anyhow!("client `{client}`: {e}"))?;
    let mut out = String::with_capacity(count * 50);
    for _ in 0..count {
        let location = engine
            .insecure_issue_code(&user, &request)
            .await
            .context("cannot store a code")?;
        let code = location
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("code="))
            .ok_or_else(|| anyhow!("no code in {location}"))?;
        out.push_str(code);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}
