//! Past 700 lines, still one idea: the records the ports carry and their storage forms (a
//! client's policy as JSON); each record is a few fields read with the others, and split they
//! would import one another.
//!
//! The records the engine keeps through its storage ports.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use doorward_proto::{CodeChallenge, CodeChallengeMethod, RedirectUri, ResourceUri, ScopeSet};
use jsonwebtoken::jwk::JwkSet;
use std::sync::Arc;

pub use crate::trusted_issuer::TrustedIssuer;
use uuid::Uuid;

use crate::clock::UnixTime;
use crate::jose::SigningAlg;
use crate::opaque::TokenHash;

/// A registered OAuth client.
#[derive(Clone, Debug)]
pub struct Client {
    /// Stable across restarts (derived from the Key for clients declared in the config).
    pub id: Uuid,
    /// `NAME@clients`.
    pub key: String,
    pub display_name: String,
    pub app_uri: String,
    /// Compared as exact strings (RFC 6749 §3.1.2.3).
    pub redirect_uris: Vec<RedirectUri>,
    /// Argon2id PHC string of the client secret; `None` for a public client.
    pub secret_hash: Option<String>,
    /// The secret a rotation replaced, still accepted until it expires
    /// (`doorward clients rotate-secret --overlap`).
    pub previous_secret: Option<PreviousSecret>,
    pub policy: ClientPolicy,
    /// Who registered the client: the configuration file (upserted at every start) or
    /// `doorward clients add`.
    pub source: ClientSource,
    /// When the client was first stored; upserting it again keeps this time.
    pub created_at: UnixTime,
}

/// A client secret replaced by a rotation: its hash, accepted until `expires_at` (exclusive)
/// so that the client's deployments can switch to the new secret meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    /// Argon2id PHC string.
    pub hash: String,
    pub expires_at: UnixTime,
}

/// Who registered a client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientSource {
    /// The configuration file: `doorward serve` upserts it at every start.
    #[default]
    Config,
    /// `doorward clients add`: it lives in the store only.
    Cli,
    /// Dynamic client registration (RFC 7591): managed by the client itself (RFC 7592).
    Registered,
    /// A Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document): the
    /// `client_id` is an https URL, the client's metadata what that URL serves
    /// (`crate::client_document`); refreshed when its cache time is over.
    MetadataDocument,
}

impl ClientSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Cli => "cli",
            Self::Registered => "registered",
            Self::MetadataDocument => "metadata_document",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Config,
            Self::Cli,
            Self::Registered,
            Self::MetadataDocument,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl Client {
    /// Whether an operator of this server registered the client (the configuration file or
    /// `doorward clients add`). Any other client registered itself (a metadata document,
    /// dynamic registration): its name, logo and home page are its own claims, and pages say
    /// so (RFC 7591 §5, draft-ietf-oauth-client-id-metadata-document §6).
    pub fn is_verified(&self) -> bool {
        matches!(self.source, ClientSource::Config | ClientSource::Cli)
    }

    /// The associated data of the client's sealed `client_secret_jwt` secret
    /// ([`ClientPolicy::sealed_jwt_secret`]): its Id, so that a sealed value copied to another
    /// client's row does not open.
    pub(crate) fn jwt_secret_label(&self) -> String {
        format!("client-secret-jwt:{}", self.id)
    }
}

/// How a client authenticates at the token, introspection and revocation endpoints
/// (OIDC Registration `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with one of the client's registered public keys
    /// ([`ClientPolicy::jwks`]; RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
    /// A JWT signed with HMAC under the client's secret (OIDC Core §9), which the server must
    /// therefore know: see [`ClientPolicy::sealed_jwt_secret`].
    ClientSecretJwt,
    /// A public client (RFC 6749 §2.1): no secret, named by `client_id` in the body only
    /// (§3.2.1). It must use PKCE S256 (RFC 9700 §2.1.1) and never gets `client_credentials`.
    None,
}

impl AuthMethod {
    /// The methods by which a client proves who it is (the introspection and revocation
    /// endpoints' list); [`AuthMethod::None`], a public client's, is not one.
    pub const ALL: [AuthMethod; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::ClientSecretJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Self::None])
            .find(|m| m.as_str() == name)
    }

    /// Whether the client proves itself with a JWT (`client_assertion`, RFC 7521 §4.2).
    pub fn is_jwt(self) -> bool {
        matches!(self, Self::PrivateKeyJwt | Self::ClientSecretJwt)
    }
}

/// A grant type a client may use at the token endpoint (OIDC Registration `grant_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code` (RFC 6749 §4.1).
    AuthorizationCode,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken,
    /// `client_credentials` (RFC 6749 §4.4): tokens whose subject is the client itself.
    ClientCredentials,
    /// The device authorization grant (RFC 8628): a device without a browser polls while its
    /// user approves on another screen.
    DeviceCode,
    /// Token exchange (RFC 8693): a service trades a token it received for a narrower one
    /// to call another service on the user's behalf (delegation, `act`).
    TokenExchange,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::AuthorizationCode,
            Self::RefreshToken,
            Self::ClientCredentials,
            Self::DeviceCode,
            Self::TokenExchange,
        ]
        .into_iter()
        .find(|g| g.as_str() == name)
    }
}

/// The form of the access tokens issued to a client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessTokenFormat {
    /// A random string, meaningful only to this server (the default).
    #[default]
    Opaque,
    /// A JWT access token (RFC 9068) that a resource server verifies with the JWKS.
    Jwt,
    /// The application's own format ([`crate::token_format::AccessTokenIssuer`]), opaque to
    /// the engine, which stores its hash like an opaque token's. Opaque when the engine has
    /// no issuer.
    Application,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opaque => "opaque",
            Self::Jwt => "jwt",
            Self::Application => "application",
        }
    }
}

/// What a client may do beyond the Eternaltwin form: each field's default is what a client
/// declared in that form gets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientPolicy {
    /// The scopes the client may ask for; `None`: every scope the server offers.
    pub scopes: Option<ScopeSet>,
    /// Where RP-initiated logout may send the browser back (exact match).
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// `None`: Basic or post, whichever the client uses. A JWT method needs [`Self::jwks`]
    /// or [`Self::jwks_uri`] (`private_key_jwt`) or [`Self::sealed_jwt_secret`] (`client_secret_jwt`).
    pub auth_method: Option<AuthMethod>,
    pub access_token_format: AccessTokenFormat,
    /// `None`: RS256, OIDC Registration's default for `id_token_signed_response_alg`.
    pub id_token_alg: Option<SigningAlg>,
    /// The `aud` of JWT access tokens; `None`: the issuer.
    pub access_token_audience: Option<String>,
    /// A resource server: may introspect tokens issued to other clients (RFC 7662 §4).
    pub resource_server: bool,
    /// May use the implicit grant when the server enables it ([`crate::Grants`]; see its
    /// `# Security` note).
    pub insecure_implicit: bool,
    /// May use the password grant when the server enables it ([`crate::Grants`]; see its
    /// `# Security` note).
    pub insecure_password: bool,
    /// The client's public keys, for `private_key_jwt` (OIDC Registration `jwks`), checked by
    /// [`crate::jose::parse_client_jwks`]: no private or symmetric key.
    pub jwks: Option<JwkSet>,
    /// Where the client publishes its public keys for `private_key_jwt` instead of
    /// [`Self::jwks`] (RFC 7523 §2.2, OIDC Registration `jwks_uri`): fetched through the
    /// [`crate::fetch::Fetcher`] port and cached ([`crate::client_keys`]). Never both.
    pub jwks_uri: Option<url::Url>,
    /// The client's secret for `client_secret_jwt`, sealed by the engine
    /// (`Engine::register_client`) with the key-encryption secret, the client's Id as
    /// associated data.
    ///
    /// # The trade-off
    /// Every other secret-based method lets the store keep only an Argon2 hash of the secret.
    /// `client_secret_jwt` cannot: the client MACs its assertion with the secret itself
    /// (HS256/384/512), and the server must compute the same MAC (OIDC Core §9, RFC 7518
    /// §3.2), so it must be able to recover the secret. Sealed, a copy of the database alone
    /// does not give the secret away; the database *and* the key-encryption secret do (as
    /// they give the signing keys away). Without a key-encryption secret (an embedding
    /// without one), the secret is stored in the clear. Prefer `private_key_jwt`, for which
    /// the server holds only public keys.
    pub sealed_jwt_secret: Option<Vec<u8>>,
    /// The grant types the client may use; `None`: `authorization_code` and `refresh_token`
    /// (the Eternaltwin form), so `client_credentials` is only for a client that names it.
    pub grant_types: Option<Vec<GrantType>>,
    /// PKCE is required at the authorization endpoint (RFC 7636), whatever the server-wide
    /// `require_pkce`. Public clients always need it, with S256.
    pub require_pkce: bool,
    /// The client's authorization requests must be pushed first (RFC 9126 §6,
    /// `require_pushed_authorization_requests`).
    pub require_pushed_requests: bool,
    /// The client's access tokens are always bound to its DPoP key: a token request without
    /// a DPoP proof is refused (RFC 9449 §5.2, `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    /// The resources (RFC 8707) the client may ask tokens for, among the server's
    /// ([`crate::EngineConfig::resources`]); `None`: every one of them.
    pub resources: Option<Vec<ResourceUri>>,
    /// The extension grant types (RFC 6749 §4.5, absolute URIs such as the JWT bearer
    /// grant's, [`crate::extension_grant`]) the client may use, beyond
    /// [`Self::grant_types`]; an engine answers only those registered with it.
    pub extension_grants: Vec<String>,
    /// Who may sign the assertions of the client's JWT bearer grants (RFC 7523 §3: "the JWT
    /// MUST contain an iss … the authorization server MUST reject any JWT whose issuer it does
    /// not trust"), beyond the client itself with its own keys.
    pub assertion_issuers: Vec<TrustedIssuer>,
    /// Claims added to the tokens issued to this client, ID tokens, JWT access tokens,
    /// introspection and UserInfo (reserved names are never written:
    /// [`crate::claims_hook::RESERVED`]).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl ClientPolicy {
    /// Whether the client may use the extension grant `grant_type`
    /// ([`Self::extension_grants`]).
    pub fn allows_extension_grant(&self, grant_type: &str) -> bool {
        self.extension_grants.iter().any(|g| g == grant_type)
    }

    /// Whether the client may use `grant` ([`ClientPolicy::grant_types`]); a public client
    /// never gets `client_credentials` (RFC 6749 §4.4: "MUST only be used by confidential
    /// clients").
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        // A public client cannot prove who it is: no token for itself, and no exchange of a
        // token it holds for one another service accepts (RFC 8693 §2.1 expects the client
        // to authenticate).
        if matches!(
            grant,
            GrantType::ClientCredentials | GrantType::TokenExchange
        ) && self.is_public()
        {
            return false;
        }
        match &self.grant_types {
            Some(types) => types.contains(&grant),
            None => matches!(
                grant,
                GrantType::AuthorizationCode | GrantType::RefreshToken
            ),
        }
    }

    /// A public client (`token_endpoint_auth_method = "none"`).
    pub fn is_public(&self) -> bool {
        self.auth_method == Some(AuthMethod::None)
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(default)]
struct PolicyJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_endpoint_auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token_audience: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resource_server: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_implicit: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_password: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<JwkSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    /// Base64url of the sealed secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_jwt_sealed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_pkce: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_pushed_authorization_requests: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dpop_bound_access_tokens: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extension_grants: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assertion_issuers: Vec<TrustedIssuer>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl ClientPolicy {
    /// The policy as a JSON object, for storage adapters.
    pub fn to_json(&self) -> String {
        let json = PolicyJson {
            scopes: self.scopes.as_ref().map(ToString::to_string),
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            token_endpoint_auth_method: self.auth_method.map(|m| m.as_str().to_owned()),
            access_token_format: (self.access_token_format != AccessTokenFormat::Opaque)
                .then(|| self.access_token_format.as_str().to_owned()),
            id_token_signed_response_alg: self.id_token_alg.map(|a| a.as_str().to_owned()),
            access_token_audience: self.access_token_audience.clone(),
            resource_server: self.resource_server,
            insecure_implicit: self.insecure_implicit,
            insecure_password: self.insecure_password,
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.as_ref().map(|u| u.as_str().to_owned()),
            client_secret_jwt_sealed: self
                .sealed_jwt_secret
                .as_ref()
                .map(|sealed| URL_SAFE_NO_PAD.encode(sealed)),
            grant_types: self
                .grant_types
                .as_ref()
                .map(|types| types.iter().map(|g| g.as_str().to_owned()).collect()),
            require_pkce: self.require_pkce,
            require_pushed_authorization_requests: self.require_pushed_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            extension_grants: self.extension_grants.clone(),
            assertion_issuers: self.assertion_issuers.clone(),
            claims: self.claims.clone(),
            resources: self
                .resources
                .as_ref()
                .map(|list| list.iter().map(|r| r.as_str().to_owned()).collect()),
        };
        // Invariant: a struct of strings (and a JWK Set) serializes.
        serde_json::to_string(&json).expect("the client policy serializes")
    }

    /// Reads what [`ClientPolicy::to_json`] wrote.
    pub fn from_json(json: &str) -> Result<Self, String> {
        // The policy of every Eternaltwin-style client, read on every protected call.
        if json == "{}" {
            return Ok(Self::default());
        }
        let json: PolicyJson = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(Self {
            scopes: json
                .scopes
                .map(|s| ScopeSet::parse(&s).map_err(|e| e.to_string()))
                .transpose()?,
            post_logout_redirect_uris: json
                .post_logout_redirect_uris
                .iter()
                .map(|u| RedirectUri::parse(u).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
            auth_method: json
                .token_endpoint_auth_method
                .map(|m| AuthMethod::parse(&m).ok_or(m))
                .transpose()?,
            access_token_format: match json.access_token_format.as_deref() {
                Some("jwt") => AccessTokenFormat::Jwt,
                Some("application") => AccessTokenFormat::Application,
                _ => AccessTokenFormat::Opaque,
            },
            id_token_alg: json
                .id_token_signed_response_alg
                .map(|a| SigningAlg::parse(&a).ok_or(a))
                .transpose()?,
            access_token_audience: json.access_token_audience,
            resource_server: json.resource_server,
            insecure_implicit: json.insecure_implicit,
            insecure_password: json.insecure_password,
            jwks: json.jwks,
            jwks_uri: json
                .jwks_uri
                .map(|u| url::Url::parse(&u).map_err(|e| format!("jwks_uri: {e}")))
                .transpose()?,
            sealed_jwt_secret: json
                .client_secret_jwt_sealed
                .map(|b64| {
                    URL_SAFE_NO_PAD
                        .decode(b64)
                        .map_err(|_| "client_secret_jwt_sealed is not base64url".to_owned())
                })
                .transpose()?,
            grant_types: json
                .grant_types
                .map(|types| {
                    types
                        .into_iter()
                        .map(|g| GrantType::parse(&g).ok_or(g))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            require_pkce: json.require_pkce,
            require_pushed_requests: json.require_pushed_authorization_requests,
            dpop_bound_access_tokens: json.dpop_bound_access_tokens,
            extension_grants: json.extension_grants,
            assertion_issuers: json.assertion_issuers,
            claims: json.claims,
            resources: json
                .resources
                .map(|list| {
                    list.iter()
                        .map(|r| ResourceUri::parse(r).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        })
    }
}

/// A resource owner.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub created_at: UnixTime,
    /// Claims of this user added to its ID tokens, JWT access tokens, introspection and
    /// UserInfo (a JSON object; reserved names are never written:
    /// [`crate::claims_hook::RESERVED`]).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// May use the admin console.
    pub admin: bool,
    /// Set while the account is disabled: no sign-in, no session, no token (disabling ended
    /// those it had: [`crate::ports::UserStore::set_user_disabled`]).
    pub disabled_at: Option<UnixTime>,
    /// Who created the account.
    pub source: UserSource,
    /// This user must sign in with a second factor (besides the server-wide switch).
    pub second_factor_required: bool,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

/// Who created an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserSource {
    /// A `[seed.user.NAME]` of the configuration file: `doorward serve` upserts it at every
    /// start.
    #[default]
    Config,
    /// `doorward users add` or the admin console: it lives in the store only.
    Cli,
    /// The person, at the sign-up page.
    SignUp,
    /// An embedding application (its `AppUser`s), which owns its users.
    Application,
}

impl UserSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Cli => "cli",
            Self::SignUp => "sign_up",
            Self::Application => "application",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Config, Self::Cli, Self::SignUp, Self::Application]
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// A user's authenticator app (TOTP, RFC 6238).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    pub user_id: Uuid,
    /// The shared secret, sealed at rest like the signing keys.
    pub secret: Vec<u8>,
    pub created_at: UnixTime,
    /// The last time step a code was accepted for: a code works once, and none older.
    pub last_step: i64,
}

/// A user's passkey (WebAuthn): a public-key credential of an authenticator that verifies
/// its user, usable as a second factor and alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The authenticator's credential id: unique across every user.
    pub credential_id: Vec<u8>,
    /// What the user called it ("Laptop").
    pub name: String,
    /// The credential as the WebAuthn library keeps it (public key, signature counter,
    /// backup flags), JSON; updated after each use.
    pub credential: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// An invitation to sign up (`[accounts] sign_up = "invite"`), stored by the digest of its
/// code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationRecord {
    pub hash: TokenHash,
    /// Names it in lists and commands, without its code.
    pub id: Uuid,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Who made it (an audit actor, as text).
    pub created_by: String,
    /// The address it was made for (shown on the sign-up page; the person may change it).
    pub email: Option<String>,
    pub used_at: Option<UnixTime>,
    /// The account it created.
    pub used_by: Option<Uuid>,
}

/// Which users [`crate::ports::UserStore::list_users`] returns: ordered by username, those
/// after `after`, at most `limit`.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Kept when the username, display name or e-mail address contains it, ASCII letters
    /// compared without case.
    pub search: Option<String>,
    /// The last username of the previous page.
    pub after: Option<String>,
    pub limit: u32,
}

/// What [`crate::ports::UserStore::update_user`] writes: each field that is `Some`, the others
/// staying as stored. A change names only what it changes, so that two made at once (an
/// admin's demotion, the person's new password) never undo each other, as writing back a whole
/// row read earlier would.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserChange {
    pub display_name: Option<String>,
    /// An Argon2id PHC string.
    pub password_hash: Option<String>,
    /// `Some(None)` removes the address.
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    pub admin: Option<bool>,
    pub second_factor_required: Option<bool>,
}

impl UserChange {
    /// `user` with the change made (what a store keeping [`User`] values writes, and what the
    /// engine answers).
    pub fn applied_to(&self, user: &User) -> User {
        let mut user = user.clone();
        if let Some(name) = &self.display_name {
            user.display_name.clone_from(name);
        }
        if let Some(hash) = &self.password_hash {
            user.password_hash.clone_from(hash);
        }
        if let Some(email) = &self.email {
            user.email.clone_from(email);
        }
        if let Some(verified) = self.email_verified {
            user.email_verified = verified;
        }
        if let Some(claims) = &self.claims {
            user.claims.clone_from(claims);
        }
        if let Some(admin) = self.admin {
            user.admin = admin;
        }
        if let Some(required) = self.second_factor_required {
            user.second_factor_required = required;
        }
        user
    }
}

/// A user to create or update by username ([`crate::ports::UserStore::upsert_user`]): its
/// `id` is used only when the user does not exist yet.
pub type NewUser = User;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub hash: TokenHash,
    pub user_id: Uuid,
    /// When the user authenticated (OIDC `auth_time`).
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// How the user authenticated: RFC 8176 methods (`pwd`, `otp`, `mfa`, `hwk`, `swk`);
    /// empty when the application's own sign-in did not say.
    pub amr: Vec<String>,
}

/// A user's approval of a client for some scopes.
#[derive(Clone, Debug)]
pub struct ConsentRecord {
    pub user_id: Uuid,
    pub client_id: Uuid,
    pub scopes: ScopeSet,
    pub granted_at: UnixTime,
}

/// The `redirect_uri` of the code record of an approved device authorization: the device has
/// none, and such a code is redeemed by its device code only, never at the
/// `authorization_code` grant.
pub const DEVICE_REDIRECT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device authorization (RFC 8628 §3.1): a device waits, polling with its device code
/// (stored by hash only), while its user enters the user code on another screen.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceAuthorization {
    pub hash: TokenHash,
    /// Normalized: upper case, no separator ([`crate::device`]).
    pub user_code: String,
    pub client_id: Uuid,
    pub scopes: ScopeSet,
    /// The resources named (RFC 8707).
    pub resources: Vec<ResourceUri>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// When the device last polled, if it did.
    pub polled_at: Option<UnixTime>,
    pub state: DeviceState,
}

/// Where a device authorization stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// The user has not answered yet.
    Pending,
    /// The user approved: a code record of the device code's hash, for `user_id`, was stored
    /// with the approval, and the next poll redeems it.
    Approved { user_id: Uuid, auth_time: UnixTime },
    /// The user refused.
    Denied,
}

/// An issued authorization code (stored by hash only).
#[derive(Clone, Debug)]
pub struct CodeRecord {
    pub hash: TokenHash,
    pub client_id: Uuid,
    pub user_id: Uuid,
    /// The redirect URI the code was delivered to; the token request must match it.
    pub redirect_uri: RedirectUri,
    pub scopes: ScopeSet,
    /// Whether the authorization request named its scopes (so that the token response can say
    /// `scope` only when it differs, RFC 6749 §5.1).
    pub scope_requested: bool,
    pub challenge: Option<(CodeChallenge, CodeChallengeMethod)>,
    /// The OIDC `nonce` of the authorization request, echoed in the ID token.
    pub nonce: Option<String>,
    /// The grant family that every token issued from this code belongs to.
    pub family_id: Uuid,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// The resources the authorization request named (RFC 8707 §2.1): the grant's, which the
    /// token requests of the family may narrow (§2.2). Empty: none named.
    pub resources: Vec<ResourceUri>,
    /// The thumbprint of the DPoP key the tokens must be bound to (`dpop_jkt` of the
    /// authorization request, RFC 9449 §10): the token request's proof must use that key.
    pub dpop_jkt: Option<String>,
    /// The application granted fewer scopes than the request asked
    /// ([`crate::embedding::GrantTerms`]): the token response says which (RFC 6749 §5.1).
    pub scope_narrowed: bool,
    /// What the application attached to the grant (TxOAuth2's `additionalData`;
    /// [`crate::embedding::GrantTerms`]), a JSON object kept with the grant family: written
    /// with the code that starts it, read with each code and refresh token of it.
    pub grant_data: serde_json::Map<String, serde_json::Value>,
    /// How the user authenticated for this grant ([`SessionRecord::amr`]): kept with the
    /// grant family like `grant_data`, for the ID tokens of its code and refreshes.
    pub amr: Vec<String>,
}

/// An issued access token (stored by hash only).
#[derive(Clone, Debug)]
pub struct AccessTokenRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub client_id: Uuid,
    /// `None` for a token whose subject is the client itself (`client_credentials`, RFC 6749
    /// §4.4).
    pub user_id: Option<Uuid>,
    pub scopes: ScopeSet,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
    /// The token's audience when resources were asked for (RFC 8707): what it is meant for.
    /// Empty: the default audience (the client's `access_token_audience`, else the issuer).
    pub resources: Vec<ResourceUri>,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to (`cnf.jkt`, RFC 9449
    /// §6): presented, it needs a proof signed with that key. `None`: a bearer token.
    pub dpop_jkt: Option<String>,
    /// Who acts for the subject (RFC 8693 §4.1 `act`, as JSON): set on a token issued by a
    /// token exchange, whose client is the actor. `None`: the client acts for itself.
    pub act: Option<String>,
}

/// An access token with the user and the client it was issued to: what a protected resource
/// needs, read in one go.
#[derive(Clone, Debug)]
pub struct BearerRecord {
    pub token: AccessTokenRecord,
    /// `None` for a `client_credentials` token, which has no user.
    ///
    /// The user, the client and the grant data are shared (`Arc`): a bearer check answered
    /// from the read cache hands them on without copying them (BENCHMARKS.md, W3).
    pub user: Option<Arc<User>>,
    pub client: Arc<Client>,
    /// The grant family's data ([`CodeRecord::grant_data`]); empty for a family without one.
    pub grant_data: Arc<serde_json::Map<String, serde_json::Value>>,
}

impl BearerRecord {
    /// Not revoked, not expired at `now`, and not held by a disabled user (disabling revokes
    /// the user's tokens too; this covers one inserted while it happened).
    pub fn is_live(&self, now: UnixTime) -> bool {
        !self.token.revoked
            && self.token.expires_at > now
            && !self.user.as_deref().is_some_and(User::is_disabled)
    }
}

/// An issued refresh token (stored by hash only). Each works once (RFC 9700 §4.14.2).
#[derive(Clone, Debug)]
pub struct RefreshTokenRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub scopes: ScopeSet,
    pub auth_time: UnixTime,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
    /// When it was spent (set by the store; `None` when inserting).
    pub used_at: Option<UnixTime>,
    /// The answer its refresh gave, sealed with a key derived from this token (see
    /// `Engine::refresh`'s grace window). Set by the store; `None` when inserting.
    pub successor: Option<Vec<u8>>,
    /// The grant's resources (RFC 8707), as its code had them: a refresh may ask for a
    /// subset (§2.2). Empty: the grant named none.
    pub resources: Vec<ResourceUri>,
    /// The DPoP key a public client's refresh token is bound to (RFC 9449 §5): its refresh
    /// needs a proof with that key. `None` for a confidential client's, which its client
    /// authentication protects.
    pub dpop_jkt: Option<String>,
    /// The grant family's data ([`CodeRecord::grant_data`]), as the store reads it with the
    /// token; not written with it.
    pub grant_data: serde_json::Map<String, serde_json::Value>,
    /// The grant family's authentication methods ([`CodeRecord::amr`]), read like
    /// `grant_data`; not written with the token.
    pub amr: Vec<String>,
}

/// A signing key as stored (see [`crate::keys`] for its stages).
#[derive(Clone)]
pub struct SigningKeyRecord {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    pub alg: SigningAlg,
    /// 1 for the first key of the algorithm, then one more per rotation; unique per algorithm.
    pub generation: i64,
    /// The private key, sealed when a key-encryption secret is configured.
    pub private_key: Vec<u8>,
    /// The public JWK, as JSON.
    pub public_jwk: String,
    pub created_at: UnixTime,
    pub activate_at: UnixTime,
    /// Set when a successor is scheduled: after this time the key is deleted.
    pub remove_at: Option<UnixTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("private_key", &"[redacted]")
            .field("activate_at", &self.activate_at)
            .field("remove_at", &self.remove_at)
            .finish()
    }
}

/// A browser whose user has signed in.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: User,
    pub session: SessionRecord,
}

/// What dynamic client registration keeps of a registered client (RFC 7591, RFC 7592) beside
/// its [`Client`] row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationRecord {
    pub client_id: Uuid,
    /// The SHA-256 digest of the client's registration access token (RFC 7592 §1), the
    /// record's lookup key: the token itself is never stored.
    pub token_hash: TokenHash,
    /// The client metadata as registered, a JSON object (RFC 7591 §2), given back by reads of
    /// the client configuration endpoint (RFC 7592 §2.1).
    pub metadata: String,
}

/// An initial access token (RFC 7591 §3), stored by digest: it lets its bearer register
/// clients `uses_left` more times until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialTokenRecord {
    pub hash: TokenHash,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub uses_left: u32,
}
