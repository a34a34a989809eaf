//! Audit events: what happened, to whom, by whom, from where. The engine notes the frequent
//! ones (sign-ins, tokens issued and refused) in a bounded queue that a writer drains into the
//! store in batches (`audit_writer.rs`), so the token endpoint never waits for an audit row;
//! an admin change is written before the operation answers (`Engine::record`).
//!
//! What the queue cannot take (it holds [`QUEUE_CAPACITY`] events) is counted as dropped
//! rather than slowing the server: an audit trail under a flood of refused requests keeps its
//! first events and says how many it lost. Events in the queue at a crash are lost; admin
//! changes are not (they are written at once).
//!
//! Events never hold a secret: no password, token, code or typed username (a failed sign-in
//! names the account only when it exists).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

/// The events the queue holds before it drops.
pub const QUEUE_CAPACITY: usize = 8192;

/// The kinds of event, as stored (`kind` column) and filtered (by prefix: `admin.`).
pub mod kinds {
    pub const SIGN_IN_SUCCEEDED: &str = "sign_in.succeeded";
    pub const SIGN_IN_FAILED: &str = "sign_in.failed";
    /// The right password for a disabled account.
    pub const SIGN_IN_DISABLED: &str = "sign_in.disabled";
    pub const SIGN_IN_THROTTLED: &str = "sign_in.throttled";
    pub const SIGNED_OUT: &str = "sign_in.signed_out";
    pub const CONSENT_GIVEN: &str = "consent.given";
    pub const CONSENT_REVOKED: &str = "consent.revoked";
    pub const TOKEN_ISSUED: &str = "token.issued";
    pub const TOKEN_REFUSED: &str = "token.refused";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    /// A spent refresh token presented again: its family is revoked (RFC 9700 §4.14.2).
    pub const REFRESH_REPLAYED: &str = "token.refresh_replayed";
    /// A spent authorization code presented again: its family is revoked (RFC 6749 §4.1.2).
    pub const CODE_REPLAYED: &str = "token.code_replayed";
    pub const USER_CREATED: &str = "admin.user.created";
    pub const USER_UPDATED: &str = "admin.user.updated";
    pub const USER_PASSWORD_SET: &str = "admin.user.password_set";
    pub const USER_DISABLED: &str = "admin.user.disabled";
    pub const USER_ENABLED: &str = "admin.user.enabled";
    pub const USER_REMOVED: &str = "admin.user.removed";
    pub const USER_UNLOCKED: &str = "admin.user.unlocked";
    pub const USER_SIGNED_OUT: &str = "admin.user.signed_out";
    pub const CLIENT_CREATED: &str = "admin.client.created";
    pub const CLIENT_UPDATED: &str = "admin.client.updated";
    pub const CLIENT_SECRET_ROTATED: &str = "admin.client.secret_rotated";
    pub const CLIENT_REMOVED: &str = "admin.client.removed";
    pub const REGISTRATION_TOKEN_ISSUED: &str = "admin.registration_token.issued";
    pub const KEYS_ROTATED: &str = "admin.keys.rotated";
    /// A second factor checked at sign-in (its kind in the detail).
    pub const SECOND_FACTOR_USED: &str = "sign_in.second_factor";
    /// A person created an account at the sign-up page (with an invitation: its id).
    pub const ACCOUNT_SIGNED_UP: &str = "account.signed_up";
    pub const ACCOUNT_PASSWORD_CHANGED: &str = "account.password_changed";
    pub const ACCOUNT_DELETED: &str = "account.deleted";
    pub const INVITATION_CREATED: &str = "admin.invitation.created";
    pub const INVITATION_WITHDRAWN: &str = "admin.invitation.withdrawn";
    /// A second factor set up (by the person, or at a sign-in that required one).
    pub const SECOND_FACTOR_ENROLLED: &str = "account.second_factor_enrolled";
    /// A second factor removed (by the person, or an admin: the actor says).
    pub const SECOND_FACTOR_REMOVED: &str = "account.second_factor_removed";
    pub const RECOVERY_CODES_RENEWED: &str = "account.recovery_codes_renewed";

    /// Every kind, in the order above (the metrics count each).
    pub const ALL: [&str; 35] = [
        SIGN_IN_SUCCEEDED,
        SIGN_IN_FAILED,
        SIGN_IN_DISABLED,
        SIGN_IN_THROTTLED,
        SIGNED_OUT,
        CONSENT_GIVEN,
        CONSENT_REVOKED,
        TOKEN_ISSUED,
        TOKEN_REFUSED,
        TOKEN_REVOKED,
        REFRESH_REPLAYED,
        CODE_REPLAYED,
        USER_CREATED,
        USER_UPDATED,
        USER_PASSWORD_SET,
        USER_DISABLED,
        USER_ENABLED,
        USER_REMOVED,
        USER_UNLOCKED,
        USER_SIGNED_OUT,
        CLIENT_CREATED,
        CLIENT_UPDATED,
        CLIENT_SECRET_ROTATED,
        CLIENT_REMOVED,
        REGISTRATION_TOKEN_ISSUED,
        KEYS_ROTATED,
        SECOND_FACTOR_USED,
        ACCOUNT_SIGNED_UP,
        ACCOUNT_PASSWORD_CHANGED,
        ACCOUNT_DELETED,
        INVITATION_CREATED,
        INVITATION_WITHDRAWN,
        SECOND_FACTOR_ENROLLED,
        SECOND_FACTOR_REMOVED,
        RECOVERY_CODES_RENEWED,
    ];
}

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// Nobody signed in (a failed sign-in, a client at the token endpoint).
    Anonymous,
    /// A signed-in user, for itself.
    User(Uuid),
    /// A client, authenticated.
    Client(Uuid),
    /// An admin user, at the console.
    Admin(Uuid),
    /// The `doorward` command line, run by this operating-system user.
    Cli(String),
    /// The server itself (key rotation, purge).
    System,
}

impl Actor {
    /// The `doorward` command line, named after `$USER` (or `unknown`).
    pub fn command_line() -> Self {
        let name = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        Self::Cli(name.chars().filter(|c| !c.is_control()).take(64).collect())
    }

    /// As stored: `anonymous`, `user:ID`, `client:ID`, `admin:ID`, `cli:NAME`, `system`.
    pub fn to_text(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::User(id) => format!("user:{id}"),
            Self::Client(id) => format!("client:{id}"),
            Self::Admin(id) => format!("admin:{id}"),
            Self::Cli(name) => format!("cli:{name}"),
            Self::System => "system".to_owned(),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let id = |s: &str| Uuid::parse_str(s).ok();
        Some(match text.split_once(':') {
            None if text == "anonymous" => Self::Anonymous,
            None if text == "system" => Self::System,
            Some(("user", s)) => Self::User(id(s)?),
            Some(("client", s)) => Self::Client(id(s)?),
            Some(("admin", s)) => Self::Admin(id(s)?),
            Some(("cli", s)) => Self::Cli(s.to_owned()),
            _ => return None,
        })
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Given by the store (increasing); 0 before.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// One of [`kinds`].
    pub kind: String,
    pub actor: Actor,
    /// The user it concerns.
    pub user_id: Option<Uuid>,
    /// The client it concerns.
    pub client_id: Option<Uuid>,
    /// The address the request came from.
    pub address: Option<IpAddr>,
    /// What else there is to say (grant type, scope, error, what changed), a JSON object.
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    pub fn new(kind: &str, actor: Actor) -> Self {
        Self {
            id: 0,
            at_ms: 0,
            kind: kind.to_owned(),
            actor,
            user_id: None,
            client_id: None,
            address: None,
            detail: Map::new(),
        }
    }

    pub fn user(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.user_id = id.into();
        self
    }

    pub fn client(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.client_id = id.into();
        self
    }

    pub fn from_address(mut self, address: Option<IpAddr>) -> Self {
        self.address = address;
        self
    }

    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(name.to_owned(), value.into());
        self
    }

    /// The event as one JSON object (`doorward events --json`, the JSON-lines sink).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), self.id.into());
        object.insert("at_ms".into(), self.at_ms.into());
        object.insert("kind".into(), self.kind.clone().into());
        object.insert("actor".into(), self.actor.to_text().into());
        object.insert("user_id".into(), json_of(self.user_id));
        object.insert("client_id".into(), json_of(self.client_id));
        object.insert(
            "address".into(),
            self.address.map_or(Value::Null, |a| a.to_string().into()),
        );
        object.insert("detail".into(), Value::Object(self.detail.clone()));
        Value::Object(object)
    }
}

fn json_of(id: Option<Uuid>) -> Value {
    id.map_or(Value::Null, |id| id.to_string().into())
}

/// Which events [`crate::ports::EventStore::list_events`] returns: ordered by id, newest
/// first unless `after` is given (then oldest first: what follows it), at most `limit`.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Only events with a greater id, oldest first (`doorward events --follow`).
    pub after: Option<i64>,
    /// Only events of this kind or under this prefix (`admin.`).
    pub kind: Option<String>,
    pub user_id: Option<Uuid>,
    pub limit: u32,
}

impl EventFilter {
    /// Whether `event` passes `kind` and `user_id` (not `after` nor `limit`).
    pub fn keeps(&self, event: &AuditEvent) -> bool {
        self.kind
            .as_deref()
            .is_none_or(|k| event.kind == k || (k.ends_with('.') && event.kind.starts_with(k)))
            && self.user_id.is_none_or(|u| event.user_id == Some(u))
    }
}

/// The queue between the engine and the writer.
pub struct AuditQueue {
    sender: mpsc::Sender<AuditEvent>,
    receiver: Mutex<Option<mpsc::Receiver<AuditEvent>>>,
    dropped: AtomicU64,
}

impl Default for AuditQueue {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            dropped: AtomicU64::new(0),
        }
    }
}

impl AuditQueue {
    /// Queues the event, or counts it as dropped when the queue is full.
    pub fn push(&self, event: AuditEvent) {
        if self.sender.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The events the queue could not take since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The events waiting for the writer.
    pub fn waiting(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// The receiving end, once: the writer's.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<AuditEvent>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_as_text() {
        for actor in [
            Actor::Anonymous,
            Actor::System,
            Actor::User(Uuid::from_u128(1)),
            Actor::Client(Uuid::from_u128(2)),
            Actor::Admin(Uuid::from_u128(3)),
            Actor::Cli("root".into()),
        ] {
            assert_eq!(Actor::parse(&actor.to_text()), Some(actor));
        }
        assert_eq!(Actor::parse("user:nope"), None);
    }

    #[test]
    fn a_full_queue_counts_what_it_drops() {
        let queue = AuditQueue::default();
        for _ in 0..QUEUE_CAPACITY + 3 {
            queue.push(AuditEvent::new(kinds::TOKEN_ISSUED, Actor::Anonymous));
        }
        assert_eq!(queue.dropped(), 3);
        assert_eq!(queue.waiting(), QUEUE_CAPACITY);
    }

    #[test]
    fn filters_keep_kinds_by_prefix() {
        let event = AuditEvent::new(kinds::USER_DISABLED, Actor::System).user(Uuid::from_u128(9));
        let filter = |kind: &str| EventFilter {
            kind: Some(kind.into()),
            ..EventFilter::default()
        };
        assert!(filter("admin.").keeps(&event));
        assert!(filter("admin.user.disabled").keeps(&event));
        assert!(
            !filter("admin.user").keeps(&event),
            "a prefix ends with a dot"
        );
        assert!(!filter("token.").keeps(&event));
    }
}
