//! Device authorizations ([`crate::ports::DeviceStore`], RFC 8628).

use uuid::Uuid;

use super::fixtures::{code, NOW};
use super::steps::{client_1_and_user, redeem_code};
use super::{scopes, Must};
use crate::model::{DeviceAuthorization, DeviceState};
use crate::ports::{Redemption, Store};
use crate::TokenHash;

fn device(hash: u8, user_code: &str, client: Uuid) -> DeviceAuthorization {
    DeviceAuthorization {
        hash: TokenHash([hash; 32]),
        user_code: user_code.into(),
        client_id: client,
        scopes: scopes("base openid"),
        resources: vec![
            doorward_proto::ResourceUri::parse("https://api.example/").expect("a valid resource")
        ],
        issued_at: NOW,
        expires_at: NOW + 600,
        polled_at: None,
        state: DeviceState::Pending,
    }
}

/// A device authorization is stored once per user code, found by it, polled (each poll sees
/// the previous one's time), answered once while pending and unexpired, with its code record
/// stored in the same step when approved (then redeemed once), and purged once expired.
pub async fn device_authorizations_are_answered_once(store: &dyn Store) {
    let (c1, user) = client_1_and_user(store, "d").await;
    let first = device(1, "BCDFGHJK", c1);
    assert!(store
        .insert_device_authorization(&first)
        .await
        .must("insert_device_authorization"));
    assert!(
        !store
            .insert_device_authorization(&device(2, "BCDFGHJK", c1))
            .await
            .must("insert_device_authorization"),
        "a user code already stored must be refused"
    );
    assert_eq!(
        store
            .find_device_by_user_code("BCDFGHJK")
            .await
            .must("find_device_by_user_code"),
        Some(first.clone()),
        "the record must come back whole"
    );
    assert_eq!(
        store
            .find_device_by_user_code("ZZZZZZZZ")
            .await
            .must("find"),
        None
    );

    // Polls: each sees the previous one's time.
    let hash = TokenHash([1; 32]);
    let polled = store
        .poll_device(&hash, NOW + 5)
        .await
        .must("poll_device")
        .unwrap();
    assert_eq!(polled.polled_at, None, "the first poll sees no earlier one");
    let polled = store
        .poll_device(&hash, NOW + 12)
        .await
        .must("poll_device")
        .unwrap();
    assert_eq!(
        polled.polled_at,
        Some(NOW + 5),
        "a poll sees the previous one's time"
    );
    assert_eq!(
        store
            .poll_device(&TokenHash([9; 32]), NOW)
            .await
            .must("poll_device"),
        None
    );

    // Approved once, with its code; a second answer changes nothing.
    let family = Uuid::from_u128(0xde71ce);
    let mut record = code(1, c1, user, family);
    record.challenge = None;
    record.nonce = None;
    let approved = DeviceState::Approved {
        user_id: user,
        auth_time: NOW + 20,
    };
    assert!(
        store
            .settle_device(&hash, approved, Some(&record), NOW + 30)
            .await
            .must("settle_device"),
        "a pending authorization is answered"
    );
    assert!(
        !store
            .settle_device(&hash, DeviceState::Denied, None, NOW + 31)
            .await
            .must("settle_device"),
        "an answered authorization is not answered again"
    );
    let polled = store
        .poll_device(&hash, NOW + 40)
        .await
        .must("poll_device")
        .unwrap();
    assert_eq!(
        polled.state, approved,
        "the approval must come back with its user and time"
    );
    assert!(
        matches!(
            redeem_code(store, &hash, c1, NOW + 40, None).await,
            Redemption::Fresh(_)
        ),
        "the approval's code record is stored with it, and redeemed once"
    );
    assert!(matches!(
        redeem_code(store, &hash, c1, NOW + 41, None).await,
        Redemption::Spent(_)
    ));

    // Denied; and an expired one cannot be answered.
    let second = device(3, "CDFGHJKL", c1);
    store
        .insert_device_authorization(&second)
        .await
        .must("insert");
    assert!(store
        .settle_device(&second.hash, DeviceState::Denied, None, NOW + 1)
        .await
        .must("settle_device"));
    let third = device(4, "DFGHJKLM", c1);
    store
        .insert_device_authorization(&third)
        .await
        .must("insert");
    assert!(
        !store
            .settle_device(&third.hash, DeviceState::Denied, None, NOW + 600)
            .await
            .must("settle_device"),
        "an expired authorization (expires_at <= now) cannot be answered"
    );
    assert_eq!(
        store
            .find_device_by_user_code("CDFGHJKL")
            .await
            .must("find")
            .map(|d| d.state),
        Some(DeviceState::Denied)
    );

    // The purge forgets expired ones, and with them their user codes.
    store
        .purge_expired(NOW + 600, 0)
        .await
        .must("purge_expired");
    assert_eq!(
        store
            .find_device_by_user_code("BCDFGHJK")
            .await
            .must("find"),
        None
    );
    assert!(store
        .insert_device_authorization(&device(5, "BCDFGHJK", c1))
        .await
        .must("insert"));
}
