use std::fmt;

/// The `state` parameter: opaque to the server and echoed back byte for byte (RFC 6749 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State(String);

impl State {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute redirect URI without a fragment (RFC 6749 §3.1.2). It keeps the original string:
/// redirect URIs are compared as exact strings (RFC 6749 §3.1.2.3, RFC 9700 §4.1.1), never after
/// normalisation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectUriError {
    #[error("the redirect URI is not an absolute URI: {0}")]
    NotAbsolute(url::ParseError),
    #[error("the redirect URI has a fragment (RFC 6749 section 3.1.2)")]
    HasFragment,
    #[error("the redirect URI scheme `{0}` is not allowed")]
    ForbiddenScheme(String),
    #[error("the redirect URI contains whitespace or a control character")]
    ForbiddenCharacter,
}

impl RedirectUri {
    /// Parses an absolute URI. `javascript:`, `data:` and `vbscript:` are refused because a
    /// browser would run them instead of navigating (RFC 9700 §4.1).
    pub fn parse(value: &str) -> Result<Self, RedirectUriError> {
        // The URL parser silently drops tabs and newlines; the original string, which is what
        // gets compared and sent back in Location, must not hide any.
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedirectUriError::ForbiddenCharacter);
        }
        let url = url::Url::parse(value).map_err(RedirectUriError::NotAbsolute)?;
        if url.fragment().is_some() || value.contains('#') {
            return Err(RedirectUriError::HasFragment);
        }
        match url.scheme() {
            "javascript" | "data" | "vbscript" | "file" => {
                Err(RedirectUriError::ForbiddenScheme(url.scheme().to_owned()))
            }
            _ => Ok(Self(value.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This URI with `params` appended to its query, keeping any query it already has
    /// (RFC 6749 §3.1.2: "MUST retain the query component").
    pub fn with_params<'a>(&self, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            serializer.append_pair(name, value);
        }
        let query = serializer.finish();
        let mut out = self.0.clone();
        if !query.is_empty() {
            match out.find('?') {
                Some(i) if i + 1 == out.len() => {}
                Some(_) => out.push('&'),
                None => out.push('?'),
            }
            out.push_str(&query);
        }
        out
    }
}

impl RedirectUri {
    /// This URI with `params` as its fragment, for the implicit grant's answers (RFC 6749
    /// §4.2.2). Registered redirect URIs never have a fragment (§3.1.2), so there is none to
    /// keep.
    pub fn with_fragment<'a>(
        &self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            serializer.append_pair(name, value);
        }
        format!("{}#{}", self.0, serializer.finish())
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_original_string() {
        let uri = RedirectUri::parse("http://localhost:8000").unwrap();
        assert_eq!(uri.as_str(), "http://localhost:8000");
    }

    #[test]
    fn refuses_fragments_relative_and_script_uris() {
        assert!(matches!(
            RedirectUri::parse("http://a/cb#x"),
            Err(RedirectUriError::HasFragment)
        ));
        assert!(matches!(
            RedirectUri::parse("/cb"),
            Err(RedirectUriError::NotAbsolute(_))
        ));
        assert!(matches!(
            RedirectUri::parse("http://a/cb\nhttp://evil/"),
            Err(RedirectUriError::ForbiddenCharacter)
        ));
        assert!(matches!(
            RedirectUri::parse("http://a/c\tb"),
            Err(RedirectUriError::ForbiddenCharacter)
        ));
        assert!(matches!(
            RedirectUri::parse("javascript:alert(1)"),
            Err(RedirectUriError::ForbiddenScheme(_))
        ));
    }

    #[test]
    fn appends_params_keeping_the_query() {
        let plain = RedirectUri::parse("http://a/cb").unwrap();
        assert_eq!(
            plain.with_params([("code", "c"), ("state", "a b&c=d/é")]),
            "http://a/cb?code=c&state=a+b%26c%3Dd%2F%C3%A9"
        );
        let with_query = RedirectUri::parse("http://a/cb?x=1").unwrap();
        assert_eq!(
            with_query.with_params([("code", "c")]),
            "http://a/cb?x=1&code=c"
        );
        let empty_query = RedirectUri::parse("http://a/cb?").unwrap();
        assert_eq!(
            empty_query.with_params([("code", "c")]),
            "http://a/cb?code=c"
        );
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte), as RFC 6749
/// §2.3.1 encodes client credentials inside HTTP Basic. `None` when a `%` escape is malformed
/// or the bytes are not UTF-8.
pub fn form_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod form_decode_tests {
    use super::form_decode;

    #[test]
    fn decodes_form_encoding() {
        assert_eq!(
            form_decode("python_client%40clients").as_deref(),
            Some("python_client@clients")
        );
        assert_eq!(form_decode("a+b").as_deref(), Some("a b"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("%+1"), None);
        assert_eq!(form_decode("%ff"), None);
    }
}
