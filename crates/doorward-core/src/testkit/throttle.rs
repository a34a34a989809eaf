//! Failure counters ([`crate::ports::ThrottleStore`]).

use super::fixtures::NOW;
use super::Must;
use crate::ports::{Failures, Store};

/// Failures count up under their key and no other, restart at 1 once expired, are forgotten
/// by `clear_failures` and by the purge once expired.
pub async fn failures_count_restart_and_clear(store: &dyn Store) {
    let key = "acct:contract";
    assert_eq!(
        store.find_failures(key).await.must("find_failures"),
        None,
        "a key never counted has no counter"
    );
    let first = store
        .record_failure(key, NOW, NOW + 60)
        .await
        .must("record_failure");
    assert_eq!(
        first,
        Failures {
            count: 1,
            last_at: NOW,
            expires_at: NOW + 60
        },
        "the first failure counts 1"
    );
    let second = store
        .record_failure(key, NOW + 5, NOW + 65)
        .await
        .must("record_failure");
    assert_eq!(
        (second.count, second.last_at, second.expires_at),
        (2, NOW + 5, NOW + 65),
        "a second failure counts 2 and moves last_at and expires_at"
    );
    assert_eq!(
        store.find_failures(key).await.must("find_failures"),
        Some(second),
        "find_failures answers what record_failure stored"
    );
    store
        .record_failure("addr:other", NOW, NOW + 60)
        .await
        .must("record_failure");
    assert_eq!(
        store
            .find_failures(key)
            .await
            .must("find_failures")
            .map(|f| f.count),
        Some(2),
        "another key's failure is counted apart"
    );
    let restarted = store
        .record_failure(key, NOW + 65, NOW + 125)
        .await
        .must("record_failure");
    assert_eq!(
        restarted.count, 1,
        "a failure at or after expires_at starts a new count"
    );
    store.clear_failures(key).await.must("clear_failures");
    assert_eq!(store.find_failures(key).await.must("find_failures"), None);
    store
        .clear_failures("clnt:never-counted")
        .await
        .must("clear_failures of an unknown key");
    store.purge_expired(NOW + 60, 0).await.must("purge_expired");
    assert_eq!(
        store
            .find_failures("addr:other")
            .await
            .must("find_failures"),
        None,
        "the purge deletes counters with expires_at <= now"
    );
}
