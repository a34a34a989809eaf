//! The one rule for Rust tests that need an outside resource named by a `DOORWARD_TEST_*`
//! variable (a PostgreSQL URL, the node binary, the Eternaltwin server): without it a test is
//! skipped on a developer's machine, but in CI (`CI` set and not empty, as `.ci/run` sets it) a
//! missing variable fails the test, so that a run that tested nothing cannot pass. Included with
//! `#[path]` by each crate whose tests need one (`scripts/test.sh` sets them all).

use std::ffi::OsString;

/// The value of `name`, or `None` (with a message) when it is unset or empty outside CI.
///
/// # Panics
/// In CI, when the variable is unset or empty.
pub fn required_env(name: &str) -> Option<OsString> {
    match decide(name, std::env::var_os(name), std::env::var_os("CI")) {
        Ok(value) => value,
        Err(message) => panic!("{message}"),
    }
}

/// [`required_env`] without the environment: what to do with `value` of `name` when `CI` is `ci`.
fn decide(
    name: &str,
    value: Option<OsString>,
    ci: Option<OsString>,
) -> Result<Option<OsString>, String> {
    let in_ci = ci.is_some_and(|ci| !ci.is_empty());
    match value {
        Some(value) if !value.is_empty() => Ok(Some(value)),
        _ if in_ci => Err(format!(
            "{name} is not set and CI is: this test would have tested nothing \
             (bash scripts/test.sh sets it)"
        )),
        _ => {
            eprintln!(
                "skipped: {name} is not set (bash scripts/test.sh sets it; in CI this fails)"
            );
            Ok(None)
        }
    }
}

#[test]
fn a_missing_test_variable_fails_in_ci_only() {
    let os = |s: &str| Some(OsString::from(s));
    let name = "DOORWARD_TEST_X";
    assert_eq!(decide(name, os("v"), os("true")), Ok(os("v")));
    assert_eq!(decide(name, os("v"), None), Ok(os("v")));
    assert_eq!(decide(name, None, None), Ok(None));
    assert_eq!(decide(name, os(""), None), Ok(None));
    assert_eq!(decide(name, None, os("")), Ok(None), "an empty CI is no CI");
    for ci in ["true", "1", "yes"] {
        let refused = decide(name, None, os(ci)).unwrap_err();
        assert!(refused.contains(name), "{refused}");
        assert!(
            decide(name, os(""), os(ci)).is_err(),
            "an empty value is missing"
        );
    }
}
