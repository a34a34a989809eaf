//! Reading request bodies: a size limit, and the two encodings OAuth uses.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};

/// The largest body any endpoint reads. Token requests are a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Unreadable,
    /// The Content-Type is neither form nor JSON (or is missing).
    UnsupportedType,
    /// Malformed JSON, not an object, or an OAuth parameter that is not a string.
    Malformed(String),
    /// A parameter appears twice (RFC 6749 §3.1, §3.2).
    Repeated(String),
}

/// Reads at most [`MAX_BODY`] bytes.
pub async fn read(body: Body) -> Result<axum::body::Bytes, BodyError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// The media type of the request, lower case, without parameters (`; charset=UTF-8`).
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// The one parameter of the token endpoint that may repeat: `resource` (RFC 8707 §2).
pub const RESOURCE: &str = "resource";
/// Whether the request's body is declared `application/json` (RFC 7591 §3.1).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).as_deref() == Some("application/json")
}

/// Reads a body sent as `application/x-www-form-urlencoded` or `application/json` into
/// parameters, and the values of [`RESOURCE`] apart (in JSON a string or an array of strings).
/// Parameters without a value are left out (RFC 6749 §3.1); JSON `null` likewise.
pub async fn parameters(
    headers: &HeaderMap,
    body: Body,
) -> Result<(HashMap<String, String>, Vec<String>), BodyError> {
    let media = media_type(headers);
    let bytes = read(body).await?;
    match media.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let mut resources = Vec::new();
            let params = form_pairs(&bytes, |value| resources.push(value))?;
            Ok((params, resources))
        }
        Some("application/json") => json_parameters(&bytes),
        _ => Err(BodyError::UnsupportedType),
    }
}

/// Form parameters, refusing repeated names.
pub fn form_parameters(bytes: &[u8]) -> Result<HashMap<String, String>, BodyError> {
    let mut out = HashMap::new();
    for (name, value) in form_urlencoded::parse(bytes) {
        if value.is_empty() {
            continue;
        }
        if out.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(BodyError::Repeated(name.into_owned()));
        }
    }
    Ok(out)
}

/// Form parameters, refusing repeated names, but giving every [`RESOURCE`] to `resource`.
fn form_pairs(
    bytes: &[u8],
    mut resource: impl FnMut(String),
) -> Result<HashMap<String, String>, BodyError> {
    let mut out = HashMap::new();
    for (name, value) in form_urlencoded::parse(bytes) {
        if value.is_empty() {
            continue;
        }
        if name == RESOURCE {
            resource(value.into_owned());
        } else if out.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(BodyError::Repeated(name.into_owned()));
        }
    }
    Ok(out)
}

/// The parameters the OAuth endpoints read: in JSON they must be strings. Other members are
/// extensions and are ignored whatever their type.
const OAUTH_PARAMETERS: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
];

fn json_parameters(bytes: &[u8]) -> Result<(HashMap<String, String>, Vec<String>), BodyError> {
    let members: JsonMembers = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() && e.to_string().starts_with("repeated:") {
            let name = e.to_string()["repeated:".len()..]
                .split(" at line")
                .next()
                .unwrap_or("")
                .to_owned();
            BodyError::Repeated(name)
        } else {
            BodyError::Malformed("the body is not a valid JSON object".into())
        }
    })?;
    let mut out = HashMap::new();
    let mut resources = Vec::new();
    for (name, value) in members.0 {
        if name == RESOURCE {
            resources = json_resources(value)?;
            continue;
        }
        match value {
            serde_json::Value::String(s) if s.is_empty() => {}
            serde_json::Value::String(s) => {
                out.insert(name, s);
            }
            serde_json::Value::Null => {}
            _ if OAUTH_PARAMETERS.contains(&name.as_str()) => {
                return Err(BodyError::Malformed(format!(
                    "the parameter `{name}` must be a string"
                )))
            }
            _ => {}
        }
    }
    Ok((out, resources))
}

/// `resource` in JSON: a string, or an array of strings for several (RFC 8707 §2 repeats it in
/// a form).
fn json_resources(value: serde_json::Value) -> Result<Vec<String>, BodyError> {
    let malformed =
        || BodyError::Malformed("`resource` must be a string or an array of strings".into());
    match value {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::String(s) if s.is_empty() => Ok(Vec::new()),
        serde_json::Value::String(s) => Ok(vec![s]),
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(malformed()),
            })
            .collect(),
        _ => Err(malformed()),
    }
}

/// The members of a JSON object, refusing a name that appears twice (which `serde_json::Map`
/// would silently resolve to the last value).
struct JsonMembers(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonMembers, A::Error> {
                let mut members: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if members.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!("repeated:{name}")));
                    }
                    members.push((name, value));
                }
                Ok(JsonMembers(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
