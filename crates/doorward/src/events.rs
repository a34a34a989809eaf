//! `doorward events`: the audit trail in the store, newest last; `--follow` keeps printing
//! what the running servers write (asked every second). `--json` prints one JSON object a
//! line, the form of the `[audit] stderr` sink of `doorward serve` (`serve::write_json_lines`).

use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use doorward_core::audit::{AuditEvent, EventFilter};

use crate::serve::{build_engine, load_config};
use crate::ServeArgs;

/// How often `--follow` asks the store.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Args)]
pub struct EventsArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Keep printing new events until interrupted.
    #[arg(long)]
    follow: bool,
    /// One JSON object a line.
    #[arg(long)]
    json: bool,
    /// How many of the latest events to print first (1 to 10000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only this kind, or the kinds under a prefix ending with '.' (`admin.`, `sign_in.`).
    #[arg(long)]
    kind: Option<String>,
    /// Only the events of this user (username or id).
    #[arg(long)]
    user: Option<String>,
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    if !(1..=10_000).contains(&args.limit) {
        bail!("--limit {}: 1 to 10000", args.limit);
    }
    let engine = build_engine(&load_config(args.serve)?).await?;
    let user_id = match &args.user {
        Some(user) => Some(engine.account(user).await?.id),
        None => None,
    };
    let filter = EventFilter {
        after: None,
        kind: args.kind,
        user_id,
        limit: args.limit,
    };
    let mut latest = engine.events(&filter).await?;
    latest.reverse();
    let mut last = latest.last().map(|e| e.id);
    print(&latest, args.json);
    if !args.follow {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let after = EventFilter {
            after: Some(last.unwrap_or(0)),
            limit: 1000,
            ..filter.clone()
        };
        let new = engine.events(&after).await?;
        if let Some(event) = new.last() {
            last = Some(event.id);
        }
        print(&new, args.json);
    }
}

fn print(events: &[AuditEvent], json: bool) {
    let mut out = std::io::stdout().lock();
    for event in events {
        let line = if json {
            event.to_json().to_string()
        } else {
            text(event)
        };
        // A closed pipe (`| head`) ends the output quietly.
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// `TIME  KIND  actor=…  user=…  client=…  from=…  {detail}`.
fn text(event: &AuditEvent) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.at_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| event.at_ms.to_string());
    let mut line = format!("{at}  {:<28}  actor={}", event.kind, event.actor.to_text());
    if let Some(user) = event.user_id {
        line.push_str(&format!("  user={user}"));
    }
    if let Some(client) = event.client_id {
        line.push_str(&format!("  client={client}"));
    }
    if let Some(address) = event.address {
        line.push_str(&format!("  from={address}"));
    }
    if !event.detail.is_empty() {
        line.push_str(&format!(
            "  {}",
            serde_json::Value::Object(event.detail.clone())
        ));
    }
    line
}
