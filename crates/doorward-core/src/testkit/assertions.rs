//! The `jti` of used client assertions ([`crate::ports::AssertionStore`]).

use uuid::Uuid;

use super::fixtures::NOW;
use super::Must;
use crate::ports::Store;

/// A `jti` is fresh once per client until it expires: a replay is refused, another client's
/// same `jti` is independent, an expired one may be used again, and the purge forgets it.
pub async fn assertion_jtis_are_single_use(store: &dyn Store) {
    let alice = Uuid::from_u128(0xa11ce);
    let bob = Uuid::from_u128(0xb0b);
    let record = |client, jti, expires_at, now| store.record_jti(client, jti, expires_at, now);
    assert!(
        record(alice, "jti-1", NOW + 60, NOW)
            .await
            .must("record_jti"),
        "a jti never seen is fresh"
    );
    assert!(
        !record(alice, "jti-1", NOW + 60, NOW + 1)
            .await
            .must("record_jti"),
        "the same jti of the same client is a replay"
    );
    assert!(
        !record(alice, "jti-1", NOW + 600, NOW + 59)
            .await
            .must("record_jti"),
        "a replay is refused until the first one's expiry, whatever it claims"
    );
    assert!(
        record(bob, "jti-1", NOW + 60, NOW + 1)
            .await
            .must("record_jti"),
        "two clients' jtis are independent"
    );
    assert!(
        record(alice, "jti-2", NOW + 60, NOW + 1)
            .await
            .must("record_jti"),
        "another jti of the same client is fresh"
    );
    assert!(
        record(alice, "jti-1", NOW + 120, NOW + 60)
            .await
            .must("record_jti"),
        "a jti whose row expired (expires_at <= now) is fresh again"
    );
    assert!(
        !record(alice, "jti-1", NOW + 180, NOW + 61)
            .await
            .must("record_jti"),
        "the renewed row has the new expiry"
    );
    // The purge forgets what expired, and keeps what did not.
    store
        .purge_expired(NOW + 100, 0)
        .await
        .must("purge_expired");
    assert!(
        record(bob, "jti-1", NOW + 200, NOW + 50)
            .await
            .must("record_jti"),
        "the purge forgets expired jtis (asked with a `now` before their expiry, a kept row would refuse)"
    );
    assert!(
        !record(alice, "jti-1", NOW + 200, NOW + 100)
            .await
            .must("record_jti"),
        "the purge keeps jtis that have not expired"
    );
}
