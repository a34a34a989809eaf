//! Bounded fuzzing of every parser that reads bytes from the network, through the real router
//! (`oneshot`, in-memory store): form and JSON bodies at the token, introspection, revocation,
//! consent and sign-in endpoints, HTTP Basic credentials, authorization requests, ID token
//! hints (JWS mutations of a real ID token), cookies, the Bearer header and the Eternaltwin API
//! paths. The inputs are valid requests with a few fields edited (replaced by arbitrary Unicode,
//! bytes, huge values or JWT mutations, repeated, dropped, retyped in JSON): random bytes alone
//! would never get past the first check.
//!
//! Every answer must be below 500, and where the endpoint promises an RFC 6749 §5.2 error, a
//! well-formed one: a registered `error` code, an `error_description` in the characters §5.2
//! allows, `WWW-Authenticate` with `invalid_client`, `no-store`.
//!
//! Each target runs a small number of cases by default; `DOORWARD_FUZZ_SCALE=20` runs twenty
//! times as many (README, "Run every test").
//!
//! Past 700 lines: the targets share one fixture (a signed-in browser, a real code, tokens and
//! an ID token) and one set of answer checks, and each target's strategy reads beside its check.

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use serde_json::{json, Value};

use super::support::standalone::{app, CALLBACK};
use super::support::{basic, cookie, encode, hidden, send};
use doorward_core::testkit::fuzz::{cases, jwt_edit, mutate_jwt, runner};

/// Runs `check` on `default` (scaled) cases of `strategy`; a failure is shrunk and reported by
/// proptest with the smallest input it found. Prints the count and the time taken.
pub(super) fn fuzz<S: Strategy>(
    name: &str,
    default: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let count = cases(default);
    let mut runner = runner(Config {
        cases: count,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    STATUSES.with(|s| s.borrow_mut().clear());
    let started = Instant::now();
    if let Err(e) = runner.run(&strategy, check) {
        panic!("fuzz target {name}: {e}");
    }
    let statuses = STATUSES.with(|s| format!("{:?}", s.borrow()));
    eprintln!(
        "fuzz {name}: {count} cases in {:.1} s; answers by status: {statuses}",
        started.elapsed().as_secs_f64()
    );
}

thread_local! {
    /// How many answers of each status the current target got: that the inputs get past the
    /// first checks shows in the spread.
    pub(super) static STATUSES: std::cell::RefCell<std::collections::BTreeMap<u16, u32>> =
        Default::default();
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// What a target starts from: a signed-in browser, a real code, tokens and an ID token.

const AUTHORIZE_OPENID: &str = "/oauth/authorize?response_type=code&client_id=python_client%40clients\
    &redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Foauth%2Fcallback&scope=openid+profile&state=s&nonce=n";
const CLIENT: &str = "python_client@clients";
const SECRET: &str = "dev:sec ret";

struct Fixture {
    app: Router,
    csrf_cookie: String,
    session: String,
    csrf: String,
    /// The consent form's `request` field.
    consent_request: String,
    code: String,
    access_token: String,
    refresh_token: String,
    id_token: String,
}

impl Fixture {
    fn cookies(&self) -> String {
        format!("{}; dw_session={}", self.csrf_cookie, self.session)
    }

    async fn new() -> Self {
        let app = app().await;
        let get = |uri: &str, cookies: &str| {
            Request::get(uri)
                .header(header::COOKIE, cookies)
                .body(Body::empty())
                .unwrap()
        };
        let (response, page) = send(&app, get("/login", "")).await;
        let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
        let csrf = hidden(&page, "csrf");
        let body = encode(&[("csrf", &csrf), ("username", "alice"), ("password", "pw")]);
        let (response, _) = send(&app, post_form("/login", &csrf_cookie, body)).await;
        let session = cookie(&response, "dw_session").unwrap();
        let cookies = format!("{csrf_cookie}; {session}");
        let session = session.trim_start_matches("dw_session=").to_owned();

        let (_, page) = send(&app, get(AUTHORIZE_OPENID, &cookies)).await;
        let consent_request = hidden(&page, "request");
        let csrf = hidden(&page, "csrf");
        let approve = encode(&[
            ("csrf", &csrf),
            ("request", &consent_request),
            ("decision", "approve"),
        ]);
        let code_of = |response: &Response| {
            let location = response.headers()[header::LOCATION].to_str().unwrap();
            url::Url::parse(location)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned()
        };
        let (response, _) = send(
            &app,
            post_form("/oauth/authorize", &cookies, approve.clone()),
        )
        .await;
        let first = code_of(&response);
        let (response, _) = send(&app, get(AUTHORIZE_OPENID, &cookies)).await;
        let code = code_of(&response);

        let mut token = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic(CLIENT, SECRET));
        token = token.header(header::ACCEPT, "application/json");
        let body = encode(&[("grant_type", "authorization_code"), ("code", &first)]);
        let (response, body) = send(&app, token.body(Body::from(body)).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let tokens: Value = serde_json::from_str(&body).unwrap();
        let text = |name: &str| tokens[name].as_str().unwrap().to_owned();
        Fixture {
            csrf_cookie,
            session,
            csrf,
            consent_request,
            code,
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
            id_token: text("id_token"),
            app,
        }
    }
}

fn post_form(uri: &str, cookies: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies)
        .body(Body::from(body))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// A hostile string: arbitrary Unicode, printable ASCII, empty, huge, NUL, or percent signs.
fn wild() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        3 => "[ -~]{0,24}",
        1 => Just(String::new()),
        1 => (any::<char>(), 1usize..24_000).prop_map(|(c, n)| c.to_string().repeat(n)),
        1 => "[a-z_]{1,8}".prop_map(|s| format!("{s}\0{s}")),
        1 => "(%[0-9A-Fa-f]{0,2}|%[g-z]|[a-z]){0,8}",
        1 => "-?[0-9]{1,25}(\\.[0-9]{0,3})?",
        1 => "-?[0-9]{1,20}\\.[A-Za-z0-9_-]{0,44}",
    ]
    .boxed()
}

/// A JSON value of any type, for a retyped JSON member.
fn json_value() -> BoxedStrategy<Value> {
    prop_oneof![
        wild().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        proptest::collection::vec("[ -~]{0,6}", 0..3).prop_map(|v| json!(v)),
        "[a-z]{1,5}".prop_map(|k| json!({ k: {"x": [1, null]} })),
    ]
    .boxed()
}

/// A value for a field: hostile text, a mutated JWT, or a real credential of the fixture.
fn value(real: Vec<String>) -> BoxedStrategy<String> {
    prop_oneof![
        6 => wild(),
        2 => (proptest::sample::select(real.clone()), proptest::collection::vec(jwt_edit(vec![]), 1..4))
            .prop_map(|(token, edits)| mutate_jwt(&token, &[], &edits)),
        1 => proptest::sample::select(real),
    ]
    .boxed()
}

/// One edit of a list of parameters.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, String),
    Retype(usize, Value),
    Drop(usize),
    Repeat(usize),
    Rename(usize, String),
    Add(String, String),
}

fn edits(real: Vec<String>) -> BoxedStrategy<Vec<Edit>> {
    let known = prop_oneof![
        Just("grant_type".to_owned()),
        Just("code".to_owned()),
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        Just("scope".to_owned()),
        Just("token".to_owned()),
        Just("redirect_uri".to_owned()),
        Just("prompt".to_owned()),
        Just("max_age".to_owned()),
        Just("id_token_hint".to_owned()),
        Just("response_mode".to_owned()),
        Just("request".to_owned()),
        Just("request_uri".to_owned()),
        Just("dw_reauth".to_owned()),
        Just("login_hint".to_owned()),
        Just("nonce".to_owned()),
        Just("code_verifier".to_owned()),
        Just("refresh_token".to_owned()),
        Just("token_type_hint".to_owned()),
        Just("next".to_owned()),
        Just("decision".to_owned()),
        wild(),
    ];
    let edit = prop_oneof![
        4 => (any::<usize>(), value(real.clone())).prop_map(|(i, v)| Edit::Replace(i, v)),
        1 => (any::<usize>(), json_value()).prop_map(|(i, v)| Edit::Retype(i, v)),
        1 => any::<usize>().prop_map(Edit::Drop),
        1 => any::<usize>().prop_map(Edit::Repeat),
        1 => (any::<usize>(), wild()).prop_map(|(i, n)| Edit::Rename(i, n)),
        1 => (known, value(real)).prop_map(|(n, v)| Edit::Add(n, v)),
    ];
    proptest::collection::vec(edit, 0..4).boxed()
}

fn apply(base: &[(&str, String)], edits: &[Edit]) -> Vec<(String, Value)> {
    let mut params: Vec<(String, Value)> = base
        .iter()
        .map(|(n, v)| ((*n).to_owned(), Value::String(v.clone())))
        .collect();
    for edit in edits {
        let len = params.len().max(1);
        match edit {
            Edit::Replace(i, v) => {
                if let Some(p) = params.get_mut(i % len) {
                    p.1 = Value::String(v.clone());
                }
            }
            Edit::Retype(i, v) => {
                if let Some(p) = params.get_mut(i % len) {
                    p.1 = v.clone();
                }
            }
            Edit::Drop(i) => {
                if !params.is_empty() {
                    params.remove(i % len);
                }
            }
            Edit::Repeat(i) => {
                if let Some(p) = params.get(i % len).cloned() {
                    params.push(p);
                }
            }
            Edit::Rename(i, n) => {
                if let Some(p) = params.get_mut(i % len) {
                    p.0 = n.clone();
                }
            }
            Edit::Add(n, v) => params.push((n.clone(), Value::String(v.clone()))),
        }
    }
    params
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How a body is written.
#[derive(Debug, Clone)]
enum Shape {
    Form,
    Json,
    /// JSON cut after this many bytes.
    CutJson(usize),
    Bytes(Vec<u8>),
}

fn shape() -> BoxedStrategy<Shape> {
    shape_weighted(5)
}

/// [`shape`] with the weight of a form body out of `form + 5`.
fn shape_weighted(form: u32) -> BoxedStrategy<Shape> {
    prop_oneof![
        form => Just(Shape::Form),
        3 => Just(Shape::Json),
        1 => any::<usize>().prop_map(Shape::CutJson),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Shape::Bytes),
    ]
    .boxed()
}

fn write_body(params: &[(String, Value)], shape: &Shape) -> Vec<u8> {
    let json = || {
        // Written by hand so that repeated members stay repeated.
        let members: Vec<String> = params
            .iter()
            .map(|(n, v)| format!("{}:{}", Value::String(n.clone()), v))
            .collect();
        format!("{{{}}}", members.join(","))
    };
    match shape {
        Shape::Form => {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (n, v) in params {
                s.append_pair(n, &as_text(v));
            }
            s.finish().into_bytes()
        }
        Shape::Json => json().into_bytes(),
        Shape::CutJson(at) => {
            let mut bytes = json().into_bytes();
            bytes.truncate(at % (bytes.len() + 1));
            bytes
        }
        Shape::Bytes(bytes) => bytes.clone(),
    }
}

fn content_type() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(b"application/x-www-form-urlencoded; charset=UTF-8".to_vec())),
        1 => Just(Some(b"APPLICATION/JSON".to_vec())),
        1 => Just(Some(b"text/plain".to_vec())),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
    .boxed()
}

/// An `Authorization` header: none, the right Basic, Basic with hostile parts or bytes, a
/// Bearer, or anything.
pub(super) fn authorization(real: Vec<String>) -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        3 => Just(Some(basic(CLIENT, SECRET).into_bytes())),
        2 => (wild(), wild()).prop_map(|(id, secret)| Some(basic(&id, &secret).into_bytes())),
        2 => (wild(), any::<bool>()).prop_map(|(secret, encoded)| {
            let id = if encoded { "python_client%40clients" } else { CLIENT };
            Some(basic(id, &secret).into_bytes())
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| Some(format!("Basic {}", STANDARD.encode(b)).into_bytes())),
        1 => wild().prop_map(|s| Some(format!("Basic {s}").into_bytes())),
        2 => value(real).prop_map(|s| Some(format!("Bearer {s}").into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Some),
    ]
    .boxed()
}

/// A `Cookie` header: the real cookies, edited pairs, or anything.
fn cookie_header(real: Vec<String>) -> BoxedStrategy<Option<Vec<u8>>> {
    let name = prop_oneof![
        Just("dw_session".to_owned()),
        Just("dw_csrf".to_owned()),
        Just("__Host-dw_session".to_owned()),
        "[ -~]{0,10}",
    ];
    let pair = (name, value(real)).prop_map(|(n, v)| format!("{n}={v}"));
    prop_oneof![
        1 => Just(None),
        3 => proptest::collection::vec(pair, 1..4).prop_map(|p| Some(p.join("; ").into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..100).prop_map(Some),
    ]
    .boxed()
}

/// Builds a request; `None` when the parts cannot make an HTTP request at all (a header value
/// with a control character, which hyper would never hand over either).
pub(super) fn request(
    method: Method,
    uri: &str,
    headers: &[(header::HeaderName, Option<Vec<u8>>)],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        if let Some(value) = value {
            builder = builder.header(name, HeaderValue::from_bytes(value).ok()?);
        }
    }
    builder.body(Body::from(body)).ok()
}

fn query(params: &[(String, Value)], raw: bool) -> String {
    if raw {
        // Every byte percent-encoded, so that the decoded value can be any byte sequence.
        params
            .iter()
            .map(|(n, v)| {
                let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
                format!("{}={}", enc(n), enc(&as_text(v)))
            })
            .collect::<Vec<_>>()
            .join("&")
    } else {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (n, v) in params {
            s.append_pair(n, &as_text(v));
        }
        s.finish()
    }
}

// ---------------------------------------------------------------------------------------------
// What every answer must be.

const TOKEN_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "slow_down",
];

const AUTHORIZE_ERRORS: &[&str] = &[
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "login_required",
    "consent_required",
    "interaction_required",
    "account_selection_required",
    "request_not_supported",
    "request_uri_not_supported",
    "invalid_request_uri",
    "invalid_request_object",
];

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`.
fn description_ok(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

async fn answer(app: &Router, request: Request<Body>) -> (StatusCode, Response, String) {
    let (response, body) = send(app, request).await;
    let status = response.status();
    STATUSES.with(|s| *s.borrow_mut().entry(status.as_u16()).or_default() += 1);
    (status, response, body)
}

fn below_500(status: StatusCode, what: &str, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        status.as_u16() < 500,
        "{what}: {status} {}",
        body.chars().take(300).collect::<String>()
    );
    Ok(())
}

/// An RFC 6749 §5.2 answer (or a 200 JSON success) from a token-style endpoint.
fn token_style(status: StatusCode, response: &Response, body: &str) -> Result<(), TestCaseError> {
    below_500(status, "token-style endpoint", body)?;
    if status == StatusCode::OK && body.is_empty() {
        return Ok(()); // revocation (RFC 7009 §2.2)
    }
    let json: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {body}")))?;
    if status == StatusCode::OK {
        return Ok(());
    }
    let error = json["error"].as_str().unwrap_or("");
    prop_assert!(TOKEN_ERRORS.contains(&error), "{status}: {body}");
    if let Some(description) = json.get("error_description") {
        let text = description.as_str().unwrap_or("\"");
        prop_assert!(description_ok(text), "error_description: {body}");
    }
    prop_assert_eq!(
        response
            .headers()
            .get(header::CACHE_CONTROL)
            .map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    if error == "slow_down" {
        // RFC 6749 §10.10: the client's throttle after too many wrong secrets.
        prop_assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        prop_assert!(response.headers().contains_key(header::RETRY_AFTER));
    } else if error == "invalid_client" {
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        prop_assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    } else {
        prop_assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{status}: {body}"
        );
    }
    Ok(())
}

/// A redirect to the client carries a registered error (and `iss`) or a code; a redirect
/// elsewhere goes to the sign-in page.
fn authorize_redirect(response: &Response) -> Result<(), TestCaseError> {
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(());
    };
    let location = location.to_str().unwrap_or("");
    if location.starts_with('/') {
        prop_assert!(location.starts_with("/login"), "{location}");
        return Ok(());
    }
    prop_assert!(location.starts_with(CALLBACK), "{location}");
    let url = url::Url::parse(location).unwrap();
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    prop_assert!(get("iss").is_some(), "{location}");
    if let Some(error) = get("error") {
        prop_assert!(AUTHORIZE_ERRORS.contains(&error.as_str()), "{location}");
        let description = get("error_description").unwrap_or_default();
        prop_assert!(description_ok(&description), "{location}");
    } else {
        prop_assert!(get("code").is_some(), "{location}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The targets.

#[test]
fn token_introspection_and_revocation_bodies() {
    let rt = runtime();
    let fx = rt.block_on(Fixture::new());
    let real = vec![
        fx.code.clone(),
        fx.refresh_token.clone(),
        fx.access_token.clone(),
        fx.id_token.clone(),
    ];
    let bases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "/oauth/token",
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", fx.code.clone()),
                ("redirect_uri", CALLBACK.into()),
            ],
        ),
        (
            "/oauth/token",
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", fx.refresh_token.clone()),
                ("scope", "openid".into()),
            ],
        ),
        (
            "/oauth/token",
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", "dwc_AAAA".into()),
                ("client_id", CLIENT.into()),
                ("client_secret", SECRET.into()),
                (
                    "code_verifier",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
                ),
            ],
        ),
        (
            "/oauth/introspect",
            vec![
                ("token", fx.access_token.clone()),
                ("token_type_hint", "access_token".into()),
            ],
        ),
        (
            "/oauth/revoke",
            vec![
                ("token", "dwrt_AAAA".into()),
                ("token_type_hint", "refresh_token".into()),
            ],
        ),
    ];
    let strategy = (
        0..bases.len(),
        edits(real.clone()),
        shape(),
        content_type(),
        authorization(real),
    );
    fuzz(
        "token-style bodies",
        1500,
        strategy,
        |(i, edits, shape, ct, auth)| {
            let (path, base) = &bases[i];
            let params = apply(base, &edits);
            let ct = ct.or_else(|| {
                Some(match shape {
                    Shape::Form => b"application/x-www-form-urlencoded".to_vec(),
                    _ => b"application/json".to_vec(),
                })
            });
            let headers = [(header::CONTENT_TYPE, ct), (header::AUTHORIZATION, auth)];
            let Some(request) = request(Method::POST, path, &headers, write_body(&params, &shape))
            else {
                return Ok(());
            };
            rt.block_on(async {
                let (status, response, body) = answer(&fx.app, request).await;
                token_style(status, &response, &body)
            })
        },
    );
}

#[test]
fn authorization_requests_and_id_token_hints() {
    let rt = runtime();
    let fx = rt.block_on(Fixture::new());
    let real = vec![fx.id_token.clone(), fx.code.clone()];
    let base: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", CLIENT.into()),
        ("redirect_uri", CALLBACK.into()),
        ("scope", "openid profile".into()),
        ("state", "s".into()),
        ("nonce", "n".into()),
        ("id_token_hint", fx.id_token.clone()),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        ),
        ("code_challenge_method", "S256".into()),
        ("prompt", "none".into()),
        ("max_age", "600".into()),
    ];
    let signed_in = fx.cookies().into_bytes();
    let cookies = prop_oneof![
        Just(None),
        Just(Some(signed_in)),
        cookie_header(real.clone()),
    ];
    let strategy = (edits(real), any::<bool>(), cookies);
    fuzz(
        "authorization requests",
        1500,
        strategy,
        |(edits, raw, cookies)| {
            let params = apply(&base, &edits);
            let uri = format!("/oauth/authorize?{}", query(&params, raw));
            let Some(request) = request(Method::GET, &uri, &[(header::COOKIE, cookies)], vec![])
            else {
                return Ok(());
            };
            rt.block_on(async {
                let (status, response, body) = answer(&fx.app, request).await;
                below_500(status, "GET /oauth/authorize", &body)?;
                authorize_redirect(&response)
            })
        },
    );
}

#[test]
fn consent_sign_in_and_sign_out_forms() {
    let rt = runtime();
    let fx = rt.block_on(Fixture::new());
    let real = vec![fx.csrf.clone(), fx.session.clone(), fx.id_token.clone()];
    let forms: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "/oauth/authorize",
            vec![
                ("csrf", fx.csrf.clone()),
                ("request", fx.consent_request.clone()),
                ("decision", "approve".into()),
            ],
        ),
        (
            "/login",
            vec![
                ("csrf", fx.csrf.clone()),
                ("username", "alice".into()),
                ("password", "wrong".into()),
                ("next", "/oauth/authorize?client_id=x".into()),
            ],
        ),
        (
            "/oauth/end_session",
            vec![
                ("csrf", fx.csrf.clone()),
                ("id_token_hint", fx.id_token.clone()),
                ("client_id", CLIENT.into()),
                ("post_logout_redirect_uri", "http://localhost:8000/".into()),
                ("state", "s".into()),
            ],
        ),
        (
            "/account/revoke",
            vec![("csrf", fx.csrf.clone()), ("client_id", CLIENT.into())],
        ),
        ("/logout", vec![("csrf", "wrong".into())]),
    ];
    // Sign-out succeeds only with a wrong CSRF token here: the session must stay for the others.
    let cookies = prop_oneof![
        3 => Just(Some(fx.cookies().into_bytes())),
        1 => cookie_header(real.clone()),
    ];
    let strategy = (
        0..forms.len(),
        edits(real),
        shape_weighted(25),
        content_type(),
        cookies,
    );
    fuzz(
        "consent, sign-in and sign-out forms",
        1000,
        strategy,
        |(i, edits, shape, ct, cookies)| {
            let (path, base) = &forms[i];
            let mut params = apply(base, &edits);
            if *path == "/logout" {
                params.retain(|(n, v)| n != "csrf" || as_text(v) != fx.csrf);
            }
            let ct = ct.or(Some(b"application/x-www-form-urlencoded".to_vec()));
            let headers = [(header::CONTENT_TYPE, ct), (header::COOKIE, cookies)];
            let Some(request) = request(Method::POST, path, &headers, write_body(&params, &shape))
            else {
                return Ok(());
            };
            rt.block_on(async {
                let (status, response, body) = answer(&fx.app, request).await;
                below_500(status, path, &body)?;
                if *path == "/oauth/authorize" {
                    authorize_redirect(&response)?;
                }
                Ok(())
            })
        },
    );
}

#[test]
fn cookies_bearer_headers_and_api_paths() {
    let rt = runtime();
    let fx = rt.block_on(Fixture::new());
    let real = vec![
        fx.session.clone(),
        fx.csrf.clone(),
        fx.access_token.clone(),
        fx.id_token.clone(),
    ];
    let pages = prop_oneof![
        Just("/account".to_owned()),
        Just("/login".to_owned()),
        Just("/logout".to_owned()),
        Just("/".to_owned()),
        Just(AUTHORIZE_OPENID.to_owned()),
        Just("/api/v1/auth/self".to_owned()),
        Just("/oauth/userinfo".to_owned()),
        (value(real.clone()), any::<bool>()).prop_map(|(hint, raw)| {
            let params = [("id_token_hint".to_owned(), Value::String(hint))];
            format!("/oauth/end_session?{}", query(&params, raw))
        }),
        wild().prop_map(|id| {
            let id: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
            format!("/api/v1/users/{id}")
        }),
    ];
    let method = prop_oneof![3 => Just(Method::GET), 1 => Just(Method::POST)];
    let strategy = (
        pages,
        method,
        cookie_header(real.clone()),
        authorization(real),
        shape(),
    );
    fuzz(
        "cookies, Bearer and API paths",
        1500,
        strategy,
        |(uri, method, cookies, auth, shape)| {
            let posts = ["/oauth/userinfo", "/oauth/end_session", "/logout", "/login"];
            let method = if posts.iter().any(|p| uri.starts_with(p)) {
                method
            } else {
                Method::GET
            };
            let body = if method == Method::POST {
                write_body(&[("access_token".into(), json!(fx.access_token))], &shape)
            } else {
                vec![]
            };
            let headers = [
                (header::COOKIE, cookies),
                (header::AUTHORIZATION, auth),
                (
                    header::CONTENT_TYPE,
                    Some(b"application/x-www-form-urlencoded".to_vec()),
                ),
            ];
            let Some(request) = request(method.clone(), &uri, &headers, body) else {
                return Ok(());
            };
            rt.block_on(async {
                let (status, response, body) = answer(&fx.app, request).await;
                below_500(status, &format!("{method} {uri}"), &body)?;
                let bearer = uri.starts_with("/oauth/userinfo") || uri.starts_with("/api/v1/auth");
                if bearer && status == StatusCode::UNAUTHORIZED {
                    prop_assert!(
                        response.headers().contains_key(header::WWW_AUTHENTICATE),
                        "{uri}: 401 without WWW-Authenticate"
                    );
                }
                Ok(())
            })
        },
    );
}

#[test]
fn bearer_headers_at_an_embedded_providers_api() {
    use super::support::embedded::{legacy_provider, password_request};

    let rt = runtime();
    let mut grants = doorward_core::Grants::CODE_AND_REFRESH;
    grants.insecure_password = true;
    let (_provider, app, token) = rt.block_on(async {
        let (provider, app) = legacy_provider(grants).await;
        let (_, body) = send(&app, password_request("carol", "carol-pw")).await;
        let tokens: Value = serde_json::from_str(&body).unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        (provider, app, token)
    });
    let paths = prop_oneof![Just("/api/items"), Just("/api/layered"),];
    let strategy = (paths, authorization(vec![token]));
    fuzz(
        "Bearer at an embedded API",
        1000,
        strategy,
        |(path, auth)| {
            let Some(request) =
                request(Method::GET, path, &[(header::AUTHORIZATION, auth)], vec![])
            else {
                return Ok(());
            };
            rt.block_on(async {
                let (status, response, body) = answer(&app, request).await;
                below_500(status, path, &body)?;
                if matches!(status.as_u16(), 401 | 403) {
                    prop_assert!(
                        response.headers().contains_key(header::WWW_AUTHENTICATE),
                        "{path}: {status} without WWW-Authenticate"
                    );
                }
                Ok(())
            })
        },
    );
}
