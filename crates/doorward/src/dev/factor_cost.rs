//! `doorward dev second-factor-cost`: the cost of one second-factor check at sign-in, each
//! through the engine's public path over the in-memory store, one thread, the session it opens
//! included:
//!
//! - **TOTP**: the pending sign-in opened, the user read, the throttle read, the secret
//!   unsealed, up to three HMAC-SHA1 codes computed, the step moved forward atomically;
//! - **passkey**: the ceremony's MAC checked and its id spent (the `jti` insert), the answer
//!   parsed, the passkey found by its credential id, the ES256 signature verified, the counter
//!   stored.
//!
//! The authenticator is this module's: a P-256 key, `none` attestation, assertions signed as a
//! platform authenticator signs them. The clock moves 30 s before each code (a step is
//! accepted once), so a fresh password step (Argon2, not timed) comes every few codes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_core::config::UserSpec;
use doorward_core::memory::MemoryStore;
use doorward_core::ports::{Clock, OsRandom, UnixTime};
use doorward_core::session::SignInError;
use doorward_core::{Engine, EngineConfig};
use doorward_proto::Secret;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use sha2::{Digest, Sha256};

const ISSUER: &str = "https://id.example.com";
const PASSWORD: &str = "a passphrase for the cost run";

/// Wall time, moved forward by hand.
struct SteppingClock(AtomicI64);

impl Clock for SteppingClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

pub async fn run(iterations: u32) -> anyhow::Result<()> {
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let clock = Arc::new(SteppingClock(AtomicI64::new(start)));
    let engine = Engine::new(
        Arc::new(MemoryStore::default()),
        clock.clone(),
        Arc::new(OsRandom),
        EngineConfig {
            issuer: ISSUER.into(),
            ..EngineConfig::default()
        },
    )
    .await?;
    let password = Secret::new(PASSWORD);
    println!(
        "check    checks  µs/check  checks/s  (one thread, in-memory store, session included)"
    );
    let totp = totp_cost(&engine, &clock, &password, iterations).await?;
    report("totp", iterations, totp);
    let passkey = passkey_cost(&engine, &password, iterations).await?;
    report("passkey", iterations, passkey);
    Ok(())
}

fn report(name: &str, iterations: u32, spent: Duration) {
    let per = spent.as_secs_f64() / f64::from(iterations);
    println!(
        "{name:<8} {iterations:>6}  {:>8.1}  {:>8.0}",
        per * 1e6,
        1.0 / per
    );
}

async fn user(engine: &Engine, name: &str, password: &Secret) -> anyhow::Result<()> {
    engine
        .seed_user(&UserSpec {
            username: name.into(),
            display_name: name.into(),
            password: password.clone(),
            email: None,
            email_verified: false,
            claims: Default::default(),
            admin: false,
        })
        .await?;
    Ok(())
}

/// The pending sign-in a password opens for a user with a second factor.
async fn pending(engine: &Engine, name: &str, password: &Secret) -> anyhow::Result<String> {
    match engine.sign_in(name, password, None).await {
        Err(SignInError::SecondFactor { pending, .. }) => Ok(pending),
        other => Err(anyhow!(
            "expected a second-factor step, got {:?}",
            other.map(|_| ())
        )),
    }
}

async fn totp_cost(
    engine: &Engine,
    clock: &SteppingClock,
    password: &Secret,
    iterations: u32,
) -> anyhow::Result<Duration> {
    user(engine, "tess", password).await?;
    let (_, signed_in) = engine.sign_in("tess", password, None).await?;
    let enrolment = engine.totp_enrolment(&signed_in.user);
    let secret = totp_secret(&enrolment.secret)?;
    engine
        .confirm_totp(
            &signed_in.user,
            &enrolment.form_token,
            &secret.generate(clock.now() as u64),
            &doorward_core::audit::Actor::Cli("cost".into()),
        )
        .await?;
    let mut spent = Duration::ZERO;
    let mut pending_token = String::new();
    for i in 0..iterations {
        // A pending sign-in lives five minutes of the clock: renewed every eight steps.
        if i % 8 == 0 {
            pending_token = pending(engine, "tess", password).await?;
        }
        clock.0.fetch_add(30, Ordering::SeqCst);
        let code = secret.generate(clock.now() as u64);
        let started = Instant::now();
        engine
            .finish_sign_in(&pending_token, &code, None)
            .await
            .map_err(|e| anyhow!("code {i} refused: {e}"))?;
        spent += started.elapsed();
    }
    Ok(spent)
}

fn totp_secret(base32: &str) -> anyhow::Result<totp_rs::TOTP> {
    let bytes = totp_rs::Secret::Encoded(base32.to_owned())
        .to_bytes()
        .map_err(|e| anyhow!("the enrolment's key: {e:?}"))?;
    Ok(totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
    ))
}

async fn passkey_cost(
    engine: &Engine,
    password: &Secret,
    iterations: u32,
) -> anyhow::Result<Duration> {
    user(engine, "pia", password).await?;
    let (_, signed_in) = engine.sign_in("pia", password, None).await?;
    let mut authenticator = Authenticator::new();
    let ceremony = engine
        .passkey_registration(&signed_in, "cost", password, None)
        .await?;
    let answer = authenticator.create(&ceremony.options)?;
    engine
        .register_passkey(&signed_in, &ceremony.state, &answer, "cost", None)
        .await
        .map_err(|e| anyhow!("registration refused: {e}"))?;
    let mut spent = Duration::ZERO;
    for i in 0..iterations {
        let ceremony = engine
            .passkey_sign_in()
            .context("passkeys are available on https://id.example.com")?;
        let answer = authenticator.get(&ceremony.options)?;
        let started = Instant::now();
        engine
            .sign_in_with_passkey(&ceremony.state, &answer, None)
            .await
            .map_err(|e| anyhow!("assertion {i} refused: {e}"))?;
        spent += started.elapsed();
    }
    Ok(spent)
}

/// A platform authenticator of one P-256 credential.
struct Authenticator {
    key: SigningKey,
    id: [u8; 16],
    user_handle: Vec<u8>,
    counter: u32,
}

impl Authenticator {
    fn new() -> Self {
        let mut id = [0u8; 16];
        doorward_core::ports::Random::fill(&OsRandom, &mut id);
        Self {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            id,
            user_handle: Vec::new(),
            counter: 0,
        }
    }

    fn rp_id_hash() -> [u8; 32] {
        Sha256::digest(b"id.example.com").into()
    }

    fn client_data(kind: &str, options: &serde_json::Value) -> anyhow::Result<Vec<u8>> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .context("a challenge")?;
        Ok(serde_json::to_vec(&serde_json::json!({
            "type": kind, "challenge": challenge, "origin": ISSUER, "crossOrigin": false,
        }))?)
    }

    /// `navigator.credentials.create`: `none` attestation, user present and verified.
    fn create(&mut self, options: &str) -> anyhow::Result<String> {
        let options: serde_json::Value = serde_json::from_str(options)?;
        let user = options["publicKey"]["user"]["id"]
            .as_str()
            .context("user id")?;
        self.user_handle = URL_SAFE_NO_PAD.decode(user)?;
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().context("x")?, point.y().context("y")?);
        // COSE_Key (RFC 9053 §7.1.1): {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(x);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(y);
        let mut auth_data = Self::rp_id_hash().to_vec();
        auth_data.push(0x45); // UP, UV, AT
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0; 16]); // AAGUID
        auth_data.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.id);
        auth_data.extend_from_slice(&cose);
        // {"fmt": "none", "attStmt": {}, "authData": bytes}
        let mut attestation = vec![0xa3, 0x63];
        attestation.extend_from_slice(b"fmt");
        attestation.push(0x64);
        attestation.extend_from_slice(b"none");
        attestation.push(0x67);
        attestation.extend_from_slice(b"attStmt");
        attestation.extend_from_slice(&[0xa0, 0x68]);
        attestation.extend_from_slice(b"authData");
        attestation.push(0x59);
        attestation.extend_from_slice(&(auth_data.len() as u16).to_be_bytes());
        attestation.extend_from_slice(&auth_data);
        let id = URL_SAFE_NO_PAD.encode(self.id);
        Ok(serde_json::json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(Self::client_data("webauthn.create", &options)?),
                "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
            },
            "clientExtensionResults": {},
        })
        .to_string())
    }

    /// `navigator.credentials.get`: an assertion with the next counter.
    fn get(&mut self, options: &str) -> anyhow::Result<String> {
        let options: serde_json::Value = serde_json::from_str(options)?;
        self.counter += 1;
        let mut auth_data = Self::rp_id_hash().to_vec();
        auth_data.push(0x05); // UP, UV
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let client_data = Self::client_data("webauthn.get", &options)?;
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        let id = URL_SAFE_NO_PAD.encode(self.id);
        Ok(serde_json::json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                "authenticatorData": URL_SAFE_NO_PAD.encode(auth_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_bytes()),
                "userHandle": URL_SAFE_NO_PAD.encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
        .to_string())
    }
}
