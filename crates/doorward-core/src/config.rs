//! The engine's settings: the issuer, lifetimes, scopes, grant types, the key schedule, and the
//! clients and users declared in configuration. Plain values, checked where they are parsed.

use crate::password_rules::PasswordRules;
use doorward_proto::{RedirectUri, ResourceUri, ScopeSet, Secret};

use crate::client_document::DocumentPolicy;
use crate::jose::SigningAlg;
use crate::model::ClientPolicy;
use crate::passwords::HashCost;

/// The paths of the endpoints, below the issuer.
pub mod paths {
    pub const AUTHORIZE: &str = "/oauth/authorize";
    pub const TOKEN: &str = "/oauth/token";
    pub const USERINFO: &str = "/oauth/userinfo";
    pub const JWKS: &str = "/oauth/jwks";
    pub const INTROSPECT: &str = "/oauth/introspect";
    pub const REVOKE: &str = "/oauth/revoke";
    pub const END_SESSION: &str = "/oauth/end_session";
    /// Dynamic client registration (RFC 7591 §3); `/oauth/register/{client_id}` is each
    /// registered client's configuration endpoint (RFC 7592 §2).
    pub const REGISTER: &str = "/oauth/register";
    /// Pushed authorization requests (RFC 9126 §2).
    pub const PAR: &str = "/oauth/par";
    /// The device authorization endpoint (RFC 8628 §3.1).
    pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
    /// Where the user enters a device's user code (RFC 8628 §3.3, `verification_uri`).
    pub const DEVICE: &str = "/device";
}

/// How long each credential lives, in seconds.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    /// 7200 s by default, like Eternaltwin.
    pub access_token: i64,
    /// At most 60 s: a code is redeemed right after the redirect (RFC 6749 §4.1.2 recommends a
    /// maximum of 10 minutes; shorter narrows the window of a leaked code).
    pub code: i64,
    pub refresh_token: i64,
    /// A browser session at the server.
    pub session: i64,
    /// OIDC ID tokens.
    pub id_token: i64,
    /// The refresh-rotation grace window: the same client presenting the same refresh token
    /// again within it (two requests racing, a retry after a lost answer) gets the same answer
    /// instead of having its grant revoked for reuse. 0 disables it; at most
    /// [`crate::ports::MAX_REFRESH_GRACE`].
    pub refresh_grace: i64,
    /// The absolute lifetime of a grant family, counted from the code that started it: each
    /// refresh token lives `refresh_token` seconds but never past it, and a refresh after it is
    /// `invalid_grant`, so rotation cannot keep a grant alive forever (RFC 9700 §4.14.2:
    /// refresh tokens "SHOULD expire", however often they are used). 90 days by default.
    pub refresh_family: i64,
    /// How long the `request_uri` of a pushed authorization request (RFC 9126 §2.2) stays
    /// valid: the browser must reach the authorization endpoint, sign in and consent within
    /// it, as the request travels through those pages by its `request_uri`. 300 s by default,
    /// at most [`MAX_PUSHED_REQUEST_LIFETIME`].
    pub pushed_request: i64,
    /// How long a device authorization (RFC 8628 §3.2 `expires_in`) waits for its user: 600 s
    /// by default.
    pub device_code: i64,
}

/// The longest [`Lifetimes::pushed_request`]: RFC 9126 §2.2 calls for a short life (its
/// example: 5 to 600 seconds).
pub const MAX_PUSHED_REQUEST_LIFETIME: i64 = 600;

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token: 7200,
            code: 60,
            refresh_token: 30 * 24 * 3600,
            session: 14 * 24 * 3600,
            id_token: 3600,
            refresh_grace: 10,
            refresh_family: 90 * 24 * 3600,
            pushed_request: 300,
            device_code: 600,
        }
    }
}

/// The engine's policy.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The issuer identifier (RFC 8414 §2, OIDC Core §2): the server's external URL without a
    /// trailing slash. Every endpoint URL starts with it.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    /// Accept `code_challenge_method=plain` (RFC 7636 §4.2). Off by default: `plain` protects
    /// nothing once the authorization request leaks (RFC 9700 §2.1.1).
    pub allow_plain_pkce: bool,
    /// Every authorization request must carry a PKCE challenge (RFC 7636, RFC 9700 §2.1.1);
    /// otherwise only public clients and clients with `require_pkce` need one.
    pub require_pkce: bool,
    /// Every authorization request must be pushed first (RFC 9126 §5,
    /// `require_pushed_authorization_requests`); otherwise only clients whose
    /// [`crate::model::ClientPolicy::require_pushed_requests`] says so.
    pub require_pushed_requests: bool,
    /// The scopes this server grants.
    pub scopes: ScopeSet,
    /// What a request that names no scope gets (RFC 6749 §3.3), within the client's scopes.
    pub default_scopes: ScopeSet,
    pub hash_cost: HashCost,
    pub keys: KeyPolicy,
    /// Seals private signing keys at rest when set.
    pub key_encryption_secret: Option<Secret>,
    /// The grant types this server answers.
    pub grants: Grants,
    /// The resources (RFC 8707) clients may ask tokens for, besides the issuer's own API
    /// (named by the issuer identifier), which is always one. A client's
    /// [`crate::model::ClientPolicy::resources`] may narrow them.
    pub resources: Vec<ResourceUri>,
    /// Dynamic client registration (RFC 7591, RFC 7592); off by default.
    pub registration: RegistrationPolicy,
    /// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a
    /// `client_id` that is an https URL names the client whose metadata that URL serves,
    /// fetched through the engine's [`crate::fetch::Fetcher`] ([`crate::client_document`]).
    /// Off by default.
    pub client_documents: DocumentPolicy,
    /// Sender-constrained tokens (RFC 9449, DPoP).
    pub dpop: DpopPolicy,
    /// What a new password must be ([`crate::password_rules`]).
    pub passwords: PasswordRules,
    /// Who may create an account at the sign-up page.
    pub sign_up: SignUpMode,
    /// Everyone signs in with a second factor (`[accounts] second_factor = "required"`).
    pub second_factor_required: bool,
    /// How recent, in seconds, an admin's sign-in must be for a console action that changes
    /// someone's access (`[accounts] admin_fresh_sign_in`, 600 by default).
    pub admin_fresh_sign_in: i64,
    /// How long audit events are kept, in seconds (90 days by default).
    pub audit_retention: u32,
    /// Whether each token issued is an audit event (on by default; a server issuing
    /// thousands a second may keep only the rest).
    pub audit_tokens: bool,
}

/// DPoP (RFC 9449): tokens bound to a key the client proves it holds with each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpopPolicy {
    /// A token request with a `DPoP` proof gets tokens bound to its key; a request without
    /// one gets bearer tokens (unless its client has `dpop_bound_access_tokens`). Off: the
    /// `DPoP` header is ignored and the metadata does not list the algorithms. On by default.
    pub enabled: bool,
    /// Proofs at the token and pushed-request endpoints must carry a nonce this server handed
    /// out (§8): a proof made in advance by a stolen key is useless. Clients retry once with
    /// the `DPoP-Nonce` of the `use_dpop_nonce` answer. Off by default.
    pub require_nonce: bool,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            require_nonce: false,
        }
    }
}

/// The grant types a server answers; the others get `unsupported_response_type` at the
/// authorization endpoint (RFC 6749 §4.1.2.1) and `unsupported_grant_type` at the token
/// endpoint (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {
    /// `response_type=code` and `grant_type=authorization_code` (RFC 6749 §4.1).
    pub authorization_code: bool,
    /// `grant_type=refresh_token` (RFC 6749 §6). Refresh tokens are issued only when on.
    pub refresh_token: bool,
    /// `grant_type=password`, the resource owner password credentials grant (RFC 6749 §4.3),
    /// for parity with TxOAuth2 and Authlib.
    ///
    /// # Security
    /// RFC 9700 §2.4: it "MUST NOT be used". The client sees the user's password, the user
    /// learns to type it into other applications, and nothing but a password can sign them in
    /// (no second factor, no consent page). Each request also costs an Argon2 verification.
    pub insecure_password: bool,
    /// `response_type=token`, the implicit grant (RFC 6749 §4.2), for parity with TxOAuth2.
    ///
    /// # Security
    /// RFC 9700 §2.1.2: clients "SHOULD NOT" use it. The access token travels in the URL
    /// fragment, where browser history, extensions and referrers can leak it (RFC 9700 §4.3),
    /// and nothing binds it to the client that asked. No refresh token is issued with it.
    pub insecure_implicit: bool,
    /// `grant_type=client_credentials` (RFC 6749 §4.4), for the clients whose
    /// [`crate::model::ClientPolicy::grant_types`] name it: a token for the client itself,
    /// with no user, no refresh token and no ID token.
    pub client_credentials: bool,
    /// The device authorization grant (RFC 8628) for the clients whose
    /// [`crate::model::ClientPolicy::grant_types`] name it: the device authorization endpoint,
    /// the user-code page and `urn:ietf:params:oauth:grant-type:device_code` at the token
    /// endpoint.
    pub device_code: bool,
    /// Token exchange (RFC 8693) for the clients whose
    /// [`crate::model::ClientPolicy::grant_types`] name it: a token received from a user's
    /// client traded for a narrower one, for the resources the exchanging client may name.
    pub token_exchange: bool,
}

impl Grants {
    /// Nothing enabled: an embedding application names what it wants.
    pub const NONE: Grants = Grants {
        authorization_code: false,
        refresh_token: false,
        insecure_password: false,
        insecure_implicit: false,
        client_credentials: false,
        device_code: false,
        token_exchange: false,
    };
    /// The authorization-code grant with refresh tokens, what `doorward serve` runs.
    pub const CODE_AND_REFRESH: Grants = Grants {
        authorization_code: true,
        refresh_token: true,
        insecure_password: false,
        insecure_implicit: false,
        client_credentials: false,
        device_code: false,
        token_exchange: false,
    };
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            issuer: "http://localhost".to_owned(),
            lifetimes: Lifetimes::default(),
            allow_plain_pkce: false,
            require_pkce: false,
            require_pushed_requests: false,
            // Invariant: these are valid scope tokens.
            scopes: ScopeSet::parse("base openid profile email").expect("valid scopes"),
            default_scopes: ScopeSet::parse("base").expect("`base` is a valid scope"),
            hash_cost: HashCost::Default,
            keys: KeyPolicy::default(),
            key_encryption_secret: None,
            grants: Grants::CODE_AND_REFRESH,
            resources: Vec::new(),
            registration: RegistrationPolicy::default(),
            client_documents: DocumentPolicy::default(),
            dpop: DpopPolicy::default(),
            passwords: PasswordRules::default(),
            sign_up: SignUpMode::Off,
            second_factor_required: false,
            admin_fresh_sign_in: 600,
            audit_retention: 90 * 24 * 3600,
            audit_tokens: true,
        }
    }
}

/// Who may create an account at the sign-up page (`[accounts] sign_up`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignUpMode {
    /// No sign-up page (the default): accounts come from the operator.
    #[default]
    Off,
    /// With an invitation (`doorward users invite`, the admin console).
    Invite,
    /// Anyone (a few accounts an hour per address).
    Open,
}

impl SignUpMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "invite" => Some(Self::Invite),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
}

/// Who may register a client at [`paths::REGISTER`] (RFC 7591 §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegistrationMode {
    /// No registration endpoint (the default).
    #[default]
    Off,
    /// Only with an initial access token (RFC 7591 §3, `doorward clients registration-token`).
    Token,
    /// Anyone, for public clients only (`token_endpoint_auth_method = "none"`), under the
    /// policy's limits; an initial access token still registers any kind of client.
    Open,
}

/// The rules of dynamic client registration ([`crate::registration`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrationPolicy {
    pub mode: RegistrationMode,
    /// Open mode: the schemes a redirect URI may have (`https`, `http`, `com.example.app`);
    /// empty: any that [`crate::redirect::check_registration`] allows.
    pub allowed_redirect_schemes: Vec<String>,
    /// Open mode: the hosts a redirect URI may name (exact, lower case); empty: any.
    pub allowed_redirect_hosts: Vec<String>,
    /// The most clients registration keeps at once (both modes); `None`: no cap.
    pub max_clients: Option<u64>,
    /// Open mode: registrations per client address (IPv6: per /64) in an hour, counted in
    /// the store so that instances share the count; `None`: no limit.
    pub per_address_per_hour: Option<u32>,
}

/// The key schedule.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    /// Algorithms to keep a key for; the first signs JWT access tokens.
    pub algorithms: Vec<SigningAlg>,
    /// How long a new key is published before it signs. Must exceed the JWKS cache lifetime
    /// announced to relying parties plus the instances' reload interval.
    pub publish_delay: i64,
    /// How long a key signs before its successor takes over.
    pub rotation_period: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            algorithms: vec![SigningAlg::Es256, SigningAlg::Rs256],
            publish_delay: 24 * 3600,
            rotation_period: 90 * 24 * 3600,
        }
    }
}

/// A client to register from configuration.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// `NAME@clients`.
    pub key: String,
    pub display_name: String,
    pub app_uri: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// Ignored (and best left empty) for a public client, whose policy says
    /// `auth_method: Some(AuthMethod::None)`.
    pub secret: Secret,
    pub policy: ClientPolicy,
}

/// A user to create or update from configuration.
#[derive(Clone, Debug)]
pub struct UserSpec {
    pub username: String,
    pub display_name: String,
    pub password: Secret,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Claims added to the user's tokens ([`crate::model::User::claims`]).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Gives the admin role. A seed never takes it away: a role given by `doorward users`
    /// stays when the seed says `false`.
    pub admin: bool,
}
