//! Client metadata (RFC 7591 §2), parsed once into a checked [`Metadata`]: what the server
//! keeps, gives back and shows. No I/O, no engine.
//!
//! The rules, each refusal an RFC 7591 §3.2.2 error (`invalid_redirect_uri` for a redirect
//! URI, `invalid_client_metadata` for the rest), never echoing what was sent:
//! - the body is a JSON object; a member of the wrong JSON type is refused; members this
//!   server does not know are ignored (§2) and not given back;
//! - `redirect_uris`: required with `authorization_code`, at most [`MAX_REDIRECT_URIS`], each a
//!   [`RedirectUri`] (no fragment, no `javascript:`, `data:`, `vbscript:`, `file:`, no
//!   whitespace or control character) that [`crate::redirect::check_registration`] allows
//!   (RFC 8252), and, in open mode, within the policy's schemes and hosts;
//! - `token_endpoint_auth_method`: `none`, `client_secret_basic` (the default, §2),
//!   `client_secret_post`, `private_key_jwt` (with an inline `jwks` of public keys),
//!   `client_secret_jwt`; the keys inline in `jwks` or at an https `jwks_uri`, never both (§2);
//! - `grant_types` ⊆ {`authorization_code` (the default), `refresh_token`,
//!   `client_credentials`}, each enabled on the server; `response_types` ⊆ {`code`}, and the two
//!   consistent (§2.1); `refresh_token` only beside `authorization_code`; `client_credentials`
//!   never for a public client (RFC 6749 §4.4);
//! - `scope` ⊆ the server's scopes;
//! - what pages show (`client_name`, `software_id`, `software_version`, `contacts`): bounded
//!   length, no control, bidirectional-override or invisible formatting character (a name
//!   that reorders itself on the consent page could pass for another);
//! - every URI: only the characters RFC 3986 §2 allows (no `<`, `>`, quotes, spaces);
//! - `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`: ASCII (punycode for
//!   international hosts, so no look-alike letters), https, or http on a loopback host, no
//!   user information.

use doorward_proto::{ErrorCode, OAuthError, RedirectUri, ScopeSet};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value};

use crate::config::RegistrationPolicy;
use crate::jose::parse_client_jwks;
use crate::model::{AuthMethod, GrantType};
use crate::redirect::check_registration;

/// The most redirect URIs one client registers.
pub const MAX_REDIRECT_URIS: usize = 20;
/// The longest URI accepted, in bytes.
pub const MAX_URI: usize = 2000;
/// The longest name or other shown text, in characters.
pub const MAX_TEXT: usize = 120;
/// The most `contacts`.
pub const MAX_CONTACTS: usize = 10;

/// What a registration is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// The scopes the server offers.
    pub scopes: &'a ScopeSet,
    /// The grant types the server answers.
    pub grants: crate::config::Grants,
    /// Open mode without an initial access token: public clients only, under this policy's
    /// redirect rules.
    pub open: Option<&'a RegistrationPolicy>,
    /// The method an omitted `token_endpoint_auth_method` means (RFC 7591 §2:
    /// `client_secret_basic`; open mode registers `none` instead, §3.2.1 lets the server
    /// substitute a value, and the answer says so).
    pub default_method: AuthMethod,
    /// Accept an `http://` `jwks_uri` (tests only: `[fetch] insecure_allow_http`).
    pub allow_http_jwks_uri: bool,
}

/// Checked client metadata.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<&'static str>,
    pub scope: Option<ScopeSet>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub contacts: Vec<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub jwks: Option<JwkSet>,
    /// Where the client publishes its keys instead (RFC 7591 §2), fetched when needed.
    pub jwks_uri: Option<url::Url>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// RFC 9126 §6: the client's authorization requests must be pushed.
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2: the client's tokens are always DPoP-bound.
    pub dpop_bound_access_tokens: bool,
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description.into())
}

fn invalid_uri(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description.into())
}

/// Parses and checks the JSON body of a registration (RFC 7591 §3.1) or of an update
/// (RFC 7592 §2.2, which the caller checks for `client_id` first).
///
/// ```
/// use doorward_core::model::AuthMethod;
/// use doorward_core::registration::metadata::{parse, Rules};
/// use doorward_core::{EngineConfig, Grants};
/// use doorward_proto::ErrorCode;
///
/// let config = EngineConfig::default();
/// let rules = Rules {
///     scopes: &config.scopes,
///     grants: Grants::CODE_AND_REFRESH,
///     open: None,
///     default_method: AuthMethod::ClientSecretBasic,
///     allow_http_jwks_uri: false,
/// };
/// let ok = parse(br#"{"redirect_uris": ["https://app.example/cb"]}"#, &rules).unwrap();
/// assert_eq!(ok.auth_method, AuthMethod::ClientSecretBasic);
/// let refused = parse(br#"{"redirect_uris": ["javascript:alert(1)"]}"#, &rules).unwrap_err();
/// assert_eq!(refused.code, ErrorCode::InvalidRedirectUri);
/// ```
pub fn parse(body: &[u8], rules: &Rules<'_>) -> Result<Metadata, OAuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("the body must be a JSON object (RFC 7591 section 3.1)"))?;
    let Value::Object(members) = value else {
        return Err(invalid(
            "the body must be a JSON object (RFC 7591 section 3.1)",
        ));
    };
    from_members(&members, rules)
}

/// Checks the members of a registration's JSON object.
pub fn from_members(
    members: &Map<String, Value>,
    rules: &Rules<'_>,
) -> Result<Metadata, OAuthError> {
    let m = Members(members);
    let auth_method = match m.string("token_endpoint_auth_method")? {
        None => rules.default_method,
        Some(name) => AuthMethod::parse(name).ok_or_else(|| {
            invalid(
                "token_endpoint_auth_method: this server supports none, client_secret_basic, \
                 client_secret_post, private_key_jwt and client_secret_jwt",
            )
        })?,
    };
    let public = auth_method == AuthMethod::None;
    if rules.open.is_some() && !public {
        return Err(invalid(
            "without an initial access token this server registers public clients only \
             (token_endpoint_auth_method none)",
        ));
    }
    let (grant_types, response_types) = grants(&m, rules, public)?;
    let redirect_uris = redirect_uris(&m, rules, public)?;
    if redirect_uris.is_empty() && grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(invalid_uri(
            "redirect_uris: at least one is required for authorization_code",
        ));
    }
    let scope = match m.string("scope")? {
        None => None,
        Some(text) => {
            let set = ScopeSet::parse(text)
                .map_err(|_| invalid("scope: a space-separated list of scope tokens"))?;
            if !set.is_subset(rules.scopes) {
                return Err(invalid(format!(
                    "scope: this server offers only {}",
                    rules.scopes
                )));
            }
            Some(set)
        }
    };
    let jwks_uri = match m.string("jwks_uri")? {
        None => None,
        Some(_) if m.0.contains_key("jwks") => {
            return Err(invalid(
                "jwks and jwks_uri must not both be given (RFC 7591 section 2)",
            ))
        }
        Some(text) => Some(jwks_uri(text, rules.allow_http_jwks_uri)?),
    };
    let jwks = match m.0.get("jwks") {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => Some(
            parse_client_jwks(&value.to_string())
                .map_err(|why| invalid(format!("jwks: {}", printable(&why))))?,
        ),
        Some(_) => return Err(invalid("jwks: must be a JSON object (a JWK Set)")),
    };
    match auth_method {
        AuthMethod::PrivateKeyJwt if jwks.is_none() && jwks_uri.is_none() => {
            return Err(invalid(
                "private_key_jwt needs the client's public keys, in jwks or at jwks_uri",
            ))
        }
        AuthMethod::PrivateKeyJwt => {}
        _ if jwks.is_some() || jwks_uri.is_some() => {
            return Err(invalid(
                "jwks and jwks_uri are only used with token_endpoint_auth_method private_key_jwt",
            ))
        }
        _ => {}
    }
    let post_logout_redirect_uris = m
        .strings("post_logout_redirect_uris", MAX_REDIRECT_URIS)?
        .into_iter()
        .map(|u| {
            checked_uri(u)
                .and_then(|s| RedirectUri::parse(s).map_err(|_| ()))
                .map_err(|()| {
                    invalid("post_logout_redirect_uris: each must be an absolute URI without a fragment")
                })
        })
        .collect::<Result<Vec<RedirectUri>, _>>()?;
    // The open policy binds where sign-out sends browsers as much as where sign-in does.
    if let Some(policy) = rules.open {
        for uri in &post_logout_redirect_uris {
            open_policy(uri, policy).map_err(|_| {
                invalid("post_logout_redirect_uris: this scheme or host is not allowed for open registration here")
            })?;
        }
    }
    Ok(Metadata {
        redirect_uris,
        auth_method,
        grant_types,
        response_types,
        scope,
        client_name: m.text("client_name")?,
        client_uri: m.web_uri("client_uri")?,
        logo_uri: m.web_uri("logo_uri")?,
        tos_uri: m.web_uri("tos_uri")?,
        policy_uri: m.web_uri("policy_uri")?,
        contacts: m
            .strings("contacts", MAX_CONTACTS)?
            .into_iter()
            .map(|c| shown_text("contacts", c))
            .collect::<Result<_, _>>()?,
        software_id: m.text("software_id")?,
        software_version: m.text("software_version")?,
        jwks,
        jwks_uri,
        post_logout_redirect_uris,
        require_pushed_authorization_requests: m
            .boolean("require_pushed_authorization_requests")?,
        dpop_bound_access_tokens: m.boolean("dpop_bound_access_tokens")?,
    })
}

impl Metadata {
    /// The metadata as registered, a JSON object: what is stored, and given back in the
    /// answers of RFC 7591 §3.2.1 and RFC 7592 §3.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let uris =
            |list: &[RedirectUri]| Value::from(list.iter().map(|u| u.as_str()).collect::<Vec<_>>());
        out.insert("redirect_uris".into(), uris(&self.redirect_uris));
        out.insert(
            "token_endpoint_auth_method".into(),
            self.auth_method.as_str().into(),
        );
        out.insert(
            "grant_types".into(),
            self.grant_types.iter().map(|g| g.as_str()).collect(),
        );
        out.insert("response_types".into(), self.response_types.clone().into());
        let optional = [
            ("scope", self.scope.as_ref().map(ToString::to_string)),
            ("client_name", self.client_name.clone()),
            ("client_uri", self.client_uri.clone()),
            ("logo_uri", self.logo_uri.clone()),
            ("tos_uri", self.tos_uri.clone()),
            ("policy_uri", self.policy_uri.clone()),
            ("software_id", self.software_id.clone()),
            ("software_version", self.software_version.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                out.insert(name.into(), value.into());
            }
        }
        if !self.contacts.is_empty() {
            out.insert("contacts".into(), self.contacts.clone().into());
        }
        if let Some(jwks) = &self.jwks {
            // Invariant: a JWK Set that was parsed from JSON serializes.
            out.insert(
                "jwks".into(),
                serde_json::to_value(jwks).unwrap_or(Value::Null),
            );
        }
        if let Some(uri) = &self.jwks_uri {
            out.insert("jwks_uri".into(), uri.as_str().into());
        }
        if !self.post_logout_redirect_uris.is_empty() {
            out.insert(
                "post_logout_redirect_uris".into(),
                uris(&self.post_logout_redirect_uris),
            );
        }
        if self.require_pushed_authorization_requests {
            out.insert("require_pushed_authorization_requests".into(), true.into());
        }
        if self.dpop_bound_access_tokens {
            out.insert("dpop_bound_access_tokens".into(), true.into());
        }
        out
    }
}

/// `grant_types` and `response_types`, consistent with each other (RFC 7591 §2.1).
fn grants(
    m: &Members<'_>,
    rules: &Rules<'_>,
    public: bool,
) -> Result<(Vec<GrantType>, Vec<&'static str>), OAuthError> {
    let mut grant_types = Vec::new();
    match m.0.get("grant_types") {
        None | Some(Value::Null) => grant_types.push(GrantType::AuthorizationCode),
        Some(_) => {
            for name in m.strings("grant_types", 8)? {
                let grant = GrantType::parse(name).ok_or_else(|| {
                    invalid(
                        "grant_types: this server supports authorization_code, refresh_token \
                         and client_credentials",
                    )
                })?;
                if !grant_types.contains(&grant) {
                    grant_types.push(grant);
                }
            }
            if grant_types.is_empty() {
                return Err(invalid("grant_types: name at least one"));
            }
        }
    }
    let enabled = |g: &GrantType| match g {
        GrantType::AuthorizationCode => rules.grants.authorization_code,
        GrantType::RefreshToken => rules.grants.refresh_token,
        GrantType::ClientCredentials => rules.grants.client_credentials,
        GrantType::DeviceCode => rules.grants.device_code,
        // Delegation is granted by an operator (`doorward clients`, the config), who also says
        // for which resources: a client that registered itself gets none.
        GrantType::TokenExchange => false,
    };
    if let Some(off) = grant_types.iter().find(|g| !enabled(g)) {
        return Err(invalid(format!(
            "grant_types: {} is not enabled on this server",
            off.as_str()
        )));
    }
    let code = grant_types.contains(&GrantType::AuthorizationCode);
    let with_user = code || grant_types.contains(&GrantType::DeviceCode);
    if grant_types.contains(&GrantType::RefreshToken) && !with_user {
        return Err(invalid(
            "grant_types: refresh_token is issued with authorization_code or the device grant only",
        ));
    }
    if public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid(
            "grant_types: client_credentials is for confidential clients only \
             (RFC 6749 section 4.4)",
        ));
    }
    let response_types = match m.0.get("response_types") {
        None | Some(Value::Null) if code => vec!["code"],
        None | Some(Value::Null) => vec![],
        Some(_) => {
            let mut types = Vec::new();
            for name in m.strings("response_types", 4)? {
                if name != "code" {
                    return Err(invalid("response_types: this server supports code only"));
                }
                if types.is_empty() {
                    types.push("code");
                }
            }
            types
        }
    };
    if code != response_types.contains(&"code") {
        return Err(invalid(
            "grant_types and response_types disagree: authorization_code goes with the \
             response type code (RFC 7591 section 2.1)",
        ));
    }
    Ok((grant_types, response_types))
}

/// `redirect_uris`, each checked (see the module's rules).
fn redirect_uris(
    m: &Members<'_>,
    rules: &Rules<'_>,
    public: bool,
) -> Result<Vec<RedirectUri>, OAuthError> {
    let mut uris: Vec<RedirectUri> = Vec::new();
    let values = m
        .strings("redirect_uris", MAX_REDIRECT_URIS)
        .map_err(|e| OAuthError {
            code: ErrorCode::InvalidRedirectUri,
            ..e
        })?;
    for value in values {
        let uri = checked_uri(value)
            .and_then(|s| RedirectUri::parse(s).map_err(|_| ()))
            .map_err(|()| {
                invalid_uri(
                    "redirect_uris: each must be an absolute URI without a fragment, \
                     whitespace or a javascript:, data:, vbscript: or file: scheme",
                )
            })?;
        check_registration(&uri, public).map_err(|e| {
            invalid_uri(match e {
                crate::redirect::RegistrationError::PrivateSchemeForConfidential(_) => {
                    "redirect_uris: a private-use scheme is for public clients only \
                     (RFC 8252 section 7.1)"
                }
                crate::redirect::RegistrationError::SchemeNotReverseDomain(_) => {
                    "redirect_uris: a private-use scheme must be in reverse-domain form, like \
                     com.example.app (RFC 8252 section 7.1)"
                }
                crate::redirect::RegistrationError::LocalhostForPublic => {
                    "redirect_uris: a public client uses http://127.0.0.1 or http://[::1], not \
                     http://localhost (RFC 8252 section 8.3)"
                }
            })
        })?;
        if let Some(policy) = rules.open {
            open_policy(&uri, policy)?;
        }
        if !uris.iter().any(|u| u.as_str() == uri.as_str()) {
            uris.push(uri);
        }
    }
    Ok(uris)
}

/// Open mode's redirect rules: the scheme among `allowed_redirect_schemes`, and the host of an
/// http(s) URI among `allowed_redirect_hosts` (each list: any when empty).
fn open_policy(uri: &RedirectUri, policy: &RegistrationPolicy) -> Result<(), OAuthError> {
    let Ok(url) = url::Url::parse(uri.as_str()) else {
        return Err(invalid_uri("redirect_uris: not an absolute URI"));
    };
    let scheme = url.scheme();
    if !policy.allowed_redirect_schemes.is_empty()
        && !policy
            .allowed_redirect_schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(invalid_uri(
            "redirect_uris: this scheme is not allowed for open registration here",
        ));
    }
    if matches!(scheme, "http" | "https") && !policy.allowed_redirect_hosts.is_empty() {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        if !policy.allowed_redirect_hosts.contains(&host) {
            return Err(invalid_uri(
                "redirect_uris: this host is not allowed for open registration here",
            ));
        }
    }
    Ok(())
}

/// A URI's text within [`MAX_URI`] bytes, of the characters RFC 3986 §2 allows in a URI
/// (so no `<`, `>`, `"`, `\`, `{`, `}`, `|`, `^`, backquote, space or control character).
fn checked_uri(value: &str) -> Result<&str, ()> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b));
    (value.len() <= MAX_URI && printable)
        .then_some(value)
        .ok_or(())
}

/// A message made printable for `error_description` (RFC 6749 §5.2: printable ASCII without
/// `"` and `\`).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
}

/// Whether `c` may appear in text a page shows: no control character, no bidirectional
/// override, isolate or mark, no invisible formatting (zero-width, word joiner, BOM, tags),
/// no line or paragraph separator.
fn shown_char(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
            | '\u{3164}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}'))
}

fn shown_text(name: &str, value: &str) -> Result<String, OAuthError> {
    if value.trim().is_empty() || value.chars().count() > MAX_TEXT {
        return Err(invalid(format!(
            "{name}: 1 to {MAX_TEXT} characters, not only spaces"
        )));
    }
    if !value.chars().all(shown_char) {
        return Err(invalid(format!(
            "{name}: control, bidirectional-override and invisible characters are refused"
        )));
    }
    Ok(value.to_owned())
}

/// The members of the body, read by type.
struct Members<'a>(&'a Map<String, Value>);

impl Members<'_> {
    /// A string member; `None` when absent or null.
    fn string(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{name}: must be a string"))),
        }
    }

    /// A boolean member; `false` when absent or null.
    fn boolean(&self, name: &str) -> Result<bool, OAuthError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(format!("{name}: must be true or false"))),
        }
    }

    /// An array of at most `max` strings; empty when absent or null.
    fn strings(&self, name: &str, max: usize) -> Result<Vec<&str>, OAuthError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() <= max => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .ok_or_else(|| invalid(format!("{name}: must be an array of strings")))
                })
                .collect(),
            Some(Value::Array(_)) => Err(invalid(format!("{name}: at most {max} entries"))),
            Some(_) => Err(invalid(format!("{name}: must be an array of strings"))),
        }
    }

    /// Text a page may show ([`shown_text`]).
    fn text(&self, name: &str) -> Result<Option<String>, OAuthError> {
        self.string(name)?
            .map(|value| shown_text(name, value))
            .transpose()
    }

    /// A web page's URL a page may link to: https, or http on a loopback host.
    fn web_uri(&self, name: &str) -> Result<Option<String>, OAuthError> {
        let Some(value) = self.string(name)? else {
            return Ok(None);
        };
        let refused = || {
            invalid(format!(
                "{name}: an https URL (http only on a loopback host) of printable ASCII, \
                 without user information, at most {MAX_URI} bytes"
            ))
        };
        let text = checked_uri(value).map_err(|()| refused())?;
        let url = url::Url::parse(text).map_err(|_| refused())?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !scheme_ok
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(refused());
        }
        Ok(Some(value.to_owned()))
    }
}

/// A `jwks_uri`: an absolute https URL (http only when allowed, for tests) with a host, no
/// user info and no fragment, at most 2048 bytes. What it may reach is the fetcher's SSRF
/// policy, checked when the keys are fetched.
fn jwks_uri(text: &str, allow_http: bool) -> Result<url::Url, OAuthError> {
    let bad =
        || invalid("jwks_uri: an absolute https URL with a host, no user info and no fragment");
    if text.len() > 2048 {
        return Err(bad());
    }
    let url = url::Url::parse(text).map_err(|_| bad())?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(url)
}
