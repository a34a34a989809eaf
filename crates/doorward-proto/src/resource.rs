//! Resource indicators (RFC 8707): the URI of a protected resource a client asks a token for,
//! which becomes the token's audience.

use std::fmt;

/// A resource indicator (RFC 8707 §2): an absolute URI without a fragment. It keeps the
/// original string, compared exactly, as the `aud` it becomes is compared by the resource
/// (RFC 9068 §4) and as RFC 9728 §3.3 asks a resource's metadata to name it identically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceUri(String);

/// Why a `resource` value is not a resource indicator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceUriError {
    #[error("the resource is not an absolute URI (RFC 8707 section 2)")]
    NotAbsolute,
    #[error("the resource has a fragment (RFC 8707 section 2)")]
    HasFragment,
    #[error("the resource contains whitespace or a control character")]
    ForbiddenCharacter,
    #[error("the resource is longer than {} characters", ResourceUri::MAX_LEN)]
    TooLong,
}

impl ResourceUri {
    /// The longest resource indicator accepted (it is stored with codes and tokens).
    pub const MAX_LEN: usize = 512;

    /// Parses an absolute URI without a fragment (RFC 8707 §2: "MUST be an absolute URI, as
    /// specified by Section 4.3 of RFC 3986 ... MUST NOT include a fragment component").
    pub fn parse(value: &str) -> Result<Self, ResourceUriError> {
        if value.len() > Self::MAX_LEN {
            return Err(ResourceUriError::TooLong);
        }
        // The URL parser drops tabs and newlines silently; the original string is what is
        // compared and signed, so it must not hide any.
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ResourceUriError::ForbiddenCharacter);
        }
        if value.contains('#') {
            return Err(ResourceUriError::HasFragment);
        }
        let url = url::Url::parse(value).map_err(|_| ResourceUriError::NotAbsolute)?;
        if url.fragment().is_some() {
            return Err(ResourceUriError::HasFragment);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uris_without_a_fragment_are_resources() {
        for ok in [
            "https://api.example.com/",
            "https://api.example.com",
            "https://api.example.com/mcp?x=1",
            "urn:example:resource",
        ] {
            assert_eq!(ResourceUri::parse(ok).map(|r| r.0), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn relative_fragmented_and_odd_values_are_refused() {
        use ResourceUriError::*;
        for (bad, why) in [
            ("/api", NotAbsolute),
            ("api.example.com", NotAbsolute),
            ("", NotAbsolute),
            ("https://api.example.com/#top", HasFragment),
            ("https://api.example.com/#", HasFragment),
            ("https://api.example.com/ x", ForbiddenCharacter),
            ("https://api.example.com/\nx", ForbiddenCharacter),
        ] {
            assert_eq!(ResourceUri::parse(bad), Err(why), "{bad:?}");
        }
        let long = format!("https://a.example/{}", "x".repeat(ResourceUri::MAX_LEN));
        assert_eq!(ResourceUri::parse(&long), Err(TooLong));
    }
}
