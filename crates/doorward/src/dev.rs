//! `doorward dev …`: tools for development and benchmarks, run by whoever controls the
//! server's configuration and store.

use anyhow::{anyhow, Context};
use clap::Subcommand;

use crate::serve::{build_provider, load_config};

mod factor_cost;
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
    /// Print COUNT refresh tokens of CLIENT for USER, one a line (codes minted as by
    /// `mint-codes`, then redeemed in-process with SECRET): what a refresh benchmark needs.
    MintRefreshTokens {
        #[command(flatten)]
        serve: ServeArgs,
        #[arg(long, default_value = "python_client@clients")]
        client: String,
        #[arg(long, default_value = "dev_secret")]
        secret: String,
        #[arg(long, default_value = "user1")]
        user: String,
        count: usize,
    },
    /// Insert COUNT live access tokens of CLIENT without a user straight into the database,
    /// in batches (nobody holds them): the store's size for the scale benchmark
    /// (`bench/scale.sh`). Prints how many and how long it took.
    SeedTokens {
        #[command(flatten)]
        serve: ServeArgs,
        /// The client's Key (a configured client) or Id.
        #[arg(long, default_value = "python_client@clients")]
        client: String,
        count: u64,
    },
    /// Measure the cost of signing an ID token with each algorithm (keys in memory, one
    /// thread): what an `openid` token response adds to a redemption.
    SignCost {
        /// Signatures per algorithm.
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
    },
    /// Measure the cost of one `private_key_jwt` client authentication (RFC 7523), ES256 and
    /// RS256: the whole check at the introspection endpoint (client lookup, throttle read,
    /// signature, claims, the `jti` insert), over the in-memory store, one thread.
    AssertionCost {
        /// Checks per algorithm.
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
    },
    /// Measure the cost of one second-factor check at sign-in: a TOTP code and a passkey's
    /// assertion (ES256), each through the engine over the in-memory store, one thread.
    SecondFactorCost {
        /// Checks of each kind.
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
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
        DevCommand::MintRefreshTokens {
            serve,
            client,
            secret,
            user,
            count,
        } => mint_refresh_tokens(serve, &client, &secret, &user, count).await,
        DevCommand::SeedTokens {
            serve,
            client,
            count,
        } => seed_tokens(serve, &client, count).await,
        DevCommand::SignCost { iterations } => sign_cost(iterations.max(1)).await,
        DevCommand::AssertionCost { iterations } => assertion_cost(iterations.max(1)).await,
        DevCommand::SecondFactorCost { iterations } => factor_cost::run(iterations.max(1)).await,
    }
}

async fn sign_cost(iterations: u32) -> anyhow::Result<()> {
    use std::time::Instant;

    use doorward_core::jose::SigningAlg;

    let engine = memory_engine("https://id.example.com", SigningAlg::ALL.to_vec()).await?;
    // The claims of a typical ID token with `openid profile email`.
    let claims = serde_json::json!({
        "iss": "https://id.example.com", "aud": "python_client@clients",
        "sub": "c482fa0a-9dfe-42dc-868b-7d43cb0d5920", "exp": 1_800_003_600u64,
        "iat": 1_800_000_000u64, "auth_time": 1_799_999_000u64, "nonce": "n-0S6_WzA2Mj",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "amr": ["pwd"], "name": "Alice",
        "preferred_username": "alice", "email": "alice@example.com", "email_verified": true,
    });
    println!("alg    signatures  µs/signature  signatures/s  (one thread)");
    for alg in SigningAlg::ALL {
        engine.sign_jws(alg, None, &claims)?;
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(engine.sign_jws(alg, None, &claims)?);
        }
        let per = start.elapsed().as_secs_f64() / f64::from(iterations);
        println!(
            "{:<6} {:>10}  {:>12.1}  {:>12.0}",
            alg.as_str(),
            iterations,
            per * 1e6,
            1.0 / per
        );
    }
    Ok(())
}

async fn assertion_cost(iterations: u32) -> anyhow::Result<()> {
    use std::collections::HashMap;
    use std::time::Instant;

    use doorward_core::client_assertion::JWT_BEARER;
    use doorward_core::jose::SigningAlg;
    use doorward_core::model::{AuthMethod, ClientPolicy};
    use doorward_core::request::TokenRequest;
    use doorward_core::ClientSpec;
    use doorward_proto::{RedirectUri, Secret};

    let issuer = "https://id.example.com";
    let engine = memory_engine(issuer, vec![SigningAlg::Es256, SigningAlg::Rs256]).await?;
    // The client's keys are the engine's own public keys: the engine then signs the
    // client's assertions, and no other key code is needed here.
    let client = "bench@clients";
    engine
        .register_client(ClientSpec {
            key: client.into(),
            display_name: "bench".into(),
            app_uri: "http://localhost".into(),
            redirect_uris: vec![RedirectUri::parse("http://localhost/cb")?],
            secret: Secret::new("bench_secret"),
            policy: ClientPolicy {
                auth_method: Some(AuthMethod::PrivateKeyJwt),
                jwks: Some(engine.jwks()),
                ..ClientPolicy::default()
            },
        })
        .await?;
    println!("alg    checks  µs/check  checks/s  (one thread, in-memory store)");
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let now = engine.now();
        // Signed beforehand: only the check is timed.
        let requests = (0..iterations)
            .map(|i| {
                let assertion = engine.sign_jws(
                    alg,
                    None,
                    &serde_json::json!({
                        "iss": client, "sub": client, "aud": format!("{issuer}/oauth/token"),
                        "iat": now, "exp": now + 240, "jti": format!("{alg}-{i}"),
                    }),
                )?;
                let params: HashMap<String, String> = [
                    ("token", "dwat_unknown"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ]
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
                Ok(TokenRequest {
                    params,
                    ..TokenRequest::default()
                })
            })
            .collect::<Result<Vec<_>, doorward_core::Error>>()?;
        let start = Instant::now();
        for request in &requests {
            engine
                .introspect(request)
                .await
                .map_err(|e| anyhow!("{alg}: the assertion was refused: {e}"))?;
        }
        let per = start.elapsed().as_secs_f64() / f64::from(iterations);
        println!(
            "{:<6} {:>6}  {:>8.1}  {:>8.0}",
            alg.as_str(),
            iterations,
            per * 1e6,
            1.0 / per
        );
    }
    Ok(())
}

fn lines(values: &[String]) -> String {
    let mut out = String::with_capacity(values.len() * 50);
    for value in values {
        out.push_str(value);
        out.push('\n');
    }
    out
}

async fn mint_refresh_tokens(
    serve: ServeArgs,
    client: &str,
    secret: &str,
    user: &str,
    count: usize,
) -> anyhow::Result<()> {
    use doorward_core::request::{BasicCredentials, TokenRequest};
    let minter = Minter::new(serve, client, user).await?;
    // Each code is redeemed as soon as it is minted: codes live 60 s, less than minting many
    // takes on a slow store.
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        let request = TokenRequest {
            resources: Vec::new(),
            params: [
                ("grant_type".to_owned(), "authorization_code".to_owned()),
                ("code".to_owned(), minter.code().await?),
            ]
            .into_iter()
            .collect(),
            basic: Some(BasicCredentials {
                id: client.to_owned(),
                secret: doorward_proto::Secret::new(secret),
            }),
            client_address: None,
            dpop: Default::default(),
        };
        let answer = minter
            .engine
            .token(&request)
            .await
            .map_err(|e| anyhow!("redeeming a minted code: {e}"))?;
        tokens.push(answer.refresh_token.unwrap_or_default());
    }
    print!("{}", lines(&tokens));
    Ok(())
}

/// Mints codes for `count` approvals of one client by one user.
async fn mint_codes(
    serve: ServeArgs,
    client: &str,
    user: &str,
    count: usize,
) -> anyhow::Result<()> {
    let minter = Minter::new(serve, client, user).await?;
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        codes.push(minter.code().await?);
    }
    print!("{}", lines(&codes));
    Ok(())
}

async fn seed_tokens(serve: ServeArgs, client: &str, count: u64) -> anyhow::Result<()> {
    let config = load_config(serve)?;
    let client = uuid::Uuid::try_parse(client)
        .unwrap_or_else(|_| doorward_core::Engine::client_id_for_key(client));
    let now = doorward_core::ports::Clock::now(&doorward_core::ports::SystemClock);
    let expires_at = now + 7 * 24 * 3600;
    let started = std::time::Instant::now();
    let url = config.database.as_str();
    let seeded = if url.starts_with("sqlite:") {
        doorward_store::SqliteStore::open(url)
            .await?
            .seed_access_tokens(client, count, now, expires_at)
            .await?
    } else {
        doorward_store::PostgresStore::open(url)
            .await?
            .seed_access_tokens(client, count, now, expires_at)
            .await?
    };
    println!(
        "{seeded} access tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An engine on the configured store, with the user and the checked request codes are
/// minted for.
struct Minter {
    engine: std::sync::Arc<doorward_core::Engine>,
    user: doorward_core::model::User,
    request: doorward_core::request::AuthorizationRequest,
}

impl Minter {
    async fn new(serve: ServeArgs, client: &str, user: &str) -> anyhow::Result<Self> {
        let config = load_config(serve)?;
        let engine = build_provider(&config, true).await?.engine().clone();
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
        Ok(Self {
            engine,
            user,
            request,
        })
    }

    async fn code(&self) -> anyhow::Result<String> {
        let answer = self
            .engine
            .insecure_issue_code(&self.user, &self.request)
            .await
            .context("cannot store a code")?;
        answer
            .param("code")
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no code in {}", answer.url()))
    }
}

/// An engine over a fresh in-memory store, for the cost measures.
async fn memory_engine(
    issuer: &str,
    algorithms: Vec<doorward_core::jose::SigningAlg>,
) -> anyhow::Result<doorward_core::Engine> {
    use std::sync::Arc;

    use doorward_core::config::KeyPolicy;
    use doorward_core::memory::MemoryStore;
    use doorward_core::ports::{OsRandom, SystemClock};
    use doorward_core::{Engine, EngineConfig};

    let config = EngineConfig {
        issuer: issuer.into(),
        keys: KeyPolicy {
            algorithms,
            ..KeyPolicy::default()
        },
        ..EngineConfig::default()
    };
    Ok(Engine::new(
        Arc::new(MemoryStore::default()),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        config,
    )
    .await?)
}
