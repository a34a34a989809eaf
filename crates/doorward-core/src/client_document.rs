//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02, "CIMD"; the
//! MCP authorization specification's preferred way for a client to make itself known): a
//! `client_id` that is an https URL names the client whose metadata that URL serves. Section
//! numbers below are the -02 draft's.
//!
//! This module holds the rules, no I/O: which `client_id`s are document URLs
//! ([`document_url`], §3), what a document must say ([`parse_document`], §4 and §8), and how
//! long it is trusted, or refused without fetching again ([`DocumentCache`], §5.2). `Engine::resolve_client` fetches through the
//! [`crate::fetch::Fetcher`] port, validates, and upserts the client into the store as
//! [`ClientSource::MetadataDocument`] under a stable Id, so that codes, tokens, consents and
//! revocation work as for any client.
//!
//! What Doorward accepts in a document (stricter than the draft allows, never looser):
//! - `client_id` equal to the URL it was fetched from, character for character (§4.1);
//! - `redirect_uris`: 1 to [`MAX_REDIRECT_URIS`], each allowed by
//!   [`crate::redirect::check_registration`] (§8.1; a public client may use RFC 8252 forms);
//! - `token_endpoint_auth_method`: `none` (the default here, since a document can hold no
//!   secret: a public client, PKCE S256 required) or `private_key_jwt` with `jwks` or
//!   `jwks_uri` (not both); no `client_secret`, `client_secret_expires_at`, nor any
//!   `client_secret_*` method (§4.1: a document is public, so is anything in it);
//! - `grant_types` within `authorization_code` and `refresh_token`, `authorization_code`
//!   included; `response_types`, when sent, only `code`;
//! - `client_name` (at most [`MAX_NAME`] characters, no control character), `client_uri` and
//!   `logo_uri` (https, at most [`MAX_URI`] bytes), which the consent page shows as the
//!   client's own claims ([`Client::is_verified`]);
//! - `scope`, when sent, limits the scopes the client may ask for.
//!
//! [`Client::is_verified`]: crate::model::Client::is_verified

use std::collections::HashMap;
use std::sync::Mutex;

use doorward_proto::{RedirectUri, ScopeSet};
use serde_json::{Map, Value};
use url::Url;

use crate::clock::UnixTime;
use crate::fetch::FetchError;
use crate::jose::parse_client_jwks;
use crate::model::{AuthMethod, ClientPolicy, ClientSource, GrantType};
use crate::ports::StoreError;
use crate::redirect::check_registration;

/// The most redirect URIs a document may list.
pub const MAX_REDIRECT_URIS: usize = 20;
/// The longest `client_name`, in characters.
pub const MAX_NAME: usize = 100;
/// The longest `client_uri`, `logo_uri`, `jwks_uri` or `client_id` URL, in bytes.
pub const MAX_URI: usize = 2048;
/// How long a document is trusted when its response names no lifetime: 5 minutes (§5.2).
pub const DEFAULT_LIFETIME: i64 = 300;
/// The shortest lifetime honoured, so that `max-age=0` is not a fetch per request.
pub const MIN_LIFETIME: i64 = 60;
/// The longest lifetime honoured: a changed document is read again within a day.
pub const MAX_LIFETIME: i64 = 24 * 3600;
/// The most documents whose freshness is remembered.
const MAX_ENTRIES: usize = 4096;

/// The server's policy for metadata documents (off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocumentPolicy {
    /// Accept document URLs as `client_id`s.
    pub enabled: bool,
    /// Accept `http://` document URLs, `jwks_uri`s, `client_uri`s and `logo_uri`s, for tests
    /// on loopback only: the fetcher must allow plain HTTP too.
    ///
    /// # Security
    /// A document fetched over plain HTTP can be replaced by anyone on the path, and with it
    /// the client's redirect URIs: an attacker gets the codes.
    pub insecure_allow_http: bool,
}

/// Why a client's metadata document is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("the metadata document could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    #[error("the metadata document is refused: {0}")]
    Invalid(String),
}

/// Why the client a request names could not be had (`Engine::resolve_client`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// The client's metadata document: at the authorization endpoint a stage-1 error (shown,
    /// never redirected), elsewhere `invalid_client`.
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// Whether `client_id` is a metadata document's URL (§3): `https` (or `http` under
/// [`DocumentPolicy::insecure_allow_http`]), a host, a path other than `/`, no user info, no
/// fragment, no dot segments, and already in its normalized form (so that the URL fetched is
/// the string the client sent, which the document must repeat exactly). `None` for a
/// `client_id` that is not a URL at all (a Key or an Id); `Some(Err)` for a URL that breaks
/// these rules.
///
/// ```
/// use doorward_core::client_document::{document_url, DocumentPolicy};
/// let on = DocumentPolicy { enabled: true, insecure_allow_http: false };
/// assert!(document_url("shop@clients", on).is_none());
/// assert!(document_url("https://app.example/client.json", on).unwrap().is_ok());
/// assert!(document_url("https://app.example/", on).unwrap().is_err()); // no path
/// assert!(document_url("http://app.example/c.json", on).unwrap().is_err()); // not https
/// ```
pub fn document_url(client_id: &str, policy: DocumentPolicy) -> Option<Result<Url, String>> {
    let lower = client_id.get(..8).unwrap_or(client_id).to_ascii_lowercase();
    if !lower.starts_with("https://") && !lower.starts_with("http://") {
        return None;
    }
    Some(
        checked_url(client_id, policy.insecure_allow_http).and_then(|url| {
            let path = url.path();
            if path.is_empty() || path == "/" {
                return Err("a client_id URL must have a path".to_owned());
            }
            if url.query().is_some() {
                return Err("a client_id URL must have no query".to_owned());
            }
            Ok(url)
        }),
    )
}

/// An absolute `https` URL (or `http` when allowed) with a host, no user info, no fragment,
/// at most [`MAX_URI`] bytes, written in its normalized form.
fn checked_url(value: &str, allow_http: bool) -> Result<Url, String> {
    if value.len() > MAX_URI {
        return Err(format!("a URL has at most {MAX_URI} bytes"));
    }
    let url = Url::parse(value).map_err(|_| format!("{value:?} is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(format!("{value:?} must be an https URL")),
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{value:?} must have a host and no user info"));
    }
    if url.fragment().is_some() {
        return Err(format!("{value:?} must have no fragment"));
    }
    // Dot segments, a differently cased scheme or host, default ports: all normalized away
    // by the parser, so the URL would not be the string compared.
    if url.as_str() != value {
        return Err(format!("{value:?} is not in normalized form"));
    }
    Ok(url)
}

/// A client as its document describes it, before it gets an Id and a time.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentClient {
    pub display_name: String,
    /// `client_uri`, or empty.
    pub app_uri: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub policy: ClientPolicy,
    pub source: ClientSource,
}

/// Reads and checks a metadata document fetched from `url` (see the module documentation).
pub fn parse_document(
    url: &Url,
    body: &[u8],
    policy: DocumentPolicy,
) -> Result<DocumentClient, DocumentError> {
    let invalid = |why: String| DocumentError::Invalid(why);
    let value: Value =
        serde_json::from_slice(body).map_err(|_| invalid("not a JSON document".to_owned()))?;
    let Value::Object(doc) = value else {
        return Err(invalid("not a JSON object".to_owned()));
    };
    let text = |name: &str| -> Result<Option<&str>, DocumentError> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    };
    // §4.1: the document names the URL it was fetched from.
    if text("client_id")? != Some(url.as_str()) {
        return Err(invalid(
            "its client_id is not the URL it was fetched from".to_owned(),
        ));
    }
    for forbidden in ["client_secret", "client_secret_expires_at"] {
        if doc.contains_key(forbidden) {
            return Err(invalid(format!(
                "a metadata document is public and must not hold {forbidden}"
            )));
        }
    }
    let method = match text("token_endpoint_auth_method")? {
        None | Some("none") => AuthMethod::None,
        Some("private_key_jwt") => AuthMethod::PrivateKeyJwt,
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other:?}: only none or private_key_jwt"
            )))
        }
    };
    let public = method == AuthMethod::None;
    let redirect_uris = redirect_uris(&doc, public).map_err(invalid)?;
    let grant_types = grant_types(&doc).map_err(invalid)?;
    if let Some(types) = doc.get("response_types") {
        if types != &serde_json::json!(["code"]) {
            return Err(invalid("response_types may only be [\"code\"]".to_owned()));
        }
    }
    let (jwks, jwks_uri) = match (doc.get("jwks"), text("jwks_uri")?) {
        (Some(_), Some(_)) => {
            return Err(invalid("jwks and jwks_uri are exclusive".to_owned()));
        }
        (Some(jwks), None) => (
            Some(parse_client_jwks(&jwks.to_string()).map_err(|e| invalid(format!("jwks: {e}")))?),
            None,
        ),
        (None, Some(uri)) => (
            None,
            Some(
                checked_url(uri, policy.insecure_allow_http)
                    .map_err(|e| invalid(format!("jwks_uri: {e}")))?,
            ),
        ),
        (None, None) => (None, None),
    };
    if method == AuthMethod::PrivateKeyJwt && jwks.is_none() && jwks_uri.is_none() {
        return Err(invalid("private_key_jwt needs jwks or jwks_uri".to_owned()));
    }
    let display_name = match text("client_name")? {
        Some(name) => checked_name(name).map_err(invalid)?,
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let app_uri = match text("client_uri")? {
        Some(uri) => checked_url(uri, policy.insecure_allow_http)
            .map_err(|e| invalid(format!("client_uri: {e}")))?
            .to_string(),
        None => String::new(),
    };
    if let Some(uri) = text("logo_uri")? {
        checked_url(uri, policy.insecure_allow_http)
            .map_err(|e| invalid(format!("logo_uri: {e}")))?;
    }
    let scopes = text("scope")?
        .map(|s| ScopeSet::parse(s).map_err(|e| invalid(format!("scope: {e}"))))
        .transpose()?;
    Ok(DocumentClient {
        display_name,
        app_uri,
        redirect_uris,
        policy: ClientPolicy {
            scopes,
            auth_method: Some(method),
            jwks: if public { None } else { jwks },
            jwks_uri: if public { None } else { jwks_uri },
            grant_types,
            require_pkce: public,
            ..ClientPolicy::default()
        },
        source: ClientSource::MetadataDocument,
    })
}

fn redirect_uris(doc: &Map<String, Value>, public: bool) -> Result<Vec<RedirectUri>, String> {
    let Some(Value::Array(uris)) = doc.get("redirect_uris") else {
        return Err("redirect_uris must be an array of strings".to_owned());
    };
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "redirect_uris must hold 1 to {MAX_REDIRECT_URIS} URIs"
        ));
    }
    uris.iter()
        .map(|uri| {
            let uri = uri
                .as_str()
                .ok_or("redirect_uris must be an array of strings")?;
            if uri.len() > MAX_URI {
                return Err(format!("a redirect URI has at most {MAX_URI} bytes"));
            }
            let parsed = RedirectUri::parse(uri).map_err(|e| format!("redirect_uris: {e}"))?;
            check_registration(&parsed, public).map_err(|e| format!("redirect_uris: {e}"))?;
            Ok(parsed)
        })
        .collect()
}

fn grant_types(doc: &Map<String, Value>) -> Result<Option<Vec<GrantType>>, String> {
    let Some(value) = doc.get("grant_types") else {
        return Ok(None);
    };
    let wrong = || "grant_types may hold authorization_code and refresh_token only".to_owned();
    let Value::Array(names) = value else {
        return Err(wrong());
    };
    let mut types = Vec::new();
    for name in names {
        match name.as_str().and_then(GrantType::parse) {
            Some(g @ (GrantType::AuthorizationCode | GrantType::RefreshToken)) => {
                if !types.contains(&g) {
                    types.push(g);
                }
            }
            _ => return Err(wrong()),
        }
    }
    if !types.contains(&GrantType::AuthorizationCode) {
        return Err("grant_types must include authorization_code".to_owned());
    }
    Ok(Some(types))
}

/// A name a page may show: 1 to [`MAX_NAME`] characters, no control or bidirectional
/// override characters (which could make the page say another name than the one stored).
fn checked_name(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    let count = trimmed.chars().count();
    let bad = |c: char| {
        c.is_control()
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if count == 0 || count > MAX_NAME || trimmed.chars().any(bad) {
        return Err(format!(
            "client_name must have 1 to {MAX_NAME} characters, none of them control characters"
        ));
    }
    Ok(trimmed.to_owned())
}

/// A document response's freshness lifetime (§5.2) within [`MIN_LIFETIME`, `MAX_LIFETIME`].
pub fn lifetime(max_age: Option<u64>) -> i64 {
    match max_age {
        None => DEFAULT_LIFETIME,
        Some(seconds) => i64::try_from(seconds)
            .unwrap_or(i64::MAX)
            .clamp(MIN_LIFETIME, MAX_LIFETIME),
    }
}

/// How long a refused or unreachable document is answered from memory, without fetching:
/// anyone can send a `client_id` URL to the authorization endpoint, and must not make this
/// server fetch it at will (§8.6).
pub const FAILURE_COOLDOWN: i64 = 10;

/// Until when each document URL's stored client is fresh, in this instance's memory: a
/// document is fetched again when its time is over (or this instance never fetched it). A
/// refusal is remembered for [`FAILURE_COOLDOWN`].
#[derive(Default)]
pub struct DocumentCache {
    entries: Mutex<HashMap<String, Entry>>,
}

enum Entry {
    Fresh(UnixTime),
    Refused(UnixTime, DocumentError),
}

impl Entry {
    fn until(&self) -> UnixTime {
        match self {
            Self::Fresh(until) | Self::Refused(until, _) => *until,
        }
    }
}

impl DocumentCache {
    pub fn is_fresh(&self, url: &str, now: UnixTime) -> bool {
        matches!(self.lock().get(url), Some(Entry::Fresh(until)) if now < *until)
    }

    /// The refusal of `url` remembered from less than [`FAILURE_COOLDOWN`] ago.
    pub fn refusal(&self, url: &str, now: UnixTime) -> Option<DocumentError> {
        match self.lock().get(url) {
            Some(Entry::Refused(until, error)) if now < *until => Some(error.clone()),
            _ => None,
        }
    }

    pub fn remember(&self, url: &str, until: UnixTime, now: UnixTime) {
        self.insert(url, Entry::Fresh(until), now);
    }

    pub fn remember_refusal(&self, url: &str, error: DocumentError, now: UnixTime) {
        self.insert(
            url,
            Entry::Refused(now.saturating_add(FAILURE_COOLDOWN), error),
            now,
        );
    }

    fn insert(&self, url: &str, entry: Entry, now: UnixTime) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, entry| now < entry.until());
        }
        if map.len() >= MAX_ENTRIES {
            // Every entry current: forget one, the cost is a fetch.
            if let Some(any) = map.keys().next().cloned() {
                map.remove(&any);
            }
        }
        map.insert(url.to_owned(), entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ON: DocumentPolicy = DocumentPolicy {
        enabled: true,
        insecure_allow_http: false,
    };
    const URL: &str = "https://app.example/oauth/client.json";

    fn parse(doc: Value) -> Result<DocumentClient, DocumentError> {
        parse_document(&Url::parse(URL).unwrap(), doc.to_string().as_bytes(), ON)
    }

    fn good() -> Value {
        json!({
            "client_id": URL,
            "client_name": "An app",
            "client_uri": "https://app.example/",
            "logo_uri": "https://app.example/logo.png",
            "redirect_uris": ["https://app.example/callback", "http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid profile"
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut doc = good();
        doc[field] = value;
        doc
    }

    fn without(field: &str) -> Value {
        let mut doc = good();
        doc.as_object_mut().unwrap().remove(field);
        doc
    }

    #[test]
    fn a_good_document_is_a_public_client() {
        let client = parse(good()).unwrap();
        assert_eq!(client.display_name, "An app");
        assert_eq!(client.redirect_uris.len(), 2);
        assert!(client.policy.is_public() && client.policy.require_pkce);
        assert_eq!(client.source, ClientSource::MetadataDocument);
        // Without a name, the host stands for it; without a method, `none`.
        let client = parse(without("client_name")).unwrap();
        assert_eq!(client.display_name, "app.example");
        assert!(parse(without("token_endpoint_auth_method"))
            .unwrap()
            .policy
            .is_public());
    }

    #[test]
    fn hostile_documents_are_refused() {
        let private_jwk = json!({"keys": [{
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            "d": "jpsQnnGQmL-YBIffH1136cLa5hgYTDVxP_FxRSNUwjA"
        }]});
        let cases = [
            (
                "another client_id",
                with("client_id", json!("https://evil.example/c.json")),
            ),
            (
                "a client_id with a slash more",
                with("client_id", json!(format!("{URL}/"))),
            ),
            ("no client_id", without("client_id")),
            ("a secret", with("client_secret", json!("s3cret-s3cret"))),
            (
                "a secret expiry",
                with("client_secret_expires_at", json!(0)),
            ),
            (
                "client_secret_basic",
                with("token_endpoint_auth_method", json!("client_secret_basic")),
            ),
            (
                "client_secret_jwt",
                with("token_endpoint_auth_method", json!("client_secret_jwt")),
            ),
            ("no redirect URI", without("redirect_uris")),
            ("an empty list", with("redirect_uris", json!([]))),
            (
                "a string, not a list",
                with("redirect_uris", json!("https://app.example/cb")),
            ),
            (
                "a javascript: URI",
                with("redirect_uris", json!(["javascript:alert(1)"])),
            ),
            (
                "a fragment",
                with("redirect_uris", json!(["https://app.example/cb#x"])),
            ),
            ("a relative URI", with("redirect_uris", json!(["/cb"]))),
            (
                "localhost for a public client",
                with("redirect_uris", json!(["http://localhost/cb"])),
            ),
            (
                "a scheme not in reverse-domain form",
                with("redirect_uris", json!(["myapp:/cb"])),
            ),
            (
                "too many URIs",
                with("redirect_uris", json!(vec!["https://app.example/cb"; 21])),
            ),
            (
                "client_credentials",
                with("grant_types", json!(["client_credentials"])),
            ),
            (
                "implicit",
                with("grant_types", json!(["authorization_code", "implicit"])),
            ),
            (
                "refresh alone",
                with("grant_types", json!(["refresh_token"])),
            ),
            (
                "response_type token",
                with("response_types", json!(["token"])),
            ),
            (
                "a javascript: client_uri",
                with("client_uri", json!("javascript:alert(1)")),
            ),
            (
                "an http client_uri",
                with("client_uri", json!("http://app.example/")),
            ),
            (
                "a data: logo",
                with("logo_uri", json!("data:image/png;base64,AAAA")),
            ),
            ("a long name", with("client_name", json!("x".repeat(101)))),
            ("an empty name", with("client_name", json!("  "))),
            (
                "a bidi override",
                with("client_name", json!("Good\u{202E}elgooG")),
            ),
            ("a newline", with("client_name", json!("Line\nbreak"))),
            ("a number as name", with("client_name", json!(42))),
            ("a bad scope", with("scope", json!("a\"b"))),
            (
                "private_key_jwt without keys",
                with("token_endpoint_auth_method", json!("private_key_jwt")),
            ),
            ("a private key", {
                let mut doc = with("token_endpoint_auth_method", json!("private_key_jwt"));
                doc["jwks"] = private_jwk;
                doc
            }),
            ("both jwks and jwks_uri", {
                let mut doc = with("token_endpoint_auth_method", json!("private_key_jwt"));
                doc["jwks"] = json!({"keys": []});
                doc["jwks_uri"] = json!("https://app.example/jwks");
                doc
            }),
            ("an http jwks_uri", {
                let mut doc = with("token_endpoint_auth_method", json!("private_key_jwt"));
                doc["jwks_uri"] = json!("http://app.example/jwks");
                doc
            }),
        ];
        for (what, doc) in cases {
            assert!(
                matches!(parse(doc), Err(DocumentError::Invalid(_))),
                "{what} must be refused"
            );
        }
        for junk in [&b"[]"[..], b"null", b"{", b"\xff\xfe", b"\"client\""] {
            assert!(parse_document(&Url::parse(URL).unwrap(), junk, ON).is_err());
        }
    }

    #[test]
    fn private_key_jwt_with_a_jwks_uri() {
        let mut doc = with("token_endpoint_auth_method", json!("private_key_jwt"));
        doc["jwks_uri"] = json!("https://app.example/jwks.json");
        let client = parse(doc).unwrap();
        assert_eq!(client.policy.auth_method, Some(AuthMethod::PrivateKeyJwt));
        assert_eq!(
            client.policy.jwks_uri.unwrap().as_str(),
            "https://app.example/jwks.json"
        );
        assert!(!client.policy.require_pkce);
    }

    #[test]
    fn which_client_ids_are_document_urls() {
        let http = DocumentPolicy {
            enabled: true,
            insecure_allow_http: true,
        };
        assert!(document_url("shop@clients", ON).is_none());
        assert!(document_url("0b4f6a2e-0000-4000-8000-000000000000", ON).is_none());
        assert!(document_url(URL, ON).unwrap().is_ok());
        for refused in [
            "https://app.example",
            "https://app.example/",
            "https://app.example/a/../b",
            "https://app.example/./b",
            "https://user:pw@app.example/c",
            "https://app.example/c#frag",
            "https://app.example/c?q=1",
            "https://APP.example/c",
            "https://app.example:443/c",
            "HTTPS://app.example/c",
            "http://app.example/c",
        ] {
            assert!(
                document_url(refused, ON).is_some_and(|r| r.is_err()),
                "{refused}"
            );
        }
        assert!(document_url("http://127.0.0.1:8080/c.json", http)
            .unwrap()
            .is_ok());
    }

    #[test]
    fn cache_times_are_bounded_and_kept() {
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(lifetime(Some(0)), MIN_LIFETIME);
        assert_eq!(lifetime(Some(u64::MAX)), MAX_LIFETIME);
        let cache = DocumentCache::default();
        assert!(!cache.is_fresh(URL, 100));
        cache.remember(URL, 200, 100);
        assert!(cache.is_fresh(URL, 199) && !cache.is_fresh(URL, 200));
        let refused = DocumentError::Invalid("no".to_owned());
        cache.remember_refusal(URL, refused.clone(), 300);
        assert!(!cache.is_fresh(URL, 301));
        assert_eq!(
            cache.refusal(URL, 300 + FAILURE_COOLDOWN - 1),
            Some(refused)
        );
        assert_eq!(cache.refusal(URL, 300 + FAILURE_COOLDOWN), None);
    }
}
