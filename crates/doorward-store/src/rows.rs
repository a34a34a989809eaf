//! The row mapping both adapters share: the columns each record is read from, the [`Columns`]
//! reader that a driver's row implements, and one builder per record written over it.
//!
//! The two schemas keep the same values in different column types (SQLite: UUIDs as TEXT,
//! booleans as INTEGER, digests as BLOB; PostgreSQL: UUID, BOOLEAN, BYTEA, times as BIGINT). Each
//! adapter's `Columns` implementation hides its dialect, so a builder reads `row.uuid("id")`
//! whichever database the row came from. The encodings are the same in both: scopes
//! space-separated, redirect URIs and resources (RFC 8707) one a line, the client policy as JSON, codes, tokens and
//! session ids as 32-byte SHA-256 digests. A value a builder cannot parse makes the row corrupt
//! ([`corrupt`]), never a default. The SQL that selects these columns stays in each adapter.

use doorward_core::audit::{Actor, AuditEvent};
use doorward_core::jose::SigningAlg;
use doorward_core::model::{
    AccessTokenRecord, BearerRecord, Client, ClientPolicy, ClientSource, CodeRecord, ConsentRecord,
    DeviceAuthorization, DeviceState, InitialTokenRecord, InvitationRecord, PreviousSecret,
    RefreshTokenRecord, RegistrationRecord, SessionRecord, SigningKeyRecord, User, UserSource,
};
use doorward_core::ports::{Failures, StoreError, StoreResult};
use doorward_core::TokenHash;
use doorward_proto::{CodeChallenge, CodeChallengeMethod, RedirectUri, ResourceUri, ScopeSet};
use uuid::Uuid;

/// The columns of one row, read by name, in the types the records use. A missing column, a
/// NULL where a value is required or a value of another type is an error of the driver, mapped
/// by the adapter.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    /// A number or a time (Unix seconds).
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn boolean(&self, name: &str) -> StoreResult<bool>;
    fn blob(&self, name: &str) -> StoreResult<Vec<u8>>;
    fn opt_blob(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    fn uuid(&self, name: &str) -> StoreResult<Uuid>;
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>>;

    /// A code's, token's or session's digest.
    fn hash(&self, name: &str) -> StoreResult<TokenHash> {
        TokenHash::from_slice(&self.blob(name)?).ok_or_else(|| corrupt(name))
    }

    /// A space-separated scope list.
    fn scopes(&self, name: &str) -> StoreResult<ScopeSet> {
        ScopeSet::parse(&self.text(name)?).map_err(|_| corrupt(name))
    }

    /// Resource indicators (RFC 8707), one a line ([`resource_lines`]); empty: none.
    fn resources(&self, name: &str) -> StoreResult<Vec<ResourceUri>> {
        self.text(name)?
            .lines()
            .map(|r| ResourceUri::parse(r).map_err(|_| corrupt(name)))
            .collect()
    }
}

/// Resource indicators as stored: one a line (a resource holds no whitespace).
pub(crate) fn resource_lines(resources: &[ResourceUri]) -> String {
    let lines: Vec<&str> = resources.iter().map(ResourceUri::as_str).collect();
    lines.join("\n")
}

/// A stored value that does not parse: the row was written by something else than this store.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("corrupt row: {what}").into())
}

pub(crate) const CLIENT_COLS: &str = "id, key, display_name, app_uri, redirect_uris, secret_hash, \
    policy, previous_secret_hash, previous_secret_expires_at, source, created_at";
pub(crate) const USER_COLS: &str = "id, username, display_name, password_hash, email, \
    email_verified, created_at, claims, admin, disabled_at, source, second_factor_required";
pub(crate) const INVITATION_COLS: &str =
    "hash, id, created_at, expires_at, created_by, email, used_at, used_by";
pub(crate) const EVENT_COLS: &str = "id, at_ms, kind, actor, user_id, client_id, address, detail";
pub(crate) const SESSION_COLS: &str = "hash, user_id, created_at, expires_at, amr";
pub(crate) const CONSENT_COLS: &str = "user_id, client_id, scopes, granted_at";
pub(crate) const CODE_COLS: &str = "hash, client_id, user_id, redirect_uri, scopes, \
    scope_requested, challenge, challenge_method, family_id, auth_time, issued_at, expires_at, \
    nonce, resources, dpop_jkt, scope_narrowed";
/// The grant family's data and authentication methods, beside a code's or a refresh token's
/// columns (`FROM codes` or `FROM refresh_tokens`, unaliased): what [`code_with_data`] and
/// [`refresh_with_data`] read (two lookups of one row by its primary key).
macro_rules! grant_data_of {
    ($table:literal) => {
        concat!(
            "(SELECT g.data FROM grants g WHERE g.family_id = ",
            $table,
            ".family_id) AS grant_data, (SELECT g.amr FROM grants g WHERE g.family_id = ",
            $table,
            ".family_id) AS grant_amr"
        )
    };
}
pub(crate) use grant_data_of;
pub(crate) const ACCESS_COLS: &str = "hash, family_id, client_id, user_id, scopes, issued_at, \
    expires_at, revoked_at, resources, dpop_jkt, act";
/// The refresh token's columns as inserted.
pub(crate) const REFRESH_COLS: &str = "hash, family_id, client_id, user_id, scopes, auth_time, \
    issued_at, expires_at, revoked_at, resources, dpop_jkt";
/// [`REFRESH_COLS`] and what the store sets later: what [`refresh`] reads.
pub(crate) const REFRESH_READ: &str = "hash, family_id, client_id, user_id, scopes, auth_time, \
    issued_at, expires_at, revoked_at, used_at, successor, resources, dpop_jkt";
pub(crate) const KEY_COLS: &str =
    "kid, alg, generation, private_key, public_jwk, created_at, activate_at, remove_at";

/// An access token with its user and client in one statement, `WHERE a.hash =` the dialect's
/// first parameter (`?1`, `$1`): what [`bearer`] reads. The user is a `LEFT JOIN`: a
/// `client_credentials` token has none; a token whose user is gone matches no row. The client's columns are aliased (see
/// [`CLIENT_ALIASES`]); every other name is unambiguous.
macro_rules! bearer_select {
    ($hash:literal) => {
        concat!(
            "SELECT a.hash, a.family_id, a.client_id, a.user_id, a.scopes,
                a.issued_at, a.expires_at, a.revoked_at, a.resources, a.dpop_jkt, a.act,
                u.id, u.username, u.display_name, u.password_hash, u.email, u.email_verified,
                u.created_at, u.claims, u.admin, u.disabled_at, u.source,
                u.second_factor_required,
                c.id AS c_id, c.key AS c_key, c.display_name AS c_display_name,
                c.app_uri AS c_app_uri, c.redirect_uris AS c_redirect_uris,
                c.secret_hash AS c_secret_hash, c.policy AS c_policy,
                c.previous_secret_hash AS c_previous_secret_hash,
                c.previous_secret_expires_at AS c_previous_secret_expires_at,
                c.source AS c_source, c.created_at AS c_created_at,
                g.data AS grant_data
            FROM access_tokens a
            LEFT JOIN users u ON u.id = a.user_id
            LEFT JOIN grants g ON g.family_id = a.family_id
            JOIN clients c ON c.id = a.client_id
            WHERE a.hash = ",
            $hash,
            " AND (a.user_id IS NULL OR u.id IS NOT NULL)"
        )
    };
}
pub(crate) use bearer_select;

/// The client columns under their own names, and under their aliases in [`bearer_select!`].
const CLIENT_NAMES: [&str; 11] = [
    "id",
    "key",
    "display_name",
    "app_uri",
    "redirect_uris",
    "secret_hash",
    "policy",
    "previous_secret_hash",
    "previous_secret_expires_at",
    "source",
    "created_at",
];
const CLIENT_ALIASES: [&str; 11] = [
    "c_id",
    "c_key",
    "c_display_name",
    "c_app_uri",
    "c_redirect_uris",
    "c_secret_hash",
    "c_policy",
    "c_previous_secret_hash",
    "c_previous_secret_expires_at",
    "c_source",
    "c_created_at",
];

/// A client from [`CLIENT_COLS`].
pub(crate) fn client(row: &dyn Columns) -> StoreResult<Client> {
    client_named(row, CLIENT_NAMES)
}

fn client_named(row: &dyn Columns, names: [&str; 11]) -> StoreResult<Client> {
    let [id, key, display_name, app_uri, uris, secret_hash, policy, previous_hash, previous_expires, source, created_at] =
        names;
    let previous_secret = match (row.opt_text(previous_hash)?, row.opt_int(previous_expires)?) {
        (Some(hash), Some(expires_at)) => Some(PreviousSecret { hash, expires_at }),
        _ => None,
    };
    let policy = row.text(policy)?;
    let redirect_uris = row
        .text(uris)?
        .lines()
        .map(|u| RedirectUri::parse(u).map_err(|_| corrupt("redirect_uris")))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Client {
        id: row.uuid(id)?,
        key: row.text(key)?,
        display_name: row.text(display_name)?,
        app_uri: row.text(app_uri)?,
        redirect_uris,
        secret_hash: row.opt_text(secret_hash)?,
        previous_secret,
        policy: ClientPolicy::from_json(&policy).map_err(|_| corrupt("policy"))?,
        source: ClientSource::parse(&row.text(source)?).ok_or_else(|| corrupt("source"))?,
        created_at: row.int(created_at)?,
    })
}

/// A user from [`USER_COLS`].
pub(crate) fn user(row: &dyn Columns) -> StoreResult<User> {
    Ok(User {
        id: row.uuid("id")?,
        username: row.text("username")?,
        display_name: row.text("display_name")?,
        password_hash: row.text("password_hash")?,
        email: row.opt_text("email")?,
        email_verified: row.boolean("email_verified")?,
        created_at: row.int("created_at")?,
        claims: claims_object(&row.text("claims")?)?,
        admin: row.boolean("admin")?,
        disabled_at: row.opt_int("disabled_at")?,
        source: UserSource::parse(&row.text("source")?)
            .ok_or_else(|| corrupt("a user's source is unknown"))?,
        second_factor_required: row.boolean("second_factor_required")?,
    })
}

/// A TOTP secret from `user_id, secret, created_at, last_step`.
pub(crate) fn totp(row: &dyn Columns) -> StoreResult<doorward_core::model::TotpRecord> {
    Ok(doorward_core::model::TotpRecord {
        user_id: row.uuid("user_id")?,
        secret: row.opt_blob("secret")?.unwrap_or_default(),
        created_at: row.int("created_at")?,
        last_step: row.int("last_step")?,
    })
}

/// The columns of a passkey, in [`passkey`]'s order.
pub(crate) const PASSKEY_COLS: &str =
    "id, user_id, credential_id, name, credential, created_at, last_used_at";

/// A passkey from [`PASSKEY_COLS`].
pub(crate) fn passkey(row: &dyn Columns) -> StoreResult<doorward_core::model::PasskeyRecord> {
    Ok(doorward_core::model::PasskeyRecord {
        id: row.uuid("id")?,
        user_id: row.uuid("user_id")?,
        credential_id: row.blob("credential_id")?,
        name: row.text("name")?,
        credential: row.text("credential")?,
        created_at: row.int("created_at")?,
        last_used_at: row.opt_int("last_used_at")?,
    })
}

/// An invitation from [`INVITATION_COLS`].
pub(crate) fn invitation(row: &dyn Columns) -> StoreResult<InvitationRecord> {
    Ok(InvitationRecord {
        hash: row.hash("hash")?,
        id: row.uuid("id")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        created_by: row.text("created_by")?,
        email: row.opt_text("email")?,
        used_at: row.opt_int("used_at")?,
        used_by: row.opt_uuid("used_by")?,
    })
}

/// An audit event from [`EVENT_COLS`].
pub(crate) fn event(row: &dyn Columns) -> StoreResult<AuditEvent> {
    let actor = row.text("actor")?;
    Ok(AuditEvent {
        id: row.int("id")?,
        at_ms: row.int("at_ms")?,
        kind: row.text("kind")?,
        actor: Actor::parse(&actor).ok_or_else(|| corrupt("an event's actor is unreadable"))?,
        user_id: row.opt_uuid("user_id")?,
        client_id: row.opt_uuid("client_id")?,
        address: match row.opt_text("address")? {
            Some(text) => Some(
                text.parse()
                    .map_err(|_| corrupt("an event's address is unreadable"))?,
            ),
            None => None,
        },
        detail: claims_object(&row.text("detail")?)?,
    })
}

/// A user's `claims` column, or a grant's `data`: a JSON object.
fn claims_object(text: &str) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(corrupt("a user's claims are not a JSON object")),
    }
}

/// What a user's `claims` column holds.
pub(crate) fn claims_text(claims: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(claims.clone()).to_string()
}

/// A session from [`SESSION_COLS`].
pub(crate) fn session(row: &dyn Columns) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        hash: row.hash("hash")?,
        user_id: row.uuid("user_id")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        amr: amr_list(&row.text("amr")?),
    })
}

/// Authentication methods as stored: space-separated.
pub(crate) fn amr_text(amr: &[String]) -> String {
    amr.join(" ")
}

fn amr_list(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `grant_amr` column ([`grant_data_of!`]): none when the family has no row.
fn grant_amr(row: &dyn Columns) -> StoreResult<Vec<String>> {
    Ok(row
        .opt_text("grant_amr")?
        .map(|text| amr_list(&text))
        .unwrap_or_default())
}

/// A consent from [`CONSENT_COLS`].
pub(crate) fn consent(row: &dyn Columns) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        user_id: row.uuid("user_id")?,
        client_id: row.uuid("client_id")?,
        scopes: row.scopes("scopes")?,
        granted_at: row.int("granted_at")?,
    })
}

/// An authorization code from [`CODE_COLS`].
/// The columns of `device_authorizations`, in the order each adapter binds them.
pub(crate) const DEVICE_COLS: &str = "hash, user_code, client_id, scopes, resources, issued_at, \
     expires_at, polled_at, state, user_id, auth_time";

/// A device authorization's `state`, `user_id` and `auth_time` columns.
pub(crate) fn device_state(state: DeviceState) -> (&'static str, Option<Uuid>, Option<i64>) {
    match state {
        DeviceState::Pending => ("pending", None, None),
        DeviceState::Approved { user_id, auth_time } => {
            ("approved", Some(user_id), Some(auth_time))
        }
        DeviceState::Denied => ("denied", None, None),
    }
}

pub(crate) fn device(row: &dyn Columns) -> StoreResult<DeviceAuthorization> {
    let state = match (
        row.text("state")?.as_str(),
        row.opt_uuid("user_id")?,
        row.opt_int("auth_time")?,
    ) {
        ("pending", _, _) => DeviceState::Pending,
        ("denied", _, _) => DeviceState::Denied,
        ("approved", Some(user_id), Some(auth_time)) => {
            DeviceState::Approved { user_id, auth_time }
        }
        _ => return Err(corrupt("state")),
    };
    Ok(DeviceAuthorization {
        hash: row.hash("hash")?,
        user_code: row.text("user_code")?,
        client_id: row.uuid("client_id")?,
        scopes: row.scopes("scopes")?,
        resources: row.resources("resources")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        polled_at: row.opt_int("polled_at")?,
        state,
    })
}

pub(crate) fn code(row: &dyn Columns) -> StoreResult<CodeRecord> {
    let challenge = match (
        row.opt_text("challenge")?,
        row.opt_text("challenge_method")?,
    ) {
        (Some(c), Some(m)) => Some((
            CodeChallenge::parse(&c).map_err(|_| corrupt("challenge"))?,
            CodeChallengeMethod::parse(&m).map_err(|_| corrupt("challenge_method"))?,
        )),
        (None, None) => None,
        // Half a challenge must never read as "no PKCE".
        _ => return Err(corrupt("challenge")),
    };
    let redirect_uri = row.text("redirect_uri")?;
    Ok(CodeRecord {
        hash: row.hash("hash")?,
        client_id: row.uuid("client_id")?,
        user_id: row.uuid("user_id")?,
        redirect_uri: RedirectUri::parse(&redirect_uri).map_err(|_| corrupt("redirect_uri"))?,
        scopes: row.scopes("scopes")?,
        scope_requested: row.boolean("scope_requested")?,
        challenge,
        nonce: row.opt_text("nonce")?,
        family_id: row.uuid("family_id")?,
        auth_time: row.int("auth_time")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        resources: row.resources("resources")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        scope_narrowed: row.boolean("scope_narrowed")?,
        grant_data: serde_json::Map::new(),
        amr: Vec::new(),
    })
}

/// A code with its grant family's data ([`grant_data_of!`]).
pub(crate) fn code_with_data(row: &dyn Columns) -> StoreResult<CodeRecord> {
    Ok(CodeRecord {
        grant_data: grant_data(row)?,
        amr: grant_amr(row)?,
        ..code(row)?
    })
}

/// A refresh token with its grant family's data ([`grant_data_of!`]).
pub(crate) fn refresh_with_data(row: &dyn Columns) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        grant_data: grant_data(row)?,
        amr: grant_amr(row)?,
        ..refresh(row)?
    })
}

/// The `grant_data` column: the family's data, none when the family has no row.
fn grant_data(row: &dyn Columns) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    match row.opt_text("grant_data")? {
        Some(text) => claims_object(&text),
        None => Ok(serde_json::Map::new()),
    }
}

/// An access token from [`ACCESS_COLS`].
pub(crate) fn access(row: &dyn Columns) -> StoreResult<AccessTokenRecord> {
    Ok(AccessTokenRecord {
        hash: row.hash("hash")?,
        family_id: row.uuid("family_id")?,
        client_id: row.uuid("client_id")?,
        user_id: row.opt_uuid("user_id")?,
        scopes: row.scopes("scopes")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        revoked: row.opt_int("revoked_at")?.is_some(),
        resources: row.resources("resources")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        act: row.opt_text("act")?,
    })
}

/// An access token with its user and client, from [`bearer_select!`].
pub(crate) fn bearer(row: &dyn Columns) -> StoreResult<BearerRecord> {
    let token = access(row)?;
    let user = match token.user_id {
        Some(_) => Some(user(row)?),
        None => None,
    };
    Ok(BearerRecord {
        token,
        user: user.map(std::sync::Arc::new),
        client: client_named(row, CLIENT_ALIASES)?.into(),
        grant_data: grant_data(row)?.into(),
    })
}

/// A refresh token from [`REFRESH_READ`].
pub(crate) fn refresh(row: &dyn Columns) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        hash: row.hash("hash")?,
        family_id: row.uuid("family_id")?,
        client_id: row.uuid("client_id")?,
        user_id: row.uuid("user_id")?,
        scopes: row.scopes("scopes")?,
        auth_time: row.int("auth_time")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        revoked: row.opt_int("revoked_at")?.is_some(),
        used_at: row.opt_int("used_at")?,
        successor: row.opt_blob("successor")?,
        resources: row.resources("resources")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        grant_data: serde_json::Map::new(),
        amr: Vec::new(),
    })
}

/// A signing key from [`KEY_COLS`].
pub(crate) fn signing_key(row: &dyn Columns) -> StoreResult<SigningKeyRecord> {
    let alg = row.text("alg")?;
    Ok(SigningKeyRecord {
        kid: row.text("kid")?,
        alg: SigningAlg::parse(&alg).ok_or_else(|| corrupt("alg"))?,
        generation: row.int("generation")?,
        private_key: row.blob("private_key")?,
        public_jwk: row.text("public_jwk")?,
        created_at: row.int("created_at")?,
        activate_at: row.int("activate_at")?,
        remove_at: row.opt_int("remove_at")?,
    })
}

/// A failure counter (`failures`, `last_at`, `expires_at`).
pub(crate) fn failures(row: &dyn Columns) -> StoreResult<Failures> {
    Ok(Failures {
        count: u32::try_from(row.int("failures")?).map_err(|_| corrupt("failures"))?,
        last_at: row.int("last_at")?,
        expires_at: row.int("expires_at")?,
    })
}

/// The columns of an initial access token (RFC 7591 §3).
pub(crate) const INITIAL_TOKEN_COLS: &str = "hash, created_at, expires_at, uses_left";

/// An initial access token from [`INITIAL_TOKEN_COLS`].
pub(crate) fn initial_token(row: &dyn Columns) -> StoreResult<InitialTokenRecord> {
    Ok(InitialTokenRecord {
        hash: row.hash("hash")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        uses_left: u32::try_from(row.int("uses_left")?).map_err(|_| corrupt("uses_left"))?,
    })
}

/// A registered client and its registration: [`CLIENT_COLS`] of `clients` joined with
/// `token_hash, metadata` of `client_registrations`.
pub(crate) fn registration(row: &dyn Columns) -> StoreResult<(Client, RegistrationRecord)> {
    let client = client(row)?;
    let record = RegistrationRecord {
        client_id: client.id,
        token_hash: row.hash("token_hash")?,
        metadata: row.text("metadata")?,
    };
    Ok((client, record))
}
