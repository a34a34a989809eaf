//! The configuration file, parsed once into a checked [`Config`].
//!
//! Past 700 lines, still one idea: the file's format and every check of it, each naming its
//! key (the kinds of clients of issue 14 added theirs); the tests live in `config/tests.rs`.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:50320"            # or --listen / DOORWARD_LISTEN
//! external_uri = "http://localhost:50320" # the issuer origin; or --external-uri. Plain http
//!                                        # only on a loopback host, unless:
//! insecure_allow_http = false            # or --insecure-allow-http: http on any host (a test
//!                                        # network; tokens and passwords travel in clear)
//! database = "sqlite:/var/lib/doorward/doorward.sqlite" # or --database / DOORWARD_DATABASE;
//!                                        # a relative path is relative to the working directory
//! data_dir = "data"                      # relative to this file; holds the default database
//!                                        # when `database` is not set
//! header_timeout = 10                    # seconds for a request's head (and idle keep-alive)
//! max_header_bytes = 32768               # request line and headers; beyond: 431
//! body_timeout = 30                      # seconds for a request's whole body
//! max_connections = 1024                 # open at once; beyond, accepting waits
//! metrics_listen = "127.0.0.1:50321"     # or --metrics-listen: GET /metrics (Prometheus),
//!                                        # /healthz and /readyz on their own address; "off"
//!
//! [tokens]                               # lifetimes in seconds
//! access_token = 7200
//! code = 60
//! refresh_token = 2592000
//! session = 1209600
//!
//! id_token = 3600
//! refresh_grace = 10                     # same refresh token again within it: same answer
//! refresh_family = 7776000               # a grant's absolute lifetime, however often refreshed
//! device_code = 600                     # a device authorization (RFC 8628) waits this long
//! pushed_request = 300                   # a pushed request's request_uri (RFC 9126), 1 to 600;
//!                                        # sign-in and consent must be done within it
//!
//! [oauth]
//! insecure_allow_plain_pkce = false
//! require_pkce = false                   # PKCE for every client (public clients: always, S256)
//! require_pushed_authorization_requests = false  # every client must push its requests first
//!                                        # (RFC 9126, POST /oauth/par)
//! client_credentials = true              # the grant, for clients whose grant_types name it
//! jwt_bearer = true                      # RFC 7523 §2.1, for clients whose grant_types name
//!                                        # "urn:ietf:params:oauth:grant-type:jwt-bearer"
//! token_exchange = true                  # RFC 8693, for clients whose grant_types name
//!                                        # "urn:ietf:params:oauth:grant-type:token-exchange";
//!                                        # the audiences: the client's `resources`
//! device_authorization = true            # the device grant (RFC 8628), for clients whose
//!                                        # grant_types name "urn:ietf:params:oauth:grant-type:device_code"
//! dpop = true                            # DPoP (RFC 9449): a token request with a proof gets
//!                                        # tokens bound to its key
//! dpop_require_nonce = false             # proofs at /oauth/token and /oauth/par must carry
//!                                        # a server nonce (RFC 9449 §8)
//! scopes = ["base", "openid", "profile", "email"]   # offered
//! default_scopes = ["base"]                        # when a request names none
//! resources = ["https://api.example/"]   # RFC 8707 resource indicators clients may name
//!                                        # (absolute URIs, no fragment); the issuer (this
//!                                        # server's own API) is always one
//!
//! [keys]
//! algorithms = ["ES256", "RS256"]        # also "EdDSA", and "Ed25519" (RFC 9864, the same
//!                                        # signature by its new name, its own key); the first
//!                                        # signs JWT access tokens
//! publish_delay = 86400                  # seconds a new key is published before it signs
//! rotation_period = 7776000              # seconds a key signs before the next takes over
//! encryption_secret = "…"                # seals private keys in the database; or
//!                                        # DOORWARD_KEY_ENCRYPTION_SECRET. Default with SQLite:
//!                                        # a key file beside the database (key_secret.rs);
//!                                        # required with PostgreSQL
//! # With several instances, publish_delay must exceed 2 × 30 s (their reload interval) plus
//! # the JWKS max-age (publish_delay − 30, at most 300 s); shorter delays are for tests.
//!
//! [clients.NAME]                         # Eternaltwin's form (Key: NAME@clients)
//! display_name = "…"; app_uri = "…"; callback_uri = "…"; secret = "…"
//! # instead of callback_uri, several (exact match; RFC 8252 §7.3: a loopback IP URI
//! # registered without a port, http://127.0.0.1/cb or http://[::1]/cb, matches any port):
//! redirect_uris = ["https://app.example/cb", "http://127.0.0.1/cb"]
//! # optional, for OpenID Connect clients (defaults: what an Eternaltwin client gets)
//! scopes = ["openid", "profile"]         # default: every scope offered
//! post_logout_redirect_uris = ["…"]
//! token_endpoint_auth_method = "client_secret_basic"  # or client_secret_post; default: either;
//!                                        # or private_key_jwt (with `jwks`, no `secret`), client_secret_jwt
//!                                        # (the secret, ≥ 32 bytes, kept sealed to MAC with)
//!                                        # "none": a public client, no `secret`, PKCE S256
//!                                        # required; may register private-use schemes
//!                                        # (com.example.app:/cb), never http://localhost
//! jwks = '{"keys": [...]}'               # the client's public keys, inline: private_key_jwt,
//!                                        # and signed request objects (RFC 9101) of any client
//!                                        # (a private member such as `d` is refused)
//! jwks_uri = "https://app.example/jwks.json"  # or where it publishes them (not with `jwks`):
//!                                        # fetched under `[fetch]`, cached 1 min to 1 h
//!                                        # (max-age; default 5 min), refetched for an unknown
//!                                        # kid at most once per 10 s
//! grant_types = ["authorization_code", "refresh_token"]  # the default; also
//!                                        # "client_credentials" (confidential clients only),
//!                                        # "urn:ietf:params:oauth:grant-type:jwt-bearer" (RFC
//!                                        # 7523: the client's own keys sign its assertions)
//! claims = { tenant = "acme" }           # added to this client's tokens (ID, JWT access,
//!                                        # introspection, UserInfo); not `sub`, `iss`, …
//! require_pkce = false                   # PKCE for this client
//! require_pushed_authorization_requests = false  # this client must push its requests first
//! dpop_bound_access_tokens = false       # this client's tokens are always DPoP-bound (RFC
//!                                        # 9449 §5.2): a token request without a proof is refused
//! access_token_format = "opaque"         # or "jwt" (RFC 9068)
//! access_token_audience = "…"            # `aud` of JWT access tokens; default: the issuer
//! id_token_signed_response_alg = "RS256" # OIDC's default; falls back to the first
//!                                        # algorithm when RS256 is not configured
//! resource_server = false                # may introspect other clients' access tokens
//! resources = ["https://api.example/"]   # the `[oauth] resources` this client may name;
//!                                        # default: all of them
//!
//! [[clients.NAME.assertion_issuers]]     # others whose JWT bearer assertions it may trade
//! issuer = "https://idp.example"         # their `iss`
//! jwks_uri = "https://idp.example/jwks.json"  # or jwks = '{"keys": [...]}'; neither: the
//!                                        # client itself (issuer = "NAME@clients")
//! users = true                           # `sub` may name a user (by id or username)
//! client_subject = "system:serviceaccount:games:scores"  # this `sub` is the client
//!
//! [registration]                         # dynamic client registration: config/registration.rs
//! mode = "off"                           # or "token", "open"
//!
//! [client_metadata_documents]           # draft-ietf-oauth-client-id-metadata-document
//! enabled = false                        # a client_id that is an https URL with a path is
//!                                        # fetched: that client's metadata (public or
//!                                        # private_key_jwt), shown as unverified
//!
//! [fetch]                                # outbound fetches (jwks_uri, metadata documents):
//!                                        # https only, public addresses only, no redirects,
//!                                        # 64 KiB, 5 s
//! insecure_allow_private_addresses = false  # tests only: loopback, private, link-local…
//! insecure_allow_http = false            # tests only: http:// URLs (documents, jwks_uri)
//!
//! [seed.app.NAME]                        # Eternaltwin 0.16's form, the same client
//! display_name = "…"; uri = "…"; oauth_callback = "…"; secret = "…"
//!
//! [seed.user.NAME]                       # development users, created or updated at start
//! username = "…"; password = "…"; display_name = "…"  # display_name defaults to username
//! email = "…"; email_verified = false
//! claims = { roles = ["admin"] }         # added to the user's tokens; not `sub`, `iss`, …
//! ```

use doorward_core::config::SignUpMode;
use doorward_core::password_rules::{self, PasswordRules};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use doorward_core::client_document::DocumentPolicy;
use doorward_core::config::{KeyPolicy, RegistrationPolicy};
use doorward_core::jose::SigningAlg;
use doorward_core::jwt_bearer::JWT_BEARER_GRANT;
use doorward_core::model::{AccessTokenFormat, AuthMethod, ClientPolicy, GrantType, TrustedIssuer};
use doorward_core::{ClientSpec, Lifetimes, UserSpec};
use doorward_proto::{RedirectUri, ResourceUri, ScopeSet, Secret};
use serde::Deserialize;

use crate::listener::{Limits, MIN_HEADER_BYTES};

/// The checked configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `[server] metrics_listen` (`None`: "off").
    pub metrics_listen: Option<MetricsListen>,
    /// The origin users and clients reach the server at, without a trailing slash.
    pub external_uri: String,
    /// How `external_uri` is reached, for the start-up banner.
    pub transport: Transport,
    pub database: String,
    pub limits: Limits,
    pub lifetimes: Lifetimes,
    pub allow_plain_pkce: bool,
    /// `[oauth] require_pkce`: every authorization request needs PKCE.
    pub require_pkce: bool,
    /// `[oauth] require_pushed_authorization_requests` (RFC 9126 §5).
    pub require_pushed_requests: bool,
    /// `[oauth] client_credentials`: the grant is answered (for the clients that name it).
    pub client_credentials: bool,
    /// `[oauth] token_exchange`: token exchange (RFC 8693) is answered (for the clients that
    /// name it).
    pub token_exchange: bool,
    /// `[oauth] jwt_bearer`: the JWT bearer grant (RFC 7523 §2.1) is answered (for the
    /// clients that name it).
    pub jwt_bearer: bool,
    /// `[oauth] device_authorization`: the device grant (RFC 8628) is answered (for the
    /// clients that name it).
    pub device_authorization: bool,
    /// `[oauth] dpop` and `dpop_require_nonce` (RFC 9449).
    pub dpop: doorward_core::DpopPolicy,
    pub scopes: ScopeSet,
    pub default_scopes: ScopeSet,
    /// `[oauth] resources`: the resource indicators (RFC 8707) clients may name.
    pub resources: Vec<ResourceUri>,
    pub keys: KeyPolicy,
    pub key_encryption_secret: Option<Secret>,
    pub clients: Vec<ClientSpec>,
    pub users: Vec<UserSpec>,
    /// `[registration]`: dynamic client registration (`config/registration.rs`).
    pub registration: RegistrationPolicy,
    /// `[fetch]`: what outbound fetches (clients' `jwks_uri`, metadata documents) may reach.
    pub fetch: FetchSettings,
    /// `[client_metadata_documents]`.
    pub client_documents: DocumentPolicy,
    /// `[accounts] password_min_length`: what new passwords must be.
    pub passwords: PasswordRules,
    /// `[accounts] sign_up`: who may create an account at `/signup`.
    pub sign_up: SignUpMode,
    /// `[accounts] second_factor = "required"`: everyone signs in with a second factor.
    pub second_factor_required: bool,
    /// `[accounts] admin_fresh_sign_in`: seconds (1 to 86400, 600 by default).
    pub admin_fresh_sign_in: i64,
    /// `[audit]`: the audit trail.
    pub audit: AuditSettings,
}

/// The `[audit]` table.
#[derive(Clone, Copy, Debug)]
pub struct AuditSettings {
    /// `retention_days` (1 to 3650, 90 by default), in seconds.
    pub retention: u32,
    /// `token_events`: each token issued is an event (on by default).
    pub token_events: bool,
    /// `stderr`: every event is also written to standard error as one JSON line, for log
    /// shippers (off by default).
    pub stderr: bool,
}

/// Where `/metrics`, `/healthz` and `/readyz` listen.
#[derive(Clone, Copy, Debug)]
pub struct MetricsListen {
    pub address: SocketAddr,
    /// Given in the file or on the command line. The default address may be taken (a second
    /// server on the machine): that server then runs without metrics and says so; a
    /// configured one that cannot be bound stops the start.
    pub configured: bool,
}

/// The `[fetch]` section: the SSRF policy's test switches.
#[derive(Clone, Copy, Debug, Default)]
pub struct FetchSettings {
    pub insecure_allow_private_addresses: bool,
    pub insecure_allow_http: bool,
}

/// Values given on the command line or in `DOORWARD_*` variables, which win over the file.
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub external_uri: Option<String>,
    pub database: Option<String>,
    /// `DOORWARD_KEY_ENCRYPTION_SECRET` (an environment variable only: a command-line argument
    /// would show in the process list).
    pub key_encryption_secret: Option<String>,
    /// `--insecure-allow-http`: plain http on any host (`server.insecure_allow_http`).
    pub insecure_allow_http: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    oauth: RawOAuth,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    clients: BTreeMap<String, RawClient>,
    #[serde(default)]
    seed: RawSeed,
    #[serde(default)]
    registration: registration::RawRegistration,
    #[serde(default)]
    fetch: RawFetch,
    #[serde(default)]
    client_metadata_documents: RawClientDocuments,
    #[serde(default)]
    accounts: RawAccounts,
    #[serde(default)]
    audit: RawAudit,
}

/// The `[audit]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    retention_days: Option<u32>,
    token_events: Option<bool>,
    #[serde(default)]
    stderr: bool,
}

/// The `[accounts]` table: people's accounts in the store.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    /// The fewest characters of a new password (NIST SP 800-63B-4 §3.1.1.2: 15 when the
    /// password is the only factor, at least 8).
    password_min_length: Option<u32>,
    /// "off" (the default), "invite" or "open".
    sign_up: Option<String>,
    /// "optional" (the default) or "required".
    second_factor: Option<String>,
    /// How recent an admin's sign-in must be for a console action that changes access.
    admin_fresh_sign_in: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    #[serde(default)]
    insecure_allow_private_addresses: bool,
    #[serde(default)]
    insecure_allow_http: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClientDocuments {
    #[serde(default)]
    enabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    metrics_listen: Option<String>,
    external_uri: Option<String>,
    database: Option<String>,
    data_dir: Option<PathBuf>,
    header_timeout: Option<u32>,
    max_header_bytes: Option<u32>,
    body_timeout: Option<u32>,
    max_connections: Option<u32>,
    #[serde(default)]
    insecure_allow_http: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    access_token: Option<u32>,
    code: Option<u32>,
    refresh_token: Option<u32>,
    session: Option<u32>,
    id_token: Option<u32>,
    refresh_grace: Option<u32>,
    refresh_family: Option<u32>,
    pushed_request: Option<u32>,
    device_code: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOAuth {
    #[serde(default)]
    insecure_allow_plain_pkce: bool,
    #[serde(default)]
    require_pkce: bool,
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    client_credentials: Option<bool>,
    token_exchange: Option<bool>,
    jwt_bearer: Option<bool>,
    device_authorization: Option<bool>,
    dpop: Option<bool>,
    #[serde(default)]
    dpop_require_nonce: bool,
    scopes: Option<Vec<String>>,
    default_scopes: Option<Vec<String>>,
    #[serde(default)]
    resources: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    algorithms: Option<Vec<String>>,
    publish_delay: Option<u32>,
    rotation_period: Option<u32>,
    encryption_secret: Option<String>,
}

/// The OpenID Connect options of a client, in both client forms (serde's `flatten` would
/// defeat `deny_unknown_fields`, so each form lists them and the macro below collects them).
struct RawPolicy {
    scopes: Option<Vec<String>>,
    post_logout_redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    access_token_format: Option<String>,
    access_token_audience: Option<String>,
    id_token_signed_response_alg: Option<String>,
    resource_server: bool,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    grant_types: Option<Vec<String>>,
    require_pkce: bool,
    require_pushed_authorization_requests: bool,
    dpop_bound_access_tokens: bool,
    resources: Option<Vec<String>>,
    assertion_issuers: Vec<RawIssuer>,
    claims: serde_json::Map<String, serde_json::Value>,
}

/// An issuer of JWT bearer assertions a client trusts (`assertion_issuers`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: String,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    #[serde(default)]
    users: bool,
    client_subject: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    display_name: String,
    app_uri: String,
    callback_uri: Option<String>,
    redirect_uris: Option<Vec<String>>,
    secret: Option<String>,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    access_token_format: Option<String>,
    access_token_audience: Option<String>,
    id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    resource_server: bool,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    require_pkce: bool,
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    resources: Option<Vec<String>>,
    #[serde(default)]
    assertion_issuers: Vec<RawIssuer>,
    #[serde(default)]
    claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    #[serde(default)]
    app: BTreeMap<String, RawSeedApp>,
    #[serde(default)]
    user: BTreeMap<String, RawSeedUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeedApp {
    display_name: String,
    uri: String,
    oauth_callback: String,
    secret: String,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    access_token_format: Option<String>,
    access_token_audience: Option<String>,
    id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    resource_server: bool,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    require_pkce: bool,
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    resources: Option<Vec<String>>,
    #[serde(default)]
    assertion_issuers: Vec<RawIssuer>,
    #[serde(default)]
    claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeedUser {
    username: String,
    password: String,
    display_name: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    /// Added to the user's tokens (`claims = { tier = "gold" }`).
    #[serde(default)]
    claims: serde_json::Map<String, serde_json::Value>,
    /// Gives the admin role (a seed never takes it away).
    #[serde(default)]
    admin: bool,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50320";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:50321";
pub const DEFAULT_EXTERNAL_URI: &str = "http://localhost:50320";

impl Config {
    /// Reads and checks the file. Errors name the file, the key and the reason.
    pub fn load(path: &Path, overrides: Overrides) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        let raw = parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        check(raw, base, overrides).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// The file at `path` (when given) followed by `extra` (TOML tables made from
    /// command-line flags: `--ephemeral`), checked as one file.
    pub fn load_with(
        path: Option<&Path>,
        extra: &str,
        overrides: Overrides,
    ) -> anyhow::Result<Self> {
        let (text, name, base) = match path {
            Some(path) => (
                std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the configuration file {}", path.display())
                })?,
                path.display().to_string(),
                path.parent().unwrap_or(Path::new(".")),
            ),
            None => (String::new(), "the flags".to_owned(), Path::new(".")),
        };
        let text = format!("{text}\n{extra}");
        let raw = parse(&text).map_err(|e| anyhow!("{name}: {e}"))?;
        check(raw, base, overrides).map_err(|e| anyhow!("{name}: {e:#}"))
    }
}

fn parse(text: &str) -> Result<RawConfig, String> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            before.bytes().filter(|&b| b == b'\n').count() + 1
        });
        let location = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        if path == "." {
            format!("{location}{}", inner.message())
        } else {
            format!("{location}key `{path}`: {}", inner.message())
        }
    })
}

fn check(raw: RawConfig, base: &Path, overrides: Overrides) -> anyhow::Result<Config> {
    let limits = limits(&raw.server)?;
    let listen_text = overrides
        .listen
        .or(raw.server.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.parse().with_context(|| {
        format!("key `server.listen`: `{listen_text}` is not an address like 127.0.0.1:50320")
    })?;
    let metrics_given = overrides.metrics_listen.or(raw.server.metrics_listen);
    let configured = metrics_given.is_some();
    let metrics_text = metrics_given.unwrap_or_else(|| DEFAULT_METRICS_LISTEN.to_owned());
    let metrics_listen = match metrics_text.as_str() {
        "off" => None,
        text => Some(MetricsListen {
            address: text.parse().with_context(|| {
                format!(
                    "key `server.metrics_listen`: `{text}` is not an address like \
                     127.0.0.1:50321, nor \"off\""
                )
            })?,
            configured,
        }),
    };
    let external_uri = external_uri(
        &overrides
            .external_uri
            .or(raw.server.external_uri)
            .unwrap_or_else(|| DEFAULT_EXTERNAL_URI.to_owned()),
    )?;
    let transport = Transport::of(&external_uri);
    if transport == Transport::InsecureHttp
        && !(overrides.insecure_allow_http || raw.server.insecure_allow_http)
    {
        bail!(
            "key `server.external_uri`: `{external_uri}` is plain http on a host that is not \
             loopback: codes, tokens and passwords would cross the network in clear (RFC 6749 \
             section 10.9, RFC 9700 section 2.6). Use https (TLS at a proxy in front is fine), or \
             set `server.insecure_allow_http = true` (--insecure-allow-http) for a test network"
        );
    }
    let database = match overrides.database.or(raw.server.database) {
        Some(url) => url,
        None => {
            let dir = base.join(raw.server.data_dir.unwrap_or_else(|| "data".into()));
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("key `server.data_dir`: cannot create {}", dir.display())
            })?;
            format!("sqlite:{}", dir.join("doorward.sqlite").display())
        }
    };
    let defaults = Lifetimes::default();
    let t = raw.tokens;
    let code = i64::from(t.code.unwrap_or(60));
    if !(1..=60).contains(&code) {
        bail!("key `tokens.code`: a code lives 1 to 60 seconds");
    }
    let lifetimes = Lifetimes {
        access_token: t.access_token.map_or(defaults.access_token, i64::from),
        code,
        refresh_token: t.refresh_token.map_or(defaults.refresh_token, i64::from),
        session: t.session.map_or(defaults.session, i64::from),
        id_token: t.id_token.map_or(defaults.id_token, i64::from),
        refresh_grace: t.refresh_grace.map_or(defaults.refresh_grace, i64::from),
        refresh_family: t.refresh_family.map_or(defaults.refresh_family, i64::from),
        pushed_request: t.pushed_request.map_or(defaults.pushed_request, i64::from),
        device_code: t.device_code.map_or(defaults.device_code, i64::from),
    };
    if !(60..=3600).contains(&lifetimes.device_code) {
        bail!("key `tokens.device_code`: 60 to 3600 seconds");
    }
    let max_pushed = doorward_core::config::MAX_PUSHED_REQUEST_LIFETIME;
    if !(1..=max_pushed).contains(&lifetimes.pushed_request) {
        bail!("key `tokens.pushed_request`: 1 to {max_pushed} seconds");
    }
    if lifetimes.refresh_family < 1 {
        bail!("key `tokens.refresh_family`: at least 1 second");
    }
    if lifetimes.refresh_grace > doorward_core::ports::MAX_REFRESH_GRACE {
        bail!(
            "key `tokens.refresh_grace`: at most {} seconds",
            doorward_core::ports::MAX_REFRESH_GRACE
        );
    }
    let engine_defaults = doorward_core::EngineConfig::default();
    let scopes = match raw.oauth.scopes {
        Some(list) => scope_list("oauth.scopes", &list)?,
        None => engine_defaults.scopes,
    };
    let default_scopes = match raw.oauth.default_scopes {
        Some(list) => scope_list("oauth.default_scopes", &list)?,
        None => engine_defaults.default_scopes,
    };
    if !default_scopes.is_subset(&scopes) {
        bail!("key `oauth.default_scopes`: every default scope must be in `oauth.scopes`");
    }
    let resources = resource_list("oauth.resources", &raw.oauth.resources)?;
    let keys = key_policy(
        raw.keys.algorithms,
        raw.keys.publish_delay,
        raw.keys.rotation_period,
    )?;
    let key_encryption_secret = match (overrides.key_encryption_secret, raw.keys.encryption_secret)
    {
        (Some(s), _) if s.len() < 16 => {
            bail!("{}: use at least 16 characters", crate::key_secret::ENV)
        }
        (Some(s), _) => Some(Secret::new(s)),
        (None, Some(s)) if s.len() < 16 => {
            bail!("key `keys.encryption_secret`: use at least 16 characters")
        }
        (None, other) => other.map(Secret::new),
    };
    let fetch = FetchSettings {
        insecure_allow_private_addresses: raw.fetch.insecure_allow_private_addresses,
        insecure_allow_http: raw.fetch.insecure_allow_http,
    };
    let clients = clients(raw.clients, raw.seed.app)?;
    for client in &clients {
        let unknown = client
            .policy
            .resources
            .iter()
            .flatten()
            .find(|r| !resources.contains(r) && r.as_str() != external_uri.as_str());
        if let Some(unknown) = unknown {
            bail!(
                "client `{}`: resource `{unknown}` is not among `oauth.resources`",
                client.key
            );
        }
        let http = client
            .policy
            .jwks_uri
            .as_ref()
            .is_some_and(|u| u.scheme() == "http");
        if http && !fetch.insecure_allow_http {
            bail!(
                "client `{}`: an http jwks_uri needs `fetch.insecure_allow_http = true` (tests only)",
                client.key
            );
        }
        if let Some(alg) = client.policy.id_token_alg {
            if !keys.algorithms.contains(&alg) {
                bail!(
                    "client `{}`: id_token_signed_response_alg = \"{alg}\" is not among `keys.algorithms`",
                    client.key
                );
            }
        }
    }
    Ok(Config {
        listen,
        metrics_listen,
        external_uri,
        transport,
        database,
        limits,
        lifetimes,
        allow_plain_pkce: raw.oauth.insecure_allow_plain_pkce,
        require_pkce: raw.oauth.require_pkce,
        require_pushed_requests: raw.oauth.require_pushed_authorization_requests,
        client_credentials: raw.oauth.client_credentials.unwrap_or(true),
        token_exchange: raw.oauth.token_exchange.unwrap_or(true),
        jwt_bearer: raw.oauth.jwt_bearer.unwrap_or(true),
        device_authorization: raw.oauth.device_authorization.unwrap_or(true),
        dpop: doorward_core::DpopPolicy {
            enabled: raw.oauth.dpop.unwrap_or(true),
            require_nonce: raw.oauth.dpop_require_nonce,
        },
        scopes,
        default_scopes,
        resources,
        keys,
        key_encryption_secret,
        clients,
        users: users(raw.seed.user)?,
        registration: registration::policy(raw.registration)?,
        fetch,
        client_documents: DocumentPolicy {
            enabled: raw.client_metadata_documents.enabled,
            insecure_allow_http: fetch.insecure_allow_http,
        },
        passwords: password_rules(&raw.accounts)?,
        admin_fresh_sign_in: match raw.accounts.admin_fresh_sign_in {
            None => 600,
            Some(s) if (1..=86_400).contains(&s) => i64::from(s),
            Some(_) => bail!("key `accounts.admin_fresh_sign_in`: 1 to 86400 seconds"),
        },
        second_factor_required: match raw.accounts.second_factor.as_deref() {
            None | Some("optional") => false,
            Some("required") => true,
            Some(other) => {
                bail!("key `accounts.second_factor`: `{other}`: one of \"optional\", \"required\"")
            }
        },
        sign_up: match raw.accounts.sign_up.as_deref() {
            None => SignUpMode::Off,
            Some(text) => SignUpMode::parse(text).with_context(|| {
                format!("key `accounts.sign_up`: `{text}`: one of \"off\", \"invite\", \"open\"")
            })?,
        },
        audit: AuditSettings {
            retention: match raw.audit.retention_days {
                None => 90 * 24 * 3600,
                Some(days) if (1..=3650).contains(&days) => days * 24 * 3600,
                Some(_) => bail!("key `audit.retention_days`: 1 to 3650 days"),
            },
            token_events: raw.audit.token_events.unwrap_or(true),
            stderr: raw.audit.stderr,
        },
    })
}

/// `[accounts] password_min_length`: 8 to 64 characters, 15 by default.
fn password_rules(raw: &RawAccounts) -> anyhow::Result<PasswordRules> {
    let floor = password_rules::MIN_LENGTH_FLOOR;
    match raw.password_min_length {
        None => Ok(PasswordRules::default()),
        Some(n) if (floor..=64).contains(&(n as usize)) => Ok(PasswordRules {
            min_length: n as usize,
        }),
        Some(_) => bail!(
            "key `accounts.password_min_length`: {floor} to 64 characters (NIST SP 800-63B-4 \
             asks for 15 when the password is the only factor)"
        ),
    }
}

/// The connection limits of `[server]`, each within bounds that keep the server usable.
fn limits(raw: &RawServer) -> anyhow::Result<Limits> {
    let defaults = Limits::default();
    let seconds = |key: &str, value: Option<u32>, default: Duration, max: u32| match value {
        None => Ok(default),
        Some(s) if (1..=max).contains(&s) => Ok(Duration::from_secs(u64::from(s))),
        Some(_) => Err(anyhow!("key `server.{key}`: 1 to {max} seconds")),
    };
    let max_header_bytes = match raw.max_header_bytes {
        None => defaults.max_header_bytes,
        Some(n) if (MIN_HEADER_BYTES..=1024 * 1024).contains(&(n as usize)) => n as usize,
        Some(_) => bail!("key `server.max_header_bytes`: {MIN_HEADER_BYTES} to 1048576 bytes"),
    };
    let max_connections = match raw.max_connections {
        None => defaults.max_connections,
        Some(0) => bail!("key `server.max_connections`: at least 1"),
        Some(n) => n as usize,
    };
    Ok(Limits {
        header_timeout: seconds(
            "header_timeout",
            raw.header_timeout,
            defaults.header_timeout,
            300,
        )?,
        max_header_bytes,
        body_timeout: seconds("body_timeout", raw.body_timeout, defaults.body_timeout, 600)?,
        max_connections,
    })
}

fn scope_list(key: &str, list: &[String]) -> anyhow::Result<ScopeSet> {
    let set = ScopeSet::parse(&list.join(" ")).with_context(|| format!("key `{key}`"))?;
    if list.iter().any(|s| s.contains(' ')) {
        bail!("key `{key}`: one scope per string");
    }
    Ok(set)
}

/// Resource indicators (RFC 8707 §2): absolute URIs without a fragment.
fn resource_list(key: &str, list: &[String]) -> anyhow::Result<Vec<ResourceUri>> {
    list.iter()
        .map(|r| ResourceUri::parse(r).map_err(|e| anyhow!("key `{key}`: `{r}`: {e}")))
        .collect()
}

fn key_policy(
    algorithms: Option<Vec<String>>,
    publish_delay: Option<u32>,
    rotation_period: Option<u32>,
) -> anyhow::Result<KeyPolicy> {
    let defaults = KeyPolicy::default();
    let algorithms = match algorithms {
        None => defaults.algorithms,
        Some(names) => {
            let mut algs = Vec::new();
            for name in &names {
                let alg = SigningAlg::parse(name).with_context(|| {
                    format!(
                        "key `keys.algorithms`: `{name}` is not one of {}",
                        SigningAlg::names()
                    )
                })?;
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
            if algs.is_empty() {
                bail!("key `keys.algorithms`: name at least one algorithm");
            }
            algs
        }
    };
    let publish_delay = publish_delay.map_or(defaults.publish_delay, i64::from);
    let rotation_period = rotation_period.map_or(defaults.rotation_period, i64::from);
    if rotation_period <= publish_delay {
        bail!("key `keys.rotation_period`: must be longer than `keys.publish_delay`");
    }
    Ok(KeyPolicy {
        algorithms,
        publish_delay,
        rotation_period,
    })
}

macro_rules! raw_policy {
    ($raw:expr) => {
        RawPolicy {
            scopes: $raw.scopes,
            post_logout_redirect_uris: $raw.post_logout_redirect_uris,
            token_endpoint_auth_method: $raw.token_endpoint_auth_method,
            access_token_format: $raw.access_token_format,
            access_token_audience: $raw.access_token_audience,
            id_token_signed_response_alg: $raw.id_token_signed_response_alg,
            resource_server: $raw.resource_server,
            jwks: $raw.jwks,
            jwks_uri: $raw.jwks_uri,
            grant_types: $raw.grant_types,
            require_pkce: $raw.require_pkce,
            require_pushed_authorization_requests: $raw.require_pushed_authorization_requests,
            dpop_bound_access_tokens: $raw.dpop_bound_access_tokens,
            resources: $raw.resources,
            assertion_issuers: $raw.assertion_issuers,
            claims: $raw.claims,
        }
    };
}

fn client_policy(key_path: &str, raw: RawPolicy) -> anyhow::Result<ClientPolicy> {
    let scopes = raw
        .scopes
        .map(|list| scope_list(&format!("{key_path}.scopes"), &list))
        .transpose()?;
    let post_logout_redirect_uris = raw
        .post_logout_redirect_uris
        .iter()
        .map(|u| {
            RedirectUri::parse(u)
                .with_context(|| format!("key `{key_path}.post_logout_redirect_uris`: `{u}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let auth_method = raw
        .token_endpoint_auth_method
        .map(|m| {
            AuthMethod::parse(&m).with_context(|| {
                format!("key `{key_path}.token_endpoint_auth_method`: `{m}` is not client_secret_basic, client_secret_post, private_key_jwt, client_secret_jwt or none")
            })
        })
        .transpose()?;
    let (jwks, jwks_uri) = key_set(key_path, raw.jwks, raw.jwks_uri)?;
    // Keys also sign request objects (RFC 9101 §10.2), whatever the client authenticates with.
    if auth_method == Some(AuthMethod::PrivateKeyJwt) && jwks.is_none() && jwks_uri.is_none() {
        bail!(
            "key `{key_path}.jwks`: private_key_jwt needs the client's public keys, \
             `jwks = '{{\"keys\": [...]}}'` or `jwks_uri = \"https://…\"`"
        );
    }
    let access_token_format = match raw.access_token_format.as_deref() {
        None | Some("opaque") => AccessTokenFormat::Opaque,
        Some("jwt") => AccessTokenFormat::Jwt,
        Some(other) => {
            bail!("key `{key_path}.access_token_format`: `{other}` is not \"opaque\" or \"jwt\"")
        }
    };
    let id_token_alg = raw
        .id_token_signed_response_alg
        .map(|a| {
            SigningAlg::parse(&a).with_context(|| {
                format!(
                    "key `{key_path}.id_token_signed_response_alg`: `{a}` is not one of {}",
                    SigningAlg::names()
                )
            })
        })
        .transpose()?;
    // The JWT bearer grant is an extension grant (RFC 6749 §4.5): kept apart from the
    // built-in types.
    let extension_grants: Vec<String> = raw
        .grant_types
        .iter()
        .flatten()
        .filter(|g| g.as_str() == JWT_BEARER_GRANT)
        .cloned()
        .collect();
    let grant_types = raw
        .grant_types
        .map(|names| {
            names
                .iter()
                .filter(|g| g.as_str() != JWT_BEARER_GRANT)
                .map(|g| {
                    GrantType::parse(g).with_context(|| {
                        format!("key `{key_path}.grant_types`: `{g}` is not authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:token-exchange or {JWT_BEARER_GRANT}")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .transpose()?;
    if auth_method == Some(AuthMethod::None) && !extension_grants.is_empty() {
        bail!("key `{key_path}.grant_types`: a public client (token_endpoint_auth_method = \"none\") cannot use the JWT bearer grant: it has no key of its own, and an assertion alone must not be enough (RFC 7523 section 3.1)");
    }
    let assertion_issuers = raw
        .assertion_issuers
        .into_iter()
        .enumerate()
        .map(|(i, issuer)| assertion_issuer(&format!("{key_path}.assertion_issuers[{i}]"), issuer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !assertion_issuers.is_empty() && extension_grants.is_empty() {
        bail!("key `{key_path}.assertion_issuers`: only for a client whose grant_types name {JWT_BEARER_GRANT}");
    }
    if auth_method == Some(AuthMethod::None)
        && grant_types
            .as_ref()
            .is_some_and(|g| g.contains(&GrantType::ClientCredentials))
    {
        bail!("key `{key_path}.grant_types`: a public client (token_endpoint_auth_method = \"none\") cannot use client_credentials (RFC 6749 section 4.4)");
    }
    if auth_method == Some(AuthMethod::None)
        && grant_types
            .as_ref()
            .is_some_and(|g| g.contains(&GrantType::TokenExchange))
    {
        bail!("key `{key_path}.grant_types`: a public client (token_endpoint_auth_method = \"none\") cannot exchange tokens (RFC 8693 section 2.1)");
    }
    Ok(ClientPolicy {
        scopes,
        post_logout_redirect_uris,
        auth_method,
        access_token_format,
        id_token_alg,
        access_token_audience: raw.access_token_audience,
        resource_server: raw.resource_server,
        jwks,
        jwks_uri,
        grant_types,
        require_pkce: raw.require_pkce,
        require_pushed_requests: raw.require_pushed_authorization_requests,
        dpop_bound_access_tokens: raw.dpop_bound_access_tokens,
        resources: raw
            .resources
            .map(|list| resource_list(&format!("{key_path}.resources"), &list))
            .transpose()?,
        extension_grants,
        assertion_issuers,
        claims: checked_claims(&format!("{key_path}.claims"), raw.claims)?,
        // `doorward serve` enables no legacy grant.
        ..ClientPolicy::default()
    })
}

/// Configured claims: none of the reserved names (`doorward_core::claims_hook::RESERVED`), which
/// are Doorward's to write.
fn checked_claims(
    key_path: &str,
    claims: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    if let Some(name) = claims
        .keys()
        .find(|name| doorward_core::claims_hook::is_reserved(name))
    {
        bail!("key `{key_path}.{name}`: a reserved claim, which only Doorward writes");
    }
    Ok(claims)
}

/// Public keys inline (`jwks`: no private or symmetric member) or at an http(s) URL
/// (`jwks_uri`), never both (OIDC Registration §2): a client's or an issuer's.
fn key_set(
    key_path: &str,
    jwks: Option<String>,
    jwks_uri: Option<String>,
) -> anyhow::Result<(Option<doorward_core::jose::JwkSet>, Option<url::Url>)> {
    let jwks = jwks
        .map(|json| {
            doorward_core::jose::parse_client_jwks(&json)
                .map_err(|e| anyhow!("key `{key_path}.jwks`: {e}"))
        })
        .transpose()?;
    let jwks_uri = jwks_uri
        .map(|uri| {
            url::Url::parse(&uri)
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
                .ok_or_else(|| anyhow!("key `{key_path}.jwks_uri`: `{uri}` is not an https URL"))
        })
        .transpose()?;
    if jwks.is_some() && jwks_uri.is_some() {
        bail!("key `{key_path}.jwks_uri`: jwks and jwks_uri are exclusive (OIDC Registration section 2)");
    }
    Ok((jwks, jwks_uri))
}

/// An entry of a client's `assertion_issuers`: its keys inline or at a URL, or, without
/// either, the client's own (its `issuer` must then be the client's Key, checked at start).
fn assertion_issuer(key_path: &str, raw: RawIssuer) -> anyhow::Result<TrustedIssuer> {
    if raw.issuer.is_empty() {
        bail!("key `{key_path}.issuer`: empty");
    }
    let (jwks, jwks_uri) = key_set(key_path, raw.jwks, raw.jwks_uri)?;
    Ok(TrustedIssuer {
        issuer: raw.issuer,
        jwks,
        jwks_uri,
        users: raw.users,
        client_subject: raw.client_subject,
    })
}

/// How clients reach the server, from its external URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Https,
    /// http on `localhost` or a loopback address: a developer's machine.
    LoopbackHttp,
    /// http on another host: only with `insecure_allow_http`.
    InsecureHttp,
}

impl Transport {
    fn of(external_uri: &str) -> Self {
        let Ok(url) = url::Url::parse(external_uri) else {
            return Self::InsecureHttp;
        };
        if url.scheme() == "https" {
            return Self::Https;
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if loopback {
            Self::LoopbackHttp
        } else {
            Self::InsecureHttp
        }
    }

    /// The start-up banner's line.
    pub fn banner(self) -> &'static str {
        match self {
            Self::Https => "transport: https",
            Self::LoopbackHttp => "transport: plain http on a loopback host (development)",
            Self::InsecureHttp => {
                "transport: INSECURE plain http on a network host (insecure_allow_http): \
                 codes, tokens and passwords travel in clear"
            }
        }
    }
}

fn external_uri(value: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(value)
        .with_context(|| format!("key `server.external_uri`: `{value}` is not an absolute URI"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("key `server.external_uri`: `{value}` must be an http or https origin");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        bail!("key `server.external_uri`: `{value}` must be an origin without a path (the Eternaltwin client ignores paths)");
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A client's home page, shown as a link on the consent page: an absolute http or https URL
/// (a `javascript:` or `data:` link there would run in the provider's origin when followed).
fn checked_app_uri(key_path: &str, value: String) -> anyhow::Result<String> {
    let field = if key_path.starts_with("seed.app.") {
        "uri"
    } else {
        "app_uri"
    };
    let ok = url::Url::parse(&value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if !ok {
        bail!("key `{key_path}.{field}`: `{value}` must be an absolute http or https URL");
    }
    Ok(value)
}

/// The shortest client secret the configuration accepts. RFC 6749 §2.3.1 leaves the secret's
/// form to the server and §10.10 asks that guessing it be infeasible; wrong guesses are
/// throttled (`doorward_core::throttle`), but a one-character secret is found in a few dozen
/// tries whatever the throttle. Ten characters keeps the Eternaltwin examples (`dev_secret`)
/// working; a deployment should use a long random string.
pub const MIN_CLIENT_SECRET_CHARS: usize = 10;

/// The shortest secret of a `client_secret_jwt` client: an HS256 key as long as the hash
/// (RFC 7518 §3.2; HS384 and HS512 need 48 and 64 bytes, checked per assertion).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

fn clients(
    clients: BTreeMap<String, RawClient>,
    apps: BTreeMap<String, RawSeedApp>,
) -> anyhow::Result<Vec<ClientSpec>> {
    let mut out: Vec<ClientSpec> = Vec::new();
    let from_clients = clients.into_iter().map(|(name, c)| {
        (
            format!("clients.{name}"),
            name,
            c.display_name,
            c.app_uri,
            redirect_list(c.callback_uri, c.redirect_uris),
            c.secret,
            raw_policy!(c),
        )
    });
    let from_apps = apps.into_iter().map(|(name, a)| {
        (
            format!("seed.app.{name}"),
            name,
            a.display_name,
            a.uri,
            Ok(Some(vec![a.oauth_callback])),
            Some(a.secret),
            raw_policy!(a),
        )
    });
    for (key_path, name, display_name, app_uri, redirects, secret, policy) in
        from_clients.chain(from_apps)
    {
        if name.is_empty() || name.contains(['@', ' ', '/']) {
            bail!("key `{key_path}`: a client name must not be empty or contain '@', ' ' or '/'");
        }
        let key = format!("{name}@clients");
        if out.iter().any(|c| c.key == key) {
            bail!("key `{key_path}`: the client `{name}` is declared twice");
        }
        let policy = client_policy(&key_path, policy)?;
        if let Some(i) = policy
            .assertion_issuers
            .iter()
            .position(|t| t.uses_client_keys() && t.issuer != key)
        {
            bail!("key `{key_path}.assertion_issuers[{i}]`: give `jwks` or `jwks_uri`; without them the issuer is the client itself, `{key}`");
        }
        let public = policy.is_public();
        // A client without the authorization-code grant (a service, a device) needs none.
        let redirects = match redirects {
            Err(()) => {
                bail!("key `{key_path}`: give either `callback_uri` or `redirect_uris`, not both")
            }
            Ok(Some(list)) if !list.is_empty() => list,
            Ok(_) if !policy.allows_grant(GrantType::AuthorizationCode) => Vec::new(),
            Ok(Some(_)) => bail!("key `{key_path}.redirect_uris`: name at least one redirect URI"),
            Ok(None) => bail!(
                "key `{key_path}`: give either `callback_uri` or `redirect_uris`, not both, \
                 and not neither"
            ),
        };
        let mut redirect_uris = Vec::new();
        for uri in &redirects {
            let parsed = RedirectUri::parse(uri)
                .with_context(|| format!("key `{key_path}`: redirect URI `{uri}`"))?;
            doorward_core::redirect::check_registration(&parsed, public)
                .with_context(|| format!("key `{key_path}`: redirect URI `{uri}`"))?;
            if !redirect_uris.contains(&parsed) {
                redirect_uris.push(parsed);
            }
        }
        let secret = match (secret, public) {
            (Some(_), true) => bail!(
                "key `{key_path}.secret`: a public client (token_endpoint_auth_method = \
                 \"none\") has no secret"
            ),
            (None, true) => String::new(),
            // A private_key_jwt client proves itself with its keys: no secret to keep.
            (None, false) if policy.auth_method == Some(AuthMethod::PrivateKeyJwt) => String::new(),
            (None, false) => bail!(
                "key `{key_path}.secret`: missing (or set token_endpoint_auth_method = \
                 \"none\" for a public client)"
            ),
            (Some(secret), false) => {
                let length = secret.chars().count();
                if length < MIN_CLIENT_SECRET_CHARS {
                    bail!(
                        "key `{key_path}.secret`: the secret of the client `{name}` has \
                         {length} characters; use at least {MIN_CLIENT_SECRET_CHARS} (a long \
                         random string in production)"
                    );
                }
                secret
            }
        };
        let app_uri = checked_app_uri(&key_path, app_uri)?;
        if policy.auth_method == Some(AuthMethod::ClientSecretJwt)
            && secret.len() < MIN_JWT_SECRET_BYTES
        {
            bail!(
                "key `{key_path}.secret`: client_secret_jwt MACs with the secret (HS256 needs \
                 at least {MIN_JWT_SECRET_BYTES} bytes, RFC 7518 section 3.2)"
            );
        }
        out.push(ClientSpec {
            key,
            display_name,
            app_uri,
            redirect_uris,
            secret: Secret::new(secret),
            policy,
        });
    }
    Ok(out)
}

/// The redirect URIs of a `[clients.NAME]`: `callback_uri` (Eternaltwin's one) or
/// `redirect_uris`; `None` when both or neither are given.
/// The redirect URIs of a client: `callback_uri` or `redirect_uris`; `Err` when both are given,
/// `Ok(None)` when neither is.
fn redirect_list(
    callback: Option<String>,
    list: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ()> {
    match (callback, list) {
        (Some(one), None) => Ok(Some(vec![one])),
        (None, Some(list)) => Ok(Some(list)),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(()),
    }
}

fn users(users: BTreeMap<String, RawSeedUser>) -> anyhow::Result<Vec<UserSpec>> {
    users
        .into_iter()
        .map(|(name, u)| {
            if u.username.is_empty() || u.password.is_empty() {
                bail!("key `seed.user.{name}`: username and password must not be empty");
            }
            Ok(UserSpec {
                display_name: u.display_name.unwrap_or_else(|| u.username.clone()),
                username: u.username,
                password: Secret::new(u.password),
                email: u.email,
                email_verified: u.email_verified,
                claims: checked_claims(&format!("seed.user.{name}.claims"), u.claims)?,
                admin: u.admin,
            })
        })
        .collect()
}

mod registration;

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests;
