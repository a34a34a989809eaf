//! Prometheus metrics (the OpenMetrics text format, which Prometheus reads, through the
//! `prometheus-client` crate):
//! the HTTP layer counts requests by route, method and status and times them by route; the
//! engine's counters, the Argon2 queue, the audit queue, internal errors and the store's
//! connections are read at each scrape. `GET /metrics` is meant for its own listener
//! (`doorward serve`'s `[server] metrics_listen`), away from the public one.
//!
//! Routes are the router's patterns (`/oauth/token`, `/account/clients/{id}`), never the
//! request's path: an unmatched request counts as `unmatched`, and a method outside the
//! standard ones as `other`, so that no client can make the label sets grow.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `doorward_http_requests_total` | counter | `route`, `method`, `status` |
//! | `doorward_http_request_duration_seconds` | histogram | `route` |
//! | `doorward_tokens_issued_total` | counter | `grant_type` |
//! | `doorward_sign_in_failures_total` | counter | `reason`: `password`, `throttled`, `disabled` |
//! | `doorward_events_total` | counter | `kind` (every audit event kind) |
//! | `doorward_argon2_running`, `doorward_argon2_queued` | gauge | |
//! | `doorward_audit_events_dropped_total` | counter | |
//! | `doorward_audit_events_waiting` | gauge | |
//! | `doorward_internal_errors_total` | counter | `class`: `store_unavailable`, `store_failure`, `other` |
//! | `doorward_store_connections` | gauge | `state`: `busy`, `idle` |
//! | `doorward_store_connections_max` | gauge | |
//! | `doorward_build_info` | gauge (1) | `version` |

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use doorward_core::audit::kinds;
use doorward_core::Engine;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The latency buckets, in seconds: 100 µs to 5 s.
const BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A route label: the router's pattern, shared with the request (`MatchedPath` holds it
/// behind an `Arc`), so that counting a request copies no string.
#[derive(Clone, Debug)]
enum Route {
    Matched(MatchedPath),
    Unmatched,
}

impl Route {
    fn of(request: &Request) -> Self {
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or(Self::Unmatched, |p| Self::Matched(p.clone()))
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
}

/// The registry and the HTTP metrics; share it (`Arc`) between [`Metrics::track`] and
/// [`Metrics::routes`].
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Metrics {
    /// The metrics of the provider whose engine is `engine`.
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "doorward_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "doorward_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern",
            latency.clone(),
        );
        registry.register_collector(Box::new(EngineCollector { engine }));
        Arc::new(Self {
            registry,
            requests,
            latency,
        })
    }

    /// Counts and times every request of `router` (add it last, so that it sees the answers
    /// of the other layers).
    pub fn track(self: &Arc<Self>, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), track))
    }

    /// `GET /metrics`.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state(self.clone())
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a collector's error would be a bug in this file.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "the metrics could not be encoded");
        }
        text
    }
}

async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = Route::of(&request);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(elapsed);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = (StatusCode::OK, metrics.render()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What the engine and the store count, read at each scrape.
struct EngineCollector {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let engine = &self.engine;
        counters(
            &mut encoder,
            "doorward_tokens_issued",
            "Tokens issued at the token endpoint, by grant type",
            "grant_type",
            engine.counters().issued(),
        )?;
        let events: Vec<(&str, u64)> = engine.counters().events().collect();
        let count = |kind: &str| {
            events
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n)
        };
        counters(
            &mut encoder,
            "doorward_sign_in_failures",
            "Refused sign-ins: a wrong password or unknown name, a throttled attempt, a \
             disabled account",
            "reason",
            [
                ("password", count(kinds::SIGN_IN_FAILED)),
                ("throttled", count(kinds::SIGN_IN_THROTTLED)),
                ("disabled", count(kinds::SIGN_IN_DISABLED)),
            ],
        )?;
        counters(
            &mut encoder,
            "doorward_events",
            "Audit events, by kind (counted whether or not an audit trail is kept)",
            "kind",
            events.iter().copied(),
        )?;
        let (running, queued) = engine.hash_load();
        gauge(
            &mut encoder,
            "doorward_argon2_running",
            "Argon2 hashes running now",
            running as i64,
        )?;
        gauge(
            &mut encoder,
            "doorward_argon2_queued",
            "Argon2 hashes waiting or running now",
            queued as i64,
        )?;
        let (dropped, waiting) = engine.audit_backlog();
        counters(
            &mut encoder,
            "doorward_audit_events_dropped",
            "Audit events dropped because the queue was full",
            "queue",
            [("audit", dropped)],
        )?;
        gauge(
            &mut encoder,
            "doorward_audit_events_waiting",
            "Audit events waiting to be written",
            waiting as i64,
        )?;
        counters(
            &mut encoder,
            "doorward_internal_errors",
            "Internal errors answered (500, or 503 for an unreachable store), by class",
            "class",
            crate::response::internal_errors(),
        )?;
        if let Some(pool) = engine.store().pool_use() {
            let mut family = encoder.encode_descriptor(
                "doorward_store_connections",
                "The store's open connections, busy or idle",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (state, n) in [("busy", pool.busy), ("idle", pool.open - pool.busy)] {
                ConstGauge::new(i64::from(n)).encode(family.encode_family(&[("state", state)])?)?;
            }
            gauge(
                &mut encoder,
                "doorward_store_connections_max",
                "The most connections the store opens",
                i64::from(pool.max),
            )?;
        }
        let mut family = encoder.encode_descriptor(
            "doorward_build_info",
            "The running version (always 1)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(1i64)
            .encode(family.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        Ok(())
    }
}

/// A counter family with one label.
fn counters<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (value, n) in values {
        ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}
