//! `doorward users …`: accounts in the store while servers run on it. Servers read a user
//! from the store at every sign-in and session lookup, and their read caches hear of a change
//! through the store's change feed: a command returns once every running server has seen its
//! change (`clients::settled`).
//!
//! A password never travels on the command line, where `ps` and shell histories would show
//! it: it is typed at a prompt that does not echo, or read from standard input with
//! `--password-stdin` (one line). New passwords follow the server's rules
//! (`[accounts] password_min_length`, `doorward_core::password_rules`).
//!
//! Users of the configuration file (`[seed.user.NAME]`) are upserted again at every start of
//! `serve`: `set-password`, `update` and `remove` refuse them unless `--force` is given, since
//! the configuration would undo the change at the next start. Disabling one sticks.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::Subcommand;
use doorward_core::audit::Actor;
use doorward_core::config::SignUpMode;
use doorward_core::model::{User, UserFilter, UserSource};
use doorward_core::users::NewAccount;
use doorward_core::Engine;
use doorward_proto::Secret;
use serde_json::{json, Value};

use crate::clients::{settled, when};
use crate::serve::{build_engine, load_config};
use crate::ServeArgs;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create an account (its password typed at a prompt, or --password-stdin).
    Add {
        #[command(flatten)]
        serve: ServeArgs,
        /// The sign-in name: 2 to 64 of a-z 0-9 . _ - @ + (upper case is lowered).
        username: String,
        /// The name pages and ID tokens show (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// The e-mail address (not verified).
        #[arg(long)]
        email: Option<String>,
        /// Give the admin role (the admin console).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the accounts, by username (never a password hash).
    List {
        #[command(flatten)]
        serve: ServeArgs,
        /// Only those whose username, display name or e-mail address holds this.
        #[arg(long)]
        search: Option<String>,
        /// The last username of the previous page.
        #[arg(long)]
        after: Option<String>,
        /// At most this many (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one account, by username or id.
    Show {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an account's display name, e-mail address or admin role.
    Update {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Give the admin role.
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        /// Take the admin role away.
        #[arg(long)]
        no_admin: bool,
        /// Whether this user must sign in with a second factor: required or optional.
        #[arg(long, value_parser = ["required", "optional"])]
        second_factor: Option<String>,
        /// Change the name or address of a user of the configuration file (the next start
        /// undoes it).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Give an account a new password and sign it out of every browser.
    SetPassword {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        password_stdin: bool,
        /// Set the password of a user of the configuration file (the next start puts the
        /// configured one back).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: its sessions, grants, tokens and codes end at once, and it cannot
    /// sign in until enabled.
    Disable {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled account sign in again (nothing it held comes back).
    Enable {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Sign an account out of every browser (its tokens stay).
    SignOut {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn off an account's second factor (a lost phone and lost recovery codes): the next
    /// sign-in is with the password alone, or sets one up again when one is required.
    ResetSecondFactor {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Lift the lock that failed sign-ins put on a username.
    Unlock {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Make an invitation to sign up (`[accounts] sign_up = "invite"`): its link is printed
    /// once (the store keeps a digest).
    Invite {
        #[command(flatten)]
        serve: ServeArgs,
        /// The address it is for (shown on the sign-up page, which may change it).
        #[arg(long)]
        email: Option<String>,
        /// How long it lasts: seconds, or a number with s, m, h or d (at most 30 days).
        #[arg(long, default_value = "7d")]
        expires_in: String,
        #[arg(long)]
        json: bool,
    },
    /// List the invitations neither used nor expired (never their codes).
    Invitations {
        #[command(flatten)]
        serve: ServeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an unused invitation, by its id.
    Uninvite {
        #[command(flatten)]
        serve: ServeArgs,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an account with its sessions, consents, grants and tokens.
    Remove {
        #[command(flatten)]
        serve: ServeArgs,
        user: String,
        /// Remove a user of the configuration file (the next start creates it again, with a
        /// new id).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: UsersCommand) -> anyhow::Result<()> {
    let actor = Actor::command_line();
    match command {
        UsersCommand::Add {
            serve,
            username,
            display_name,
            email,
            admin,
            password_stdin,
            json,
        } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let password = read_password(password_stdin)?;
            let user = engine
                .create_account(
                    NewAccount {
                        username,
                        display_name,
                        email,
                        password,
                        admin,
                        source: UserSource::Cli,
                    },
                    &actor,
                )
                .await?;
            print_user(&engine, &user, json).await
        }
        UsersCommand::List {
            serve,
            search,
            after,
            limit,
            json,
        } => {
            if !(1..=10_000).contains(&limit) {
                bail!("--limit {limit}: 1 to 10000");
            }
            let engine = build_engine(&load_config(serve)?).await?;
            let users = engine
                .list_accounts(&UserFilter {
                    search,
                    after,
                    limit,
                })
                .await?;
            if json {
                let mut list = Vec::new();
                for user in &users {
                    list.push(describe(&engine, user).await?);
                }
                println!("{}", Value::Array(list));
            } else {
                println!(
                    "{:<36}  {:<24}  {:<11}  {:<8}  {:<20}  display name",
                    "id", "username", "source", "state", "created"
                );
                for user in &users {
                    println!(
                        "{:<36}  {:<24}  {:<11}  {:<8}  {:<20}  {}",
                        user.id,
                        user.username,
                        user.source.as_str(),
                        state(user),
                        when(user.created_at),
                        user.display_name
                    );
                }
            }
            Ok(())
        }
        UsersCommand::Show { serve, user, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let user = engine.account(&user).await?;
            print_user(&engine, &user, json).await
        }
        UsersCommand::Update {
            serve,
            user,
            display_name,
            email,
            admin,
            no_admin,
            second_factor,
            force,
            json,
        } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            if display_name.is_some() || email.is_some() {
                allowed(&current, force, "change the name or address of")?;
            }
            let mut updated = engine
                .update_account_profile(&current, display_name.as_deref(), email.as_deref(), &actor)
                .await?;
            if admin || no_admin {
                updated = engine.set_account_admin(&updated, admin, &actor).await?;
            }
            if let Some(required) = second_factor {
                updated = engine
                    .set_second_factor_required(&updated, required == "required", &actor)
                    .await?;
            }
            settled().await;
            print_user(&engine, &updated, json).await
        }
        UsersCommand::SetPassword {
            serve,
            user,
            password_stdin,
            force,
            json,
        } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            allowed(&current, force, "set the password of")?;
            let password = read_password(password_stdin)?;
            let updated = engine
                .set_account_password(&current, &password, &actor)
                .await?;
            settled().await;
            print_user(&engine, &updated, json).await
        }
        UsersCommand::Disable { serve, user, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            engine.disable_account(&current, &actor).await?;
            settled().await;
            print_user(&engine, &engine.account(&user).await?, json).await
        }
        UsersCommand::Enable { serve, user, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            engine.enable_account(&current, &actor).await?;
            settled().await;
            print_user(&engine, &engine.account(&user).await?, json).await
        }
        UsersCommand::SignOut { serve, user, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            let ended = engine.end_account_sessions(&current, &actor).await?;
            report(
                json,
                json!({ "user": current.id, "sessions_ended": ended }),
                || format!("{}: {ended} session(s) ended", current.username),
            );
            Ok(())
        }
        UsersCommand::ResetSecondFactor { serve, user, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            let had = engine.reset_second_factor(&current, &actor).await?;
            settled().await;
            report(json, json!({ "user": current.id, "had_one": had }), || {
                if had {
                    format!("{}: second factor turned off", current.username)
                } else {
                    format!("{}: had no second factor", current.username)
                }
            });
            Ok(())
        }
        UsersCommand::Unlock { serve, user, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            let held = engine.unlock_account(&current, &actor).await?;
            settled().await;
            report(
                json,
                json!({ "user": current.id, "was_locked": held }),
                || {
                    if held {
                        format!(
                            "{}: failed sign-ins forgotten, the lock is lifted",
                            current.username
                        )
                    } else {
                        format!("{}: no failed sign-ins were counted", current.username)
                    }
                },
            );
            Ok(())
        }
        UsersCommand::Invite {
            serve,
            email,
            expires_in,
            json,
        } => {
            let lifetime = crate::clients::duration_of(&expires_in)
                .with_context(|| format!("--expires-in `{expires_in}`"))?;
            let config = load_config(serve)?;
            let engine = build_engine(&config).await?;
            let (code, invitation) = engine
                .create_invitation(email.as_deref(), lifetime, &actor)
                .await?;
            let link = format!("{}/signup?invite={}", config.external_uri, code.secret());
            if json {
                println!(
                    "{}",
                    json!({
                        "id": invitation.id,
                        "code": code.secret(),
                        "link": link,
                        "email": invitation.email,
                        "expires_at": invitation.expires_at,
                    })
                );
            } else {
                println!("Invitation: {}", invitation.id);
                println!("Link:       {link}");
                println!("Expires:    {}", when(invitation.expires_at));
                println!("(shown once: the store keeps only its digest)");
            }
            if config.sign_up != SignUpMode::Invite {
                eprintln!(
                    "warning: sign-up by invitation is not on in this configuration \
                     ([accounts] sign_up = \"invite\")"
                );
            }
            Ok(())
        }
        UsersCommand::Invitations { serve, json } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let open = engine.open_invitations().await?;
            if json {
                let list: Vec<Value> = open
                    .iter()
                    .map(|i| {
                        json!({
                            "id": i.id,
                            "email": i.email,
                            "created_by": i.created_by,
                            "created_at": i.created_at,
                            "expires_at": i.expires_at,
                        })
                    })
                    .collect();
                println!("{}", Value::Array(list));
            } else {
                println!(
                    "{:<36}  {:<20}  {:<20}  {:<16}  e-mail",
                    "id", "created", "expires", "by"
                );
                for i in &open {
                    println!(
                        "{:<36}  {:<20}  {:<20}  {:<16}  {}",
                        i.id,
                        when(i.created_at),
                        when(i.expires_at),
                        i.created_by,
                        i.email.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        UsersCommand::Uninvite { serve, id, json } => {
            let id = uuid::Uuid::parse_str(&id)
                .map_err(|_| anyhow::anyhow!("`{id}` is not an invitation id (a UUID)"))?;
            let engine = build_engine(&load_config(serve)?).await?;
            if !engine.withdraw_invitation(id, &actor).await? {
                bail!("no unused invitation {id}");
            }
            report(json, json!({ "withdrawn": id }), || {
                format!("invitation {id} withdrawn")
            });
            Ok(())
        }
        UsersCommand::Remove {
            serve,
            user,
            force,
            json,
        } => {
            let engine = build_engine(&load_config(serve)?).await?;
            let current = engine.account(&user).await?;
            allowed(&current, force, "remove")?;
            engine.remove_account(&current, &actor).await?;
            settled().await;
            report(
                json,
                json!({ "removed": current.id, "username": current.username }),
                || {
                    format!(
                        "{} ({}) removed, with its sessions, consents, grants and tokens",
                        current.username, current.id
                    )
                },
            );
            Ok(())
        }
    }
}

/// A password from a prompt that does not echo (asked twice), or the first line of standard
/// input with `--password-stdin`.
fn read_password(from_stdin: bool) -> anyhow::Result<Secret> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            bail!("--password-stdin: standard input held no password");
        }
        return Ok(Secret::new(password));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to type the password in: give it on standard input with --password-stdin"
        );
    }
    let first = rpassword::prompt_password("New password: ").context("cannot read the password")?;
    let again = rpassword::prompt_password("Once more: ").context("cannot read the password")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(Secret::new(first))
}

/// A configured user is changed only with `--force`: the next start re-applies the file.
fn allowed(user: &User, force: bool, what: &str) -> anyhow::Result<()> {
    if user.source == UserSource::Config && !force {
        bail!(
            "`{}` comes from the configuration file, which the next start applies again; \
             change it there, or give --force to {what} it anyway",
            user.username
        );
    }
    Ok(())
}

fn state(user: &User) -> &'static str {
    if user.is_disabled() {
        "disabled"
    } else {
        "active"
    }
}

async fn describe(engine: &Engine, user: &User) -> anyhow::Result<Value> {
    let failures = engine.account_failures(&user.username).await?;
    let factors = engine.second_factors(user.id).await?;
    let second_factor = match (factors.totp, factors.passkeys.is_empty()) {
        (true, _) => Some("totp"),
        (false, false) => Some("passkey"),
        (false, true) => None,
    };
    let passkeys: Vec<Value> = factors
        .passkeys
        .iter()
        .map(|p| json!({"id": p.id, "name": p.name, "created_at": p.created_at, "last_used_at": p.last_used_at}))
        .collect();
    Ok(json!({
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "email_verified": user.email_verified,
        "admin": user.admin,
        "disabled": user.is_disabled(),
        "disabled_at": user.disabled_at,
        "source": user.source.as_str(),
        "created_at": user.created_at,
        "failed_sign_ins": failures.as_ref().map_or(0, |(f, _)| f.count),
        "locked_until": failures.and_then(|(_, until)| until),
        "second_factor": second_factor,
        "authenticator_app": factors.totp,
        "passkeys": passkeys,
        "recovery_codes_left": factors.any().then_some(factors.recovery_left),
        "second_factor_required": user.second_factor_required,
    }))
}

async fn print_user(engine: &Engine, user: &User, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", describe(engine, user).await?);
        return Ok(());
    }
    let failures = engine.account_failures(&user.username).await?;
    println!("Id:            {}", user.id);
    println!("Username:      {}", user.username);
    println!("Display name:  {}", user.display_name);
    println!(
        "E-mail:        {}",
        user.email.as_deref().map_or_else(
            || "none".to_owned(),
            |e| format!(
                "{e}{}",
                if user.email_verified {
                    " (verified)"
                } else {
                    ""
                }
            )
        )
    );
    println!("Admin:         {}", if user.admin { "yes" } else { "no" });
    match user.disabled_at {
        Some(at) => println!("State:         disabled since {}", when(at)),
        None => println!("State:         active"),
    }
    match failures {
        Some((f, Some(until))) => {
            println!(
                "Sign-ins:      locked until {} ({} failed)",
                when(until),
                f.count
            )
        }
        Some((f, None)) => println!("Sign-ins:      {} failed recently", f.count),
        None => {}
    }
    println!("Source:        {}", user.source.as_str());
    println!("Created:       {}", when(user.created_at));
    Ok(())
}

fn report(json: bool, value: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}
