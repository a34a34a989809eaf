//! Callbacks: the query the provider sends the browser back with (RFC 6749 §4.1.2).

use crate::Callback;

use super::support::*;

#[test]
fn callback_from_query() {
    let callback = Callback::from_query(
        "code=SplxlOBeZQQYbYS6WxSbIA&state=xyz%2Fabc&iss=https%3A%2F%2Fissuer.example&unknown=1",
    );
    assert_eq!(callback.code.as_deref(), Some("SplxlOBeZQQYbYS6WxSbIA"));
    assert_eq!(callback.state.as_deref(), Some("xyz/abc"));
    assert_eq!(callback.iss.as_deref(), Some(ISSUER));
    assert_eq!(callback.error, None);
    assert_eq!(callback.error_description, None);
    assert_eq!(callback.error_uri, None);

    let callback = Callback::from_query(
        "?error=access_denied&error_description=The+user+said+no&error_uri=https%3A%2F%2Fe.example%2Fdoc&state=s",
    );
    assert_eq!(callback.code, None);
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
    assert_eq!(
        callback.error_description.as_deref(),
        Some("The user said no")
    );
    assert_eq!(callback.error_uri.as_deref(), Some("https://e.example/doc"));
    assert_eq!(callback.state.as_deref(), Some("s"));
}

#[test]
fn callback_first_value_wins() {
    let callback = Callback::from_query(
        "code=first&state=one&code=second&state=two&error=e1&error=e2&error_description=d1&error_description=d2&iss=i1&iss=i2",
    );
    assert_eq!(callback.code.as_deref(), Some("first"));
    assert_eq!(callback.state.as_deref(), Some("one"));
    assert_eq!(callback.error.as_deref(), Some("e1"));
    assert_eq!(callback.error_description.as_deref(), Some("d1"));
    assert_eq!(callback.iss.as_deref(), Some("i1"));
}

#[test]
fn callback_empty_query() {
    for query in ["", "?", "foo=bar"] {
        let callback = Callback::from_query(query);
        assert!(
            callback.code.is_none()
                && callback.state.is_none()
                && callback.error.is_none()
                && callback.error_description.is_none()
                && callback.error_uri.is_none()
                && callback.iss.is_none(),
            "{query:?}: {callback:?}"
        );
    }
}
