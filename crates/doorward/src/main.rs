//! `doorward`: the authorization server (`doorward serve`) and its administration, and
//! `doorward login` / `doorward token` to sign in to any provider from a terminal.

mod clients;
mod config;
mod dev;
mod ephemeral;
mod events;
mod key_secret;
mod keys;
mod listener;
mod login;
mod serve;
mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "doorward", version, about = "OAuth 2.0 authorization server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server (or, with --ephemeral, a throwaway one for tests).
    Serve(RunArgs),
    /// Apply the database migrations and exit (`serve` also applies them at start).
    Migrate(ServeArgs),
    /// Clients in the store: add, list, show, update, rotate-secret, remove (running servers
    /// see a change at their next request).
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Accounts in the store: add, list, show, update, set-password, disable, enable,
    /// sign-out, unlock, remove (running servers see a change at once).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The audit trail: sign-ins, consents, tokens, admin changes (--follow, --json).
    Events(events::EventsArgs),
    /// Signing keys: list them, rotate them.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Tools for development and benchmarks.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Sign in to a provider from this terminal (loopback redirect, or --device) and keep the
    /// tokens.
    Login(login::LoginArgs),
    /// The tokens `doorward login` keeps: show, print, refresh, revoke, introspect.
    #[command(subcommand)]
    Token(login::TokenCommand),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; default doorward.toml, none with --ephemeral).
    #[arg(long, short, env = "DOORWARD_CONFIG")]
    config: Option<PathBuf>,
    /// The address to listen on, e.g. 127.0.0.1:50320 (overrides `server.listen`).
    #[arg(long, env = "DOORWARD_LISTEN")]
    listen: Option<String>,
    /// The address of /metrics, /healthz and /readyz, or "off" (overrides
    /// `server.metrics_listen`; default 127.0.0.1:50321).
    #[arg(long, env = "DOORWARD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// The origin users and clients reach the server at (overrides `server.external_uri`).
    #[arg(long, env = "DOORWARD_EXTERNAL_URI")]
    external_uri: Option<String>,
    /// The database URL, e.g. sqlite:data/doorward.sqlite (overrides `server.database`).
    #[arg(long, env = "DOORWARD_DATABASE")]
    database: Option<String>,
    /// Allow a plain-http external URI on a host that is not loopback (a test network: codes,
    /// tokens and passwords then travel in clear).
    #[arg(long, env = "DOORWARD_INSECURE_ALLOW_HTTP")]
    insecure_allow_http: bool,
}

/// `doorward serve`: the server's arguments, and the test mode's.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// A test server for other people's CI: an in-memory store, a free port on 127.0.0.1
    /// (printed: `listening on http://127.0.0.1:PORT`), users and clients from --user and
    /// --client; nothing survives it.
    #[arg(long, conflicts_with = "database")]
    ephemeral: bool,
    /// With --ephemeral: a user, USERNAME:PASSWORD (repeat).
    #[arg(
        long = "user",
        requires = "ephemeral",
        value_name = "USERNAME:PASSWORD"
    )]
    users: Vec<String>,
    /// With --ephemeral: a client, NAME:SECRET:REDIRECT_URI (Key NAME@clients; an empty
    /// SECRET makes a public client, PKCE required; an empty REDIRECT_URI a
    /// client_credentials-only client). Repeat for several.
    #[arg(
        long = "client",
        requires = "ephemeral",
        value_name = "NAME:SECRET:REDIRECT_URI"
    )]
    clients: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) if args.ephemeral => ephemeral::run(args).await,
            Command::Serve(args) => serve::run(args.serve).await,
            Command::Migrate(args) => serve::migrate(args).await,
            Command::Clients(command) => clients::run(command).await,
            Command::Users(command) => users::run(command).await,
            Command::Events(args) => events::run(args).await,
            Command::Keys(command) => keys::run(command).await,
            Command::Dev(command) => dev::run(command).await,
            Command::Login(args) => login::login(args).await,
            Command::Token(command) => login::token(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
