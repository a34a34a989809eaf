//! The configuration file's checks: every refusal names its key.

use super::*;

fn load(text: &str) -> anyhow::Result<Config> {
    let raw = parse(text).map_err(|e| anyhow!(e))?;
    check(
        raw,
        Path::new("."),
        Overrides {
            database: Some("sqlite::memory:".into()),
            ..Overrides::default()
        },
    )
}

#[test]
fn reads_both_eternaltwin_client_forms() {
    let config = load(
        r#"
        [clients.python_client]
        display_name = "Python Client"
        app_uri = "http://localhost:8000"
        callback_uri = "http://localhost:8000/oauth/callback"
        secret = "dev_secret"

        [seed.app.other]
        display_name = "Other"
        uri = "http://localhost:8001"
        oauth_callback = "http://localhost:8001/cb"
        secret = "other_secret"

        [seed.user.alice]
        username = "alice"
        password = "pw"
        "#,
    )
    .unwrap();
    let keys: Vec<_> = config.clients.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["python_client@clients", "other@clients"]);
    assert_eq!(config.users[0].display_name, "alice");
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.external_uri, DEFAULT_EXTERNAL_URI);
    assert_eq!(config.lifetimes.access_token, 7200);
    assert_eq!(config.limits, Limits::default());
}

#[test]
fn reads_the_connection_limits() {
    let config = load(
        "[server]\nheader_timeout = 2\nmax_header_bytes = 16384\nbody_timeout = 5\nmax_connections = 50\n",
    )
    .unwrap();
    assert_eq!(
        config.limits,
        Limits {
            header_timeout: Duration::from_secs(2),
            max_header_bytes: 16384,
            body_timeout: Duration::from_secs(5),
            max_connections: 50,
        }
    );
}

#[test]
fn unknown_keys_name_the_key() {
    let err = load("[clients.a]\ndisplay_name = \"A\"\napp_uri = \"http://a\"\ncallback_uri = \"http://a/cb\"\nsecret = \"a_secret_1\"\nsecrt = \"s\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("clients.a"), "{err}");
    assert!(err.contains("secrt"), "{err}");
    assert!(err.contains("line 6"), "{err}");
}

#[test]
fn bad_values_name_the_key_and_reason() {
    let err = load("[clients.a]\ndisplay_name = \"A\"\napp_uri = \"http://a\"\ncallback_uri = \"/cb\"\nsecret = \"a_secret_1\"\n")
        .unwrap_err();
    assert!(format!("{err:#}").contains("clients.a"), "{err:#}");
    let err = load("[server]\nexternal_uri = \"http://h/path\"\n").unwrap_err();
    assert!(err.to_string().contains("server.external_uri"), "{err}");
    let err = load("[tokens]\ncode = 600\n").unwrap_err();
    assert!(err.to_string().contains("tokens.code"), "{err}");
    let err = load("[server]\nlisten = 5\n").unwrap_err();
    assert!(err.to_string().contains("server.listen"), "{err}");
    let err = load("[server]\nmax_header_bytes = 100\n").unwrap_err();
    assert!(err.to_string().contains("server.max_header_bytes"), "{err}");
    let err = load("[server]\nheader_timeout = 0\n").unwrap_err();
    assert!(err.to_string().contains("server.header_timeout"), "{err}");
}

#[test]
fn an_app_uri_is_an_http_or_https_url() {
    let client = |uri: &str| {
        format!("[clients.a]\ndisplay_name = \"A\"\napp_uri = \"{uri}\"\ncallback_uri = \"http://a/cb\"\nsecret = \"a_secret_1\"\n")
    };
    for bad in [
        "javascript:alert(1)",
        "data:text/html,x",
        "x",
        "/relative",
        "http://",
    ] {
        let err = load(&client(bad)).unwrap_err().to_string();
        assert!(err.contains("clients.a.app_uri"), "{bad}: {err}");
    }
    let seed = "[seed.app.b]\ndisplay_name = \"B\"\nuri = \"javascript:x\"\noauth_callback = \"http://b/cb\"\nsecret = \"a_secret_1\"\n";
    let err = load(seed).unwrap_err().to_string();
    assert!(err.contains("seed.app.b.uri"), "{err}");
    for good in ["http://localhost:8000", "https://app.example/home?x=1"] {
        load(&client(good)).unwrap();
    }
}

#[test]
fn a_grant_family_has_an_absolute_lifetime() {
    let config = load("").unwrap();
    assert_eq!(config.lifetimes.refresh_family, 90 * 24 * 3600);
    let config = load("[tokens]\nrefresh_family = 86400\n").unwrap();
    assert_eq!(config.lifetimes.refresh_family, 86400);
    let err = load("[tokens]\nrefresh_family = 0\n").unwrap_err();
    assert!(err.to_string().contains("tokens.refresh_family"), "{err}");
}

#[test]
fn reads_oidc_options_and_refuses_typos_in_them() {
    let config = load(
        r#"
        [keys]
        algorithms = ["EdDSA", "RS256"]
        publish_delay = 60

        [clients.rp]
        display_name = "RP"
        app_uri = "http://localhost:8000"
        callback_uri = "http://localhost:8000/cb"
        secret = "rp_secret_1"
        scopes = ["openid", "email"]
        post_logout_redirect_uris = ["http://localhost:8000/bye"]
        token_endpoint_auth_method = "client_secret_post"
        access_token_format = "jwt"
        id_token_signed_response_alg = "EdDSA"

        [seed.user.a]
        username = "a"
        password = "p"
        email = "a@example.com"
        email_verified = true
        "#,
    )
    .unwrap();
    assert_eq!(
        config.keys.algorithms,
        [SigningAlg::EdDsa, SigningAlg::Rs256]
    );
    assert_eq!(config.keys.publish_delay, 60);
    let policy = &config.clients[0].policy;
    assert_eq!(policy.scopes.as_ref().unwrap().to_string(), "email openid");
    assert_eq!(policy.auth_method, Some(AuthMethod::ClientSecretPost));
    assert_eq!(policy.access_token_format, AccessTokenFormat::Jwt);
    assert_eq!(policy.id_token_alg, Some(SigningAlg::EdDsa));
    assert_eq!(config.users[0].email.as_deref(), Some("a@example.com"));
    let client = "[clients.a]\ndisplay_name = \"A\"\napp_uri = \"http://a\"\ncallback_uri = \"http://a/cb\"\nsecret = \"a_secret_1\"\n";
    let err = load(&format!("{client}scope = [\"openid\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("scope"), "{err}");
    let err = load(&format!(
        "{client}id_token_signed_response_alg = \"HS256\"\n"
    ))
    .unwrap_err();
    assert!(format!("{err:#}").contains("HS256"), "{err:#}");
    let err = load("[keys]\nalgorithms = [\"none\"]\n").unwrap_err();
    assert!(format!("{err:#}").contains("keys.algorithms"), "{err:#}");
}

#[test]
fn a_client_declared_twice_is_an_error() {
    let client = "display_name = \"A\"\napp_uri = \"http://a\"\n";
    let text = format!(
        "[clients.a]\n{client}callback_uri = \"http://a/cb\"\nsecret = \"a_secret_1\"\n[seed.app.a]\ndisplay_name = \"A\"\nuri = \"x\"\noauth_callback = \"http://a/cb\"\nsecret = \"a_secret_1\"\n"
    );
    assert!(load(&text)
        .unwrap_err()
        .to_string()
        .contains("declared twice"));
}

/// RFC 6749 §2.3.1, §10.10: a client secret shorter than the floor is refused at load,
/// naming the client; the Eternaltwin examples' `dev_secret` passes.
#[test]
fn short_client_secrets_are_refused_naming_the_client() {
    for (table, callback_key) in [("clients", "callback_uri"), ("seed.app", "oauth_callback")] {
        let uri_key = if table == "clients" { "app_uri" } else { "uri" };
        let text = format!(
            "[{table}.tiny]\ndisplay_name = \"T\"\n{uri_key} = \"x\"\n\
             {callback_key} = \"http://a/cb\"\nsecret = \"x\"\n"
        );
        let err = format!("{:#}", load(&text).unwrap_err());
        assert!(err.contains(&format!("{table}.tiny.secret")), "{err}");
        assert!(err.contains("`tiny`"), "{err}");
        assert!(err.contains("at least 10"), "{err}");
    }
    let dev = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/dev.toml"
    ))
    .unwrap();
    load(&dev).expect("config/dev.toml loads");
}

/// `private_key_jwt` with an inline `jwks` of public keys only; `client_secret_jwt` with a
/// secret long enough to MAC with (RFC 7518 §3.2).
#[test]
fn jwt_client_authentication_needs_public_keys_or_a_long_secret() {
    let client = "[clients.a]\ndisplay_name = \"A\"\napp_uri = \"http://a\"\ncallback_uri = \"http://a/cb\"\n";
    // RFC 7517 Appendix A.1's EC public key, and A.2's private one (its `d`).
    let public = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1"}"#;
    let private = public.replace(
        r#","kid""#,
        r#","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","kid""#,
    );
    let ok = load(&format!(
        "{client}secret = \"a_secret_1\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks = '{{\"keys\":[{public}]}}'\n"
    ))
    .unwrap();
    let policy = &ok.clients[0].policy;
    assert_eq!(policy.auth_method, Some(AuthMethod::PrivateKeyJwt));
    assert_eq!(policy.jwks.as_ref().unwrap().keys.len(), 1);
    let err = format!(
        "{:#}",
        load(&format!(
            "{client}secret = \"a_secret_1\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks = '{{\"keys\":[{private}]}}'\n"
        ))
        .unwrap_err()
    );
    assert!(
        err.contains("clients.a.jwks") && err.contains("`d`"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        load(&format!(
            "{client}secret = \"a_secret_1\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n"
        ))
        .unwrap_err()
    );
    assert!(err.contains("clients.a.jwks"), "{err}");
    // Keys with another method: for signed request objects (RFC 9101).
    let config = load(&format!(
        "{client}secret = \"a_secret_1\"\njwks = '{{\"keys\":[{public}]}}'\n"
    ))
    .unwrap();
    assert!(config.clients[0].policy.jwks.is_some());
    let short = format!(
        "{client}secret = \"a_secret_1\"\ntoken_endpoint_auth_method = \"client_secret_jwt\"\n"
    );
    let err = format!("{:#}", load(&short).unwrap_err());
    assert!(err.contains("clients.a.secret"), "{err}");
    let long = short.replace("a_secret_1", &"s".repeat(32));
    let ok = load(&long).unwrap();
    assert_eq!(
        ok.clients[0].policy.auth_method,
        Some(AuthMethod::ClientSecretJwt)
    );
}

fn client_with(body: &str) -> anyhow::Result<Config> {
    load(&format!(
        "[clients.app]\ndisplay_name = \"App\"\napp_uri = \"https://app.example\"\n{body}"
    ))
}

#[test]
fn reads_every_kind_of_client() {
    let config = client_with(
        r#"
        redirect_uris = ["http://127.0.0.1/cb", "com.example.app:/cb", "https://app.example/cb"]
        token_endpoint_auth_method = "none"
        require_pkce = true
        [oauth]
        require_pkce = true
        client_credentials = false
        "#,
    )
    .unwrap();
    let app = &config.clients[0];
    assert_eq!(app.redirect_uris.len(), 3);
    assert!(app.policy.is_public() && app.policy.require_pkce);
    assert!(config.require_pkce && !config.client_credentials);
    let machine = client_with(
        r#"
        callback_uri = "https://app.example/cb"
        secret = "machine_secret"
        grant_types = ["client_credentials"]
        "#,
    )
    .unwrap();
    assert_eq!(
        machine.clients[0].policy.grant_types,
        Some(vec![GrantType::ClientCredentials])
    );
    assert!(machine.client_credentials, "the grant is on by default");
}

#[test]
fn refuses_clients_that_break_the_rules_of_their_kind() {
    for (body, expected) in [
        (
            "callback_uri = \"https://a.example/cb\"\nredirect_uris = [\"https://a.example/cb\"]\nsecret = \"long_secret\"",
            "either `callback_uri` or `redirect_uris`",
        ),
        ("secret = \"long_secret\"", "either `callback_uri` or `redirect_uris`"),
        ("redirect_uris = []\nsecret = \"long_secret\"", "at least one"),
        (
            "redirect_uris = [\"https://a.example/cb\"]\ntoken_endpoint_auth_method = \"none\"\nsecret = \"long_secret\"",
            "has no secret",
        ),
        ("redirect_uris = [\"https://a.example/cb\"]", "secret`: missing"),
        (
            "redirect_uris = [\"http://localhost/cb\"]\ntoken_endpoint_auth_method = \"none\"",
            "RFC 8252 section 8.3",
        ),
        (
            "redirect_uris = [\"com.example.app:/cb\"]\nsecret = \"long_secret\"",
            "public clients only",
        ),
        (
            "redirect_uris = [\"myapp:/cb\"]\ntoken_endpoint_auth_method = \"none\"",
            "reverse-domain",
        ),
        (
            "redirect_uris = [\"https://a.example/cb#x\"]\nsecret = \"long_secret\"",
            "redirect URI",
        ),
        (
            "redirect_uris = [\"https://a.example/cb\"]\ntoken_endpoint_auth_method = \"none\"\ngrant_types = [\"client_credentials\"]",
            "cannot use client_credentials",
        ),
        (
            "redirect_uris = [\"https://a.example/cb\"]\nsecret = \"long_secret\"\ngrant_types = [\"password\"]",
            "grant_types",
        ),
    ] {
        let error = format!("{:#}", client_with(body).unwrap_err());
        assert!(error.contains(expected), "{body}: {error}");
    }
}

#[test]
fn reads_resource_indicators_and_refuses_unknown_ones() {
    let config = client_with(
        r#"
        callback_uri = "https://app.example/cb"
        secret = "app_secret_value"
        resources = ["https://api.example/v1", "http://localhost:50320"]
        [oauth]
        resources = ["https://api.example/v1", "https://mcp.example/mcp"]
        "#,
    )
    .unwrap();
    let names = |list: &[ResourceUri]| {
        list.iter()
            .map(|r| r.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&config.resources),
        ["https://api.example/v1", "https://mcp.example/mcp"]
    );
    // The issuer (the default external URI here) is always a resource.
    assert_eq!(
        names(config.clients[0].policy.resources.as_deref().unwrap()),
        ["https://api.example/v1", "http://localhost:50320"]
    );
    for (body, says) in [
        ("[oauth]\nresources = [\"/relative\"]", "oauth.resources"),
        (
            "[oauth]\nresources = [\"https://a.example/#f\"]",
            "fragment",
        ),
        (
            "resources = [\"https://other.example/\"]",
            "is not among `oauth.resources`",
        ),
    ] {
        let error = client_with(&format!(
            "callback_uri = \"https://app.example/cb\"\nsecret = \"app_secret_value\"\n{body}"
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains(says), "{body}: {error:#}");
    }
}

/// `jwks_uri` (RFC 7523 §2.2): an https URL, not beside `jwks`, http only under
/// `[fetch] insecure_allow_http`; `[client_metadata_documents]` off unless enabled.
#[test]
fn jwks_uri_and_metadata_documents() {
    let pk = "secret = \"a_secret_1\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n";
    let config = client_with(&format!(
        "callback_uri = \"https://app.example/cb\"\n{pk}jwks_uri = \"https://app.example/jwks.json\"\n"
    ))
    .unwrap();
    assert_eq!(
        config.clients[0].policy.jwks_uri.as_ref().unwrap().as_str(),
        "https://app.example/jwks.json"
    );
    assert!(!config.client_documents.enabled);
    assert!(!config.fetch.insecure_allow_private_addresses && !config.fetch.insecure_allow_http);
    for (body, wanted) in [
        ("jwks_uri = \"javascript:x\"\n", "clients.app.jwks_uri"),
        (
            "jwks_uri = \"https://a/j\"\njwks = '{\"keys\":[]}'\n",
            "clients.app.jwks",
        ),
        (
            "jwks_uri = \"http://app.example/jwks\"\n",
            "insecure_allow_http",
        ),
    ] {
        let err = format!(
            "{:#}",
            client_with(&format!(
                "callback_uri = \"https://app.example/cb\"\n{pk}{body}"
            ))
            .unwrap_err()
        );
        assert!(err.contains(wanted), "{body}: {err}");
    }
    let signing = client_with(
        "callback_uri = \"https://app.example/cb\"\nsecret = \"a_secret_1\"\njwks_uri = \"https://a/j\"\n",
    )
    .unwrap();
    assert!(signing.clients[0].policy.jwks_uri.is_some());
    let config = load(
        "[client_metadata_documents]\nenabled = true\n[fetch]\ninsecure_allow_http = true\ninsecure_allow_private_addresses = true\n",
    )
    .unwrap();
    assert!(config.client_documents.enabled && config.client_documents.insecure_allow_http);
    assert!(config.fetch.insecure_allow_private_addresses);
    let err = format!("{:#}", load("[fetch]\nallow_private = true\n").unwrap_err());
    assert!(err.contains("fetch.allow_private"), "{err}");
}

/// Plain http only on a loopback host unless the operator says so (TxOAuth2's
/// `allowInsecureRequestDebug`; RFC 6749 §10.9, RFC 9700 §2.6).
#[test]
fn plain_http_is_for_loopback_hosts_unless_allowed() {
    use super::Transport;
    let with =
        |uri: &str, extra: &str| load(&format!("[server]\nexternal_uri = \"{uri}\"\n{extra}"));
    for (uri, transport) in [
        ("https://auth.example", Transport::Https),
        ("http://localhost:50320", Transport::LoopbackHttp),
        ("http://127.0.0.1:8080", Transport::LoopbackHttp),
        ("http://[::1]:8080", Transport::LoopbackHttp),
    ] {
        assert_eq!(with(uri, "").unwrap().transport, transport, "{uri}");
    }
    for uri in [
        "http://auth.example",
        "http://10.0.0.5",
        "http://localhost.example",
    ] {
        let err = format!("{:#}", with(uri, "").unwrap_err());
        assert!(err.contains("insecure_allow_http"), "{uri}: {err}");
        let allowed = with(uri, "insecure_allow_http = true\n").unwrap();
        assert_eq!(allowed.transport, Transport::InsecureHttp);
        assert!(allowed.transport.banner().contains("INSECURE"));
    }
}

#[test]
fn reads_claims_and_refuses_reserved_ones() {
    let config = load(
        r#"
        [clients.game]
        display_name = "Game"
        app_uri = "http://localhost:8000"
        callback_uri = "http://localhost:8000/cb"
        secret = "game_secret"
        claims = { tenant = "acme", limits = { rps = 10 } }

        [seed.user.alice]
        username = "alice"
        password = "pw"
        claims = { roles = ["admin"] }
        "#,
    )
    .unwrap();
    assert_eq!(config.clients[0].policy.claims["limits"]["rps"], 10);
    assert_eq!(config.users[0].claims["roles"][0], "admin");
    for (table, reserved) in [
        ("clients.game", "sub"),
        ("seed.user.alice", "iss"),
        ("clients.game", "cnf"),
    ] {
        let text = format!(
            r#"
            [clients.game]
            display_name = "Game"
            app_uri = "http://localhost:8000"
            callback_uri = "http://localhost:8000/cb"
            secret = "game_secret"

            [seed.user.alice]
            username = "alice"
            password = "pw"

            [{table}.claims]
            {reserved} = "forged"
            "#
        );
        let error = format!("{:#}", load(&text).unwrap_err());
        assert!(
            error.contains(&format!("`{table}.claims.{reserved}`")) && error.contains("reserved"),
            "{error}"
        );
    }
}

#[test]
fn reads_the_jwt_bearer_grant_and_its_issuers() {
    let jwks = r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "6qhq7ODrajSU9bEN2tl9nK-tfa4sni_HAIbDT4DYJdE", "y": "643YpMMmqTNiA3w6udRIGLCtykuhaDS0yCF25_yE4aA"}]}"#;
    let client = |extra: &str| {
        format!(
            r#"
            [clients.svc]
            display_name = "Service"
            app_uri = "http://localhost:8000"
            secret = "svc_secret"
            {extra}
            "#
        )
    };
    let config = load(&client(&format!(
        r#"grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]

            [[clients.svc.assertion_issuers]]
            issuer = "https://idp.example"
            jwks = '{jwks}'
            users = true

            [[clients.svc.assertion_issuers]]
            issuer = "https://k8s.example"
            jwks_uri = "https://k8s.example/keys"
            client_subject = "system:serviceaccount:a:b"
        "#
    )))
    .unwrap();
    let policy = &config.clients[0].policy;
    assert_eq!(
        policy.grant_types,
        Some(Vec::new()),
        "no code or refresh grant"
    );
    assert_eq!(
        policy.extension_grants,
        ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    );
    assert!(policy.assertion_issuers[0].users && policy.assertion_issuers[0].jwks.is_some());
    assert!(config.jwt_bearer, "on by default");

    for (extra, says) in [
        // An issuer without keys is the client itself.
        (
            r#"grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            assertion_issuers = [{ issuer = "https://idp.example" }]"#,
            "assertion_issuers[0]",
        ),
        // Issuers without the grant.
        (
            r#"grant_types = ["client_credentials"]
            assertion_issuers = [{ issuer = "svc@clients" }]"#,
            "only for a client whose grant_types name",
        ),
        // A private key in the issuer's set.
        (
            r#"grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            assertion_issuers = [{ issuer = "https://idp.example", jwks = '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}' }]"#,
            "assertion_issuers[0].jwks",
        ),
    ] {
        let error = format!("{:#}", load(&client(extra)).unwrap_err());
        assert!(error.contains(says), "{extra}: {error}");
    }
    // A public client may not use it.
    let error = format!(
        "{:#}",
        load(
            r#"
            [clients.app]
            display_name = "App"
            app_uri = "http://localhost:8000"
            token_endpoint_auth_method = "none"
            grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            "#
        )
        .unwrap_err()
    );
    assert!(error.contains("public client"), "{error}");
}
