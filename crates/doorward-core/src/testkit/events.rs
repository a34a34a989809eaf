//! Checks of the audit trail: events stored in order with every field, listed newest first
//! or after an id, filtered by kind (or a prefix) and by user, purged by age.

use std::net::IpAddr;

use uuid::Uuid;

use super::Must;
use crate::audit::{kinds, Actor, AuditEvent, EventFilter};
use crate::ports::Store;

/// [`EventStore`](crate::ports::EventStore): `insert_events` keeps every field and gives
/// increasing ids; `list_events` answers newest first, or oldest first after an id, keeps a
/// kind or a prefix ending with '.', and a user; `purge_events` deletes by age.
pub async fn events_are_kept_in_order_filtered_and_purged(store: &dyn Store) {
    let alice = Uuid::from_u128(0xa11ce);
    let address: IpAddr = "2001:db8::7".parse().expect("an address");
    let first = AuditEvent {
        at_ms: 1_000,
        ..AuditEvent::new(kinds::SIGN_IN_SUCCEEDED, Actor::User(alice))
            .user(alice)
            .from_address(Some(address))
            .with("method", "pwd")
    };
    let second = AuditEvent {
        at_ms: 2_000,
        ..AuditEvent::new(kinds::TOKEN_ISSUED, Actor::Client(Uuid::from_u128(7)))
            .client(Uuid::from_u128(7))
            .with("grant_type", "client_credentials")
    };
    let third = AuditEvent {
        at_ms: 3_000,
        ..AuditEvent::new(kinds::USER_DISABLED, Actor::Cli("root".into())).user(alice)
    };
    store
        .insert_events(&[first.clone(), second.clone()])
        .await
        .must("insert_events");
    store
        .insert_events(std::slice::from_ref(&third))
        .await
        .must("insert_events");
    store.insert_events(&[]).await.must("insert_events of none");

    let list =
        |filter: EventFilter| async move { store.list_events(&filter).await.must("list_events") };
    let all = list(EventFilter {
        limit: 10,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(all.len(), 3);
    assert!(
        all[0].id > all[1].id && all[1].id > all[2].id,
        "newest first, increasing ids"
    );
    let stored = &all[2];
    assert_eq!(
        AuditEvent {
            id: 0,
            ..stored.clone()
        },
        first,
        "every field comes back"
    );
    let after = list(EventFilter {
        after: Some(all[2].id),
        limit: 1,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].kind,
        kinds::TOKEN_ISSUED,
        "after an id: the oldest first"
    );
    let admin = list(EventFilter {
        kind: Some("admin.".into()),
        limit: 10,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].actor, Actor::Cli("root".into()));
    let exact = list(EventFilter {
        kind: Some("token".into()),
        limit: 10,
        ..EventFilter::default()
    })
    .await;
    assert!(
        exact.is_empty(),
        "a kind without a final dot is matched whole"
    );
    let hers = list(EventFilter {
        user_id: Some(alice),
        limit: 10,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(hers.len(), 2);

    assert_eq!(store.purge_events(2_500).await.must("purge_events"), 2);
    let left = list(EventFilter {
        limit: 10,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, kinds::USER_DISABLED);
}
