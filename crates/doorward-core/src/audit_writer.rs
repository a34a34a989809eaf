//! The writer that drains the audit queue ([`crate::audit::AuditQueue`]) into the store: what
//! is waiting is taken at once, up to [`BATCH`] events, and written in one transaction. The
//! adapter spawns [`AuditWriter::run`] and sees each batch (to log a failure, or to copy the
//! events to a JSON-lines sink for log shippers).

use std::future::Future;

use tokio::sync::mpsc;

use crate::audit::AuditEvent;
use crate::ports::{SharedStore, StoreError};

/// The most events written in one transaction.
pub const BATCH: usize = 512;

/// Owns the queue's receiving end; see the module documentation.
pub struct AuditWriter {
    pub(crate) store: SharedStore,
    pub(crate) receiver: mpsc::Receiver<AuditEvent>,
}

impl AuditWriter {
    /// Writes batches until `shutdown` completes (then what is still waiting, and returns) or
    /// every sender is gone, calling `written` after each batch with the store's answer (a
    /// failed batch is not retried: its events are in `written`'s hands).
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
        mut written: impl FnMut(&[AuditEvent], Result<(), &StoreError>),
    ) {
        tokio::pin!(shutdown);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                received = self.receiver.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    self.write(&mut batch, &mut written).await;
                }
                () = &mut shutdown => break,
            }
        }
        while let Ok(event) = self.receiver.try_recv() {
            batch.push(event);
            if batch.len() == BATCH {
                self.write(&mut batch, &mut written).await;
            }
        }
        if !batch.is_empty() {
            self.write(&mut batch, &mut written).await;
        }
    }

    async fn write(
        &self,
        batch: &mut Vec<AuditEvent>,
        written: &mut impl FnMut(&[AuditEvent], Result<(), &StoreError>),
    ) {
        let result = self.store.insert_events(batch).await;
        written(batch, result.as_ref().map(|_| ()));
        batch.clear();
    }
}
