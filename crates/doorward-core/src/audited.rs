//! The engine's side of the audit trail ([`crate::audit`]): events noted in the queue,
//! admin changes recorded at once, the trail read back and purged past its retention.

use doorward_proto::ScopeSet;
use uuid::Uuid;

use crate::audit::{kinds, Actor, AuditEvent, AuditQueue, EventFilter};
use crate::audit_writer::AuditWriter;
use crate::engine::Engine;
use crate::model::Client;
use crate::ports::StoreError;

impl Engine {
    /// Keeps an audit trail: sign-ins, consents, tokens issued, refused and revoked, replays
    /// are queued for the writer that [`Engine::audit_writer`] hands out, which the adapter
    /// runs. Without it they are not kept; admin changes always are.
    pub fn with_audit(mut self) -> Self {
        self.audit = Some(AuditQueue::default());
        self
    }

    /// The writer of the queued events, once (`None` without [`Engine::with_audit`], or the
    /// second time).
    pub fn audit_writer(&self) -> Option<AuditWriter> {
        let receiver = self.audit.as_ref()?.take_receiver()?;
        Some(AuditWriter {
            store: self.store.clone(),
            receiver,
        })
    }

    /// Queues an event, dated now; never waits (a full queue drops it and counts it).
    pub(crate) fn note(&self, mut event: AuditEvent) {
        self.counters.count_event(&event.kind);
        if let Some(queue) = &self.audit {
            event.at_ms = self.clock.now_millis();
            queue.push(event);
        }
    }

    /// A token issued at the token endpoint (unless `EngineConfig::audit_tokens` is off).
    pub(crate) fn note_issued(
        &self,
        grant_type: &str,
        client: &Client,
        user: Option<Uuid>,
        scopes: &ScopeSet,
    ) {
        self.counters.count_issued(grant_type);
        if self.audit.is_none() || !self.config.audit_tokens {
            self.counters.count_event(kinds::TOKEN_ISSUED);
        } else {
            self.note(
                AuditEvent::new(kinds::TOKEN_ISSUED, Actor::Client(client.id))
                    .client(client.id)
                    .user(user)
                    .with("grant_type", grant_type)
                    .with("scope", scopes.to_string()),
            );
        }
    }

    /// A spent code or refresh token presented again, whose family was revoked.
    pub(crate) fn note_replay(&self, kind: &str, client: Uuid, user: Uuid, family: Uuid) {
        self.note(
            AuditEvent::new(kind, Actor::Anonymous)
                .client(client)
                .user(user)
                .with("family", family.to_string()),
        );
    }

    /// Writes an event, dated now, before returning: an admin change is on record when the
    /// operation answers.
    pub async fn record(&self, mut event: AuditEvent) -> Result<(), StoreError> {
        self.counters.count_event(&event.kind);
        event.at_ms = self.clock.now_millis();
        self.store.insert_events(std::slice::from_ref(&event)).await
    }

    /// The audit trail (`doorward events`, the console).
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.store.list_events(filter).await
    }

    /// What the engine did since the start (the metrics).
    pub fn counters(&self) -> &crate::counters::Counters {
        &self.counters
    }

    /// Argon2 work: (running, waiting or running) right now (the metrics).
    pub fn hash_load(&self) -> (usize, usize) {
        self.hashes.load()
    }

    /// Events the queue dropped since the start, and events waiting for the writer.
    pub fn audit_backlog(&self) -> (u64, usize) {
        self.audit
            .as_ref()
            .map_or((0, 0), |queue| (queue.dropped(), queue.waiting()))
    }

    /// Deletes the events older than the retention (`EngineConfig::audit_retention`).
    pub async fn purge_events(&self) -> Result<u64, StoreError> {
        let horizon =
            self.clock.now_millis() - i64::from(self.config.audit_retention).saturating_mul(1000);
        self.store.purge_events(horizon).await
    }
}
