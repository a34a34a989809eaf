//! The server's cookies: the session (`dw_session`), the CSRF cookie (`dw_csrf`) and a sign-in
//! waiting for its second factor (`dw_pending`). Over https they are named
//! `__Host-dw_session`, `__Host-dw_csrf` and `__Host-dw_pending`: browsers accept a `__Host-`
//! cookie only from this very host, with `Secure` and `Path=/`, so a sibling subdomain cannot
//! plant one.

use axum::http::{header, HeaderMap, HeaderValue};

pub fn session_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dw_session"
    } else {
        "dw_session"
    }
}

/// A sign-in waiting for its second factor (`doorward_core::second_factor`), five minutes.
pub fn pending_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dw_pending"
    } else {
        "dw_pending"
    }
}

pub fn csrf_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dw_csrf"
    } else {
        "dw_csrf"
    }
}

/// The value of cookie `name` in the request, if any.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax` (the browser still sends the session on the
/// top-level navigation from a client to `/oauth/authorize`), `Secure` over https.
pub fn set(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    // Invariant: names are constants and values are base64url, both valid header bytes.
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", 0, secure)
}
