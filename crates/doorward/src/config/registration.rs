//! `[registration]`: dynamic client registration (RFC 7591, RFC 7592), off by default.
//!
//! ```toml
//! [registration]
//! mode = "off"                           # or "token" (an initial access token from
//!                                        # `doorward clients registration-token`), or "open"
//!                                        # (anyone, public clients only, under the limits below)
//! allowed_redirect_schemes = ["https", "http", "com.example.app"]  # open mode; empty: any
//! allowed_redirect_hosts = ["127.0.0.1", "app.example"]            # open mode; empty: any
//! max_clients = 1000                     # registered clients kept at once (both modes)
//! per_address_per_hour = 10              # open mode: registrations per address (IPv6: /64)
//! ```

use anyhow::bail;
use doorward_core::config::{RegistrationMode, RegistrationPolicy};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistration {
    mode: Option<String>,
    #[serde(default)]
    allowed_redirect_schemes: Vec<String>,
    #[serde(default)]
    allowed_redirect_hosts: Vec<String>,
    max_clients: Option<u64>,
    per_address_per_hour: Option<u32>,
}

/// The checked policy: a known mode, schemes and hosts that are names (lower-cased), and
/// limits of at least 1.
pub(super) fn policy(raw: RawRegistration) -> anyhow::Result<RegistrationPolicy> {
    let mode = match raw.mode.as_deref() {
        None | Some("off") => RegistrationMode::Off,
        Some("token") => RegistrationMode::Token,
        Some("open") => RegistrationMode::Open,
        Some(other) => bail!("key `registration.mode`: `{other}` is not off, token or open"),
    };
    let name = |s: &str, extra: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b"-.".contains(&b) || extra.as_bytes().contains(&b)
            })
    };
    for scheme in &raw.allowed_redirect_schemes {
        if !name(scheme, "+") {
            bail!("key `registration.allowed_redirect_schemes`: `{scheme}` is not a URI scheme");
        }
    }
    for host in &raw.allowed_redirect_hosts {
        if !name(host, "[]:") {
            bail!("key `registration.allowed_redirect_hosts`: `{host}` is not a host name or IP literal");
        }
    }
    if raw.max_clients == Some(0) {
        bail!("key `registration.max_clients`: at least 1 (or leave it out: no cap)");
    }
    if raw.per_address_per_hour == Some(0) {
        bail!("key `registration.per_address_per_hour`: at least 1 (or leave it out: no limit)");
    }
    Ok(RegistrationPolicy {
        mode,
        allowed_redirect_schemes: raw
            .allowed_redirect_schemes
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        allowed_redirect_hosts: raw
            .allowed_redirect_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        max_clients: raw.max_clients,
        per_address_per_hour: raw.per_address_per_hour,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> anyhow::Result<RegistrationPolicy> {
        policy(toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn modes_and_limits() {
        assert_eq!(parse("").unwrap().mode, RegistrationMode::Off);
        let open = parse(
            "mode = \"open\"\nallowed_redirect_hosts = [\"127.0.0.1\", \"App.Example\"]\n\
             max_clients = 5\nper_address_per_hour = 2",
        )
        .unwrap();
        assert_eq!(open.mode, RegistrationMode::Open);
        assert_eq!(open.allowed_redirect_hosts, ["127.0.0.1", "app.example"]);
        assert_eq!(
            (open.max_clients, open.per_address_per_hour),
            (Some(5), Some(2))
        );
        assert!(parse("mode = \"yes\"").is_err());
        assert!(parse("max_clients = 0").is_err());
        assert!(parse("allowed_redirect_hosts = [\"a b\"]").is_err());
        assert!(parse("allowed_redirect_schemes = [\"javascript:\"]").is_err());
    }
}
