//! States, signed and opaque: the matrix forges states with the parent module's private signing
//! helpers, which a child module sees.

use super::*;

pub(crate) fn params(server: &str) -> StateParams<'_> {
    StateParams {
        authorization_server: server,
        ttl: 600,
        pkce: true,
        oidc: true,
        leeway: 60,
        bound: false,
        max_age: None,
    }
}

fn key() -> StateKey {
    StateKey::new([7u8; 32]).unwrap()
}

fn forge(key: &StateKey, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = key.mac();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

async fn check(state: &str, sent: Option<&str>, now: i64) -> Result<Secrets, InvalidState> {
    StateMode::Signed(key())
        .verify(Some(state), sent, &params("https://as.example"), now)
        .await
}

#[tokio::test]
async fn signed_state_round_trip_derives_the_same_secrets() {
    let mode = StateMode::Signed(key());
    let p = params("https://as.example");
    let (state, sent) = mode.issue(&p, 1000).await.unwrap();
    let got = mode
        .verify(Some(&state), Some(&state), &p, 1001)
        .await
        .unwrap();
    assert_eq!(got.code_verifier, sent.code_verifier);
    assert_eq!(got.nonce, sent.nonce);
    let verifier = got.code_verifier.unwrap();
    assert_eq!(verifier.len(), 43);
    assert_ne!(Some(verifier), got.nonce);
    // Another state, other secrets.
    let (_, other) = mode.issue(&p, 1000).await.unwrap();
    assert_ne!(other.code_verifier, sent.code_verifier);
}

#[tokio::test]
async fn signed_state_matrix() {
    let mode = StateMode::Signed(key());
    let p = params("https://as.example");
    let (state, _) = mode.issue(&p, 1000).await.unwrap();
    let (other_state, _) = mode.issue(&p, 1000).await.unwrap();

    assert_eq!(
        check(&state, Some(&other_state), 1001).await.err(),
        Some(InvalidState::Mismatch)
    );
    assert_eq!(
        check(&state, None, 1001).await.err(),
        None,
        "no sent state: signature only"
    );
    assert_eq!(
        StateMode::Signed(key())
            .verify(None, None, &p, 1001)
            .await
            .err(),
        Some(InvalidState::Missing)
    );
    // Tampered signature, and a state signed by another key.
    let mut tampered = state.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        check(&tampered, None, 1001).await.err(),
        Some(InvalidState::BadSignature)
    );
    let (foreign, _) = StateMode::Signed(StateKey::new([8u8; 32]).unwrap())
        .issue(&p, 1000)
        .await
        .unwrap();
    assert_eq!(
        check(&foreign, None, 1001).await.err(),
        Some(InvalidState::BadSignature)
    );
    // Expired (exp = 1600), issued in the future beyond the leeway.
    assert_eq!(
        check(&state, None, 1601).await.err(),
        Some(InvalidState::Expired)
    );
    assert!(check(&state, None, 1600).await.is_ok());
    assert_eq!(
        check(&state, None, 900).await.err(),
        Some(InvalidState::IssuedInFuture)
    );
    assert!(check(&state, None, 950).await.is_ok(), "within the leeway");
    // Another authorization server.
    let err = StateMode::Signed(key())
        .verify(Some(&state), None, &params("https://other.example"), 1001)
        .await
        .err();
    assert_eq!(
        err,
        Some(InvalidState::OtherAuthorizationServer {
            expected: "https://other.example".into(),
            got: "https://as.example".into()
        })
    );
    // Not a JWS at all.
    assert_eq!(
        check("plainstate", None, 1001).await.err(),
        Some(InvalidState::NotAJws)
    );
    assert_eq!(
        check("a.b.c", None, 1001).await.err(),
        Some(InvalidState::NotAJws)
    );
    // alg none, and another action, and a missing claim.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"a":"authorize"}"#)
    );
    assert_eq!(
        check(&none, None, 1001).await.err(),
        Some(InvalidState::UnsupportedAlgorithm("none".into()))
    );
    let action = forge(
        &key(),
        HEADER,
        r#"{"a":"link","as":"https://as.example","iat":1000,"exp":1600,"rfp":"x"}"#,
    );
    assert_eq!(
        check(&action, None, 1001).await.err(),
        Some(InvalidState::WrongAction("link".into()))
    );
    let no_rfp = forge(
        &key(),
        HEADER,
        r#"{"a":"authorize","as":"https://as.example","iat":1000,"exp":1600}"#,
    );
    assert_eq!(
        check(&no_rfp, None, 1001).await.err(),
        Some(InvalidState::MalformedClaim("rfp"))
    );
}

#[tokio::test]
async fn opaque_state_is_single_use_and_checked() {
    let store = Arc::new(MemoryStateStore::default());
    let mode = StateMode::Opaque(store);
    let p = params("https://as.example");
    let (state, sent) = mode.issue(&p, 1000).await.unwrap();
    assert_eq!(
        mode.verify(Some(&state), Some("other"), &p, 1001)
            .await
            .err(),
        Some(InvalidState::Mismatch)
    );
    let got = mode
        .verify(Some(&state), Some(&state), &p, 1001)
        .await
        .unwrap();
    assert_eq!(got.code_verifier, sent.code_verifier);
    assert_eq!(got.nonce, sent.nonce);
    assert_eq!(
        mode.verify(Some(&state), None, &p, 1001).await.err(),
        Some(InvalidState::Unknown),
        "a state is taken once"
    );
    let (expired, _) = mode.issue(&p, 1000).await.unwrap();
    assert_eq!(
        mode.verify(Some(&expired), None, &p, 1601).await.err(),
        Some(InvalidState::Expired)
    );
    let (elsewhere, _) = mode.issue(&p, 1000).await.unwrap();
    assert!(matches!(
        mode.verify(Some(&elsewhere), None, &params("https://b.example"), 1001)
            .await,
        Err(InvalidState::OtherAuthorizationServer { .. })
    ));
}

fn pending(created_at: i64, ttl: i64) -> PendingAuthorization {
    PendingAuthorization {
        authorization_server: "https://as.example".into(),
        created_at,
        expires_at: created_at + ttl,
        code_verifier: None,
        nonce: None,
        max_age: None,
    }
}

/// Anyone can make states (each visit to a sign-in route does): a full store must still
/// take a genuine sign-in, and finish it.
#[tokio::test]
async fn a_full_memory_state_store_still_takes_a_sign_in() {
    let store = Arc::new(MemoryStateStore::default());
    for n in 0..MemoryStateStore::CAPACITY {
        store
            .store_state(&format!("flood-{n}"), pending(1000, 600))
            .await
            .unwrap();
    }
    let mode = StateMode::Opaque(store.clone());
    let p = params("https://as.example");
    let (state, sent) = mode
        .issue(&p, 1001)
        .await
        .expect("a full store takes a new state");
    let got = mode
        .verify(Some(&state), Some(&state), &p, 1002)
        .await
        .expect("and the callback finds it");
    assert_eq!(got.code_verifier, sent.code_verifier);
    assert_eq!(
        store.take_state("flood-0").await.unwrap().map(|_| ()),
        None,
        "the oldest state made room"
    );
    assert!(store.take_state("flood-1").await.unwrap().is_some());
    assert_eq!(store.len(), MemoryStateStore::CAPACITY - 2);
}

#[tokio::test]
async fn memory_state_store_drops_expired_entries_before_the_oldest() {
    let store = MemoryStateStore::with_capacity(3);
    store.store_state("a", pending(1000, 600)).await.unwrap();
    store.store_state("b", pending(1000, 100)).await.unwrap();
    store.store_state("c", pending(1000, 600)).await.unwrap();
    // At 1200, b has expired: it goes, a (the oldest) stays.
    store.store_state("d", pending(1200, 600)).await.unwrap();
    assert_eq!(store.len(), 3);
    assert!(store.take_state("b").await.unwrap().is_none());
    assert!(store.take_state("a").await.unwrap().is_some());
    // Taken entries leave no trace in the eviction order: c is now the oldest.
    store.store_state("e", pending(1200, 600)).await.unwrap();
    store.store_state("f", pending(1200, 600)).await.unwrap();
    assert_eq!(store.len(), 3);
    assert!(store.take_state("c").await.unwrap().is_none(), "evicted");
    for kept in ["d", "e", "f"] {
        assert!(store.take_state(kept).await.unwrap().is_some(), "{kept}");
    }
    assert!(store.is_empty());
    // A state stored again replaces the first one, and counts once.
    store.store_state("g", pending(1300, 600)).await.unwrap();
    store.store_state("g", pending(1301, 600)).await.unwrap();
    assert_eq!(store.len(), 1);
    let again = store.take_state("g").await.unwrap().expect("g");
    assert_eq!(again.created_at, 1301);
}
