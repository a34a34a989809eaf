//! The engine's outbound port ([`doorward_core::fetch::Fetcher`]) over HTTPS with reqwest
//! (feature `fetch`), under an SSRF policy: the URLs come from clients (a `jwks_uri`, a
//! metadata document's `client_id`), so each fetch is a request this server makes on a
//! stranger's behalf (draft-ietf-oauth-client-id-metadata-document-02 §8.6, RFC 7591 §5).
//!
//! - `https` only, unless [`FetchPolicy::insecure_allow_http`];
//! - names are resolved here ([`FilteringResolver`]), and addresses that are not public
//!   unicast ([`is_public`]: loopback, RFC 1918, ULA, link-local, CGNAT, documentation,
//!   multicast, unspecified, reserved, and the IPv4-mapped, NAT64 and 6to4 forms of those)
//!   are dropped, so that a public name pointed at `127.0.0.1` reaches nothing; an IP-literal
//!   host is checked the same way. [`FetchPolicy::allow_private_addresses`] lifts this, for
//!   tests on loopback;
//! - no proxy from the environment (it would resolve names for us), no redirect followed
//!   (a redirect answer is an error), no cookies, no credentials;
//! - a total deadline and a connect deadline; the body read in chunks and abandoned past
//!   [`FetchPolicy::max_body`]; at most [`FetchPolicy::max_in_flight`] fetches at once;
//! - `Accept: application/json`; the lifetime from `Cache-Control: max-age` less `Age`
//!   (RFC 9111 §4.2.1, `no-store`/`no-cache` as 0).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use doorward_core::fetch::{FetchError, Fetched, Fetcher, MAX_BODY, TIMEOUT};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_LENGTH};
use url::{Host, Url};

/// What the fetcher may reach, and how long and how much it reads.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Reach loopback, private and other non-public addresses.
    ///
    /// # Security
    /// For tests on one machine only: with it, a client can make this server send requests to
    /// its own network (an admin interface on `127.0.0.1`, a cloud metadata service at
    /// `169.254.169.254`).
    pub allow_private_addresses: bool,
    /// Fetch `http://` URLs too.
    ///
    /// # Security
    /// For tests only: a document or key set fetched in the clear can be replaced on the way.
    pub insecure_allow_http: bool,
    /// The largest body read, in bytes.
    pub max_body: usize,
    /// The whole fetch, from connecting to the last byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// The most fetches under way at once: clients choose the URLs, and must not make this
    /// server hold an unbounded number of outbound connections.
    pub max_in_flight: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            insecure_allow_http: false,
            max_body: MAX_BODY,
            timeout: TIMEOUT,
            connect_timeout: Duration::from_secs(3),
            max_in_flight: 16,
        }
    }
}

/// A [`Fetcher`] over reqwest (see the module documentation).
#[derive(Clone, Debug)]
pub struct HttpFetcher {
    http: reqwest::Client,
    policy: FetchPolicy,
    /// At most [`FetchPolicy::max_in_flight`] fetches at once; the others wait, within the
    /// deadline.
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// The HTTP client could not be built (no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("the HTTP client for outbound fetches could not be built")]
pub struct FetcherBuildError(#[source] reqwest::Error);

impl HttpFetcher {
    /// A fetcher under `policy`, for [`crate::ProviderBuilder::fetcher`]:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use doorward_axum::fetch::{FetchPolicy, HttpFetcher};
    /// use doorward_axum::Provider;
    ///
    /// let fetcher = HttpFetcher::new(FetchPolicy::default())?; // public https only
    /// let builder = Provider::builder("https://auth.example").fetcher(Arc::new(fetcher));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(policy: FetchPolicy) -> Result<Self, FetcherBuildError> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(FilteringResolver {
                allow_private: policy.allow_private_addresses,
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .connect_timeout(policy.connect_timeout)
            .user_agent(concat!("doorward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(FetcherBuildError)?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(policy.max_in_flight.max(1)));
        Ok(Self {
            http,
            policy,
            in_flight,
        })
    }

    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        match url.scheme() {
            "https" => {}
            "http" if self.policy.insecure_allow_http => {}
            other => {
                return Err(FetchError::Refused(format!(
                    "the scheme {other} is refused"
                )))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::Refused("a URL with user info".to_owned()));
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => None,
            None => return Err(FetchError::Refused("a URL without a host".to_owned())),
        };
        if let Some(ip) = literal {
            if !self.policy.allow_private_addresses && !is_public(ip) {
                return Err(FetchError::Refused(format!("{ip} is not a public address")));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Fetcher for HttpFetcher {
    async fn fetch_json(&self, url: &Url) -> Result<Fetched, FetchError> {
        self.check_url(url)?;
        let _permit = tokio::time::timeout(self.policy.timeout, self.in_flight.acquire())
            .await
            .map_err(|_| FetchError::Timeout)?
            .map_err(|_| FetchError::Unreachable("the fetcher is closed".to_owned()))?;
        let mut response = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(failure)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect);
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max = self.policy.max_body;
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|len| len > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        let max_age = freshness(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failure)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// What a failed connection, and a name that resolves to no allowed address, answer.
const CONNECTION_FAILED: &str = "the connection failed";

/// A reqwest failure as the engine sees it: a deadline, or a reason the document could not be
/// had (a name the resolver refused reads as a failed connection).
fn failure(error: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            // Said in the log only: the requester (a client naming a metadata document or a
            // `jwks_uri`) learns no more than from a failed connection, so that it cannot map
            // which names resolve to private addresses.
            tracing::info!(reason = %blocked, "a fetch was refused");
            return FetchError::Unreachable(CONNECTION_FAILED.to_owned());
        }
        source = e.source();
    }
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_connect() {
        FetchError::Unreachable(CONNECTION_FAILED.to_owned())
    } else {
        FetchError::Unreachable("the request failed".to_owned())
    }
}

/// The response's freshness lifetime (RFC 9111 §4.2.1), `None` without `max-age`.
fn freshness(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let mut max_age: Option<u64> = None;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            // RFC 9111 §1.2.2: a delta too large to represent counts as a very long time.
            let seconds = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
            if let Some(seconds) = seconds {
                max_age = Some(max_age.map_or(seconds, |m| m.min(seconds)));
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|m| m.saturating_sub(age))
}

/// Resolves names with the system resolver and keeps only public addresses (unless allowed).
struct FilteringResolver {
    allow_private: bool,
}

/// Every address of a name was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
struct Blocked(String);

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = found
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(Blocked(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` is a public unicast address, one a fetch may reach. Refused: unspecified,
/// loopback, private (RFC 1918, ULA `fc00::/7`), link-local, shared (CGNAT `100.64.0.0/10`),
/// documentation and benchmarking ranges, multicast, reserved and broadcast, the IETF
/// protocol block `192.0.0.0/24`, deprecated IPv6 site-local, IPv4-compatible and Teredo
/// forms; IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`)
/// addresses are judged by the IPv4 address they carry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let a = u32::from(ip);
    let within = |net: u32, bits: u32| a >> (32 - bits) == net >> (32 - bits);
    const REFUSED: [(u32, u32); 16] = [
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network", unspecified
        (0x0A00_0000, 8),  // 10.0.0.0/8 (RFC 1918)
        (0x6440_0000, 10), // 100.64.0.0/10 shared, CGNAT (RFC 6598)
        (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
        (0xA9FE_0000, 16), // 169.254.0.0/16 link-local (cloud metadata services)
        (0xAC10_0000, 12), // 172.16.0.0/12 (RFC 1918)
        (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
        (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
        (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
        (0xC0A8_0000, 16), // 192.168.0.0/16 (RFC 1918)
        (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
        (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
        (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
        (0xE000_0000, 4),  // 224.0.0.0/4 multicast
        (0xF000_0000, 4),  // 240.0.0.0/4 reserved, and 255.255.255.255
        (0xFFFF_FFFF, 32), // broadcast (inside the line above; said for the reader)
    ];
    !REFUSED.iter().any(|&(net, bits)| within(net, bits))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let a = u128::from(ip);
    let within = |net: u128, bits: u32| a >> (128 - bits) == net >> (128 - bits);
    let embedded_v4 = |shift: u32| Ipv4Addr::from((a >> shift) as u32);
    if within(0, 96) {
        // ::, ::1, and the deprecated IPv4-compatible ::a.b.c.d: none is reachable publicly.
        return false;
    }
    if within(0xffff << 32, 96) {
        return is_public_v4(embedded_v4(0)); // ::ffff:a.b.c.d, IPv4-mapped
    }
    if within(0x0064_ff9b << 96, 96) {
        return is_public_v4(embedded_v4(0)); // 64:ff9b::a.b.c.d, NAT64 (RFC 6052)
    }
    if within(0x2002 << 112, 16) {
        return is_public_v4(embedded_v4(80)); // 2002:AABB:CCDD::, 6to4 (RFC 3056)
    }
    const REFUSED: [(u128, u32); 8] = [
        (0x0064_ff9b_0001 << 80, 48), // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
        (0x0100 << 112, 64),          // 100::/64 discard (RFC 6666)
        (0x2001 << 112, 32),          // 2001::/32 Teredo
        (0x2001_0db8 << 96, 32),      // 2001:db8::/32 documentation
        (0xfc00 << 112, 7),           // fc00::/7 unique local (ULA)
        (0xfe80 << 112, 10),          // fe80::/10 link-local
        (0xfec0 << 112, 10),          // fec0::/10 site-local (deprecated)
        (0xff00 << 112, 8),           // ff00::/8 multicast
    ];
    !REFUSED.iter().any(|&(net, bits)| within(net, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn special_ipv4_ranges_are_refused() {
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(public(allowed), "{allowed} is public");
        }
    }

    #[test]
    fn special_ipv6_ranges_and_embedded_ipv4_are_refused() {
        for refused in [
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:192.168.0.1",
            "::ffff:100.64.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:0001::1",
            "2002:c0a8:0101::",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
        for allowed in [
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "fbff::1",
            "fe7f::1",
        ] {
            assert!(public(allowed), "{allowed} is public");
        }
    }

    fn fetcher(policy: FetchPolicy) -> HttpFetcher {
        HttpFetcher::new(policy).unwrap()
    }

    #[test]
    fn urls_outside_the_policy_are_refused_before_any_request() {
        let strict = fetcher(FetchPolicy::default());
        for url in [
            "http://example.com/doc",
            "ftp://example.com/doc",
            "https://127.0.0.1/doc",
            "https://[::1]/doc",
            "https://[::ffff:7f00:1]/doc",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/doc",
            "https://user:pw@example.com/doc",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(
                matches!(strict.check_url(&url), Err(FetchError::Refused(_))),
                "{url}"
            );
        }
        assert!(strict
            .check_url(&Url::parse("https://example.com/doc").unwrap())
            .is_ok());
        let loose = fetcher(FetchPolicy {
            allow_private_addresses: true,
            insecure_allow_http: true,
            ..FetchPolicy::default()
        });
        assert!(loose
            .check_url(&Url::parse("http://127.0.0.1:8080/doc").unwrap())
            .is_ok());
    }

    #[test]
    fn freshness_reads_max_age_less_age() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert_eq!(freshness(&headers(&[])), None);
        assert_eq!(
            freshness(&headers(&[("cache-control", "public, max-age=600")])),
            Some(600)
        );
        assert_eq!(
            freshness(&headers(&[
                ("cache-control", "max-age=600"),
                ("age", "100")
            ])),
            Some(500)
        );
        assert_eq!(
            freshness(&headers(&[("cache-control", "max-age=600, no-store")])),
            Some(0)
        );
        assert_eq!(
            freshness(&headers(&[("cache-control", "max-age=abc")])),
            None
        );
    }

    /// A one-connection HTTP server on loopback that answers `response` (raw bytes, written in
    /// pieces with `pause` between them) to whatever it is sent; its URL.
    async fn serve_once(response: Vec<u8>, pause: Duration) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/doc.json",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            for piece in response.chunks(16 * 1024) {
                if socket.write_all(piece).await.is_err() {
                    return;
                }
                tokio::time::sleep(pause).await;
            }
        });
        url
    }

    fn loopback(timeout: Duration) -> HttpFetcher {
        fetcher(FetchPolicy {
            allow_private_addresses: true,
            insecure_allow_http: true,
            timeout,
            ..FetchPolicy::default()
        })
    }

    fn answer(head: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!("{head}\r\n\r\n").into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// A chunked body with no Content-Length: the cap applies as it streams.
    fn chunked(total: usize) -> Vec<u8> {
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b' '; 8192];
        for _ in 0..total / chunk.len() {
            bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    }

    #[tokio::test]
    async fn over_loopback_a_document_and_its_lifetime_are_read() {
        let body = br#"{"keys":[]}"#;
        let url = serve_once(
            answer(
                &format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: public, max-age=900\r\nAge: 100\r\nContent-Length: {}", body.len()),
                body,
            ),
            Duration::ZERO,
        )
        .await;
        let fetched = loopback(TIMEOUT).fetch_json(&url).await.unwrap();
        assert_eq!(
            (fetched.body.as_slice(), fetched.max_age),
            (&body[..], Some(800))
        );
    }

    #[tokio::test]
    async fn over_loopback_redirects_statuses_sizes_and_slowness_are_refused() {
        let redirect = serve_once(
            answer(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/x\r\nContent-Length: 0",
                b"",
            ),
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            loopback(TIMEOUT).fetch_json(&redirect).await.unwrap_err(),
            FetchError::Redirect
        );

        let missing = serve_once(
            answer("HTTP/1.1 404 Not Found\r\nContent-Length: 0", b""),
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            loopback(TIMEOUT).fetch_json(&missing).await.unwrap_err(),
            FetchError::Status(404)
        );

        let announced = serve_once(
            answer(
                "HTTP/1.1 200 OK\r\nContent-Length: 70000",
                &vec![b' '; 70_000],
            ),
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            loopback(TIMEOUT).fetch_json(&announced).await.unwrap_err(),
            FetchError::TooLarge(MAX_BODY)
        );

        let streamed = serve_once(chunked(1024 * 1024), Duration::ZERO).await;
        assert_eq!(
            loopback(TIMEOUT).fetch_json(&streamed).await.unwrap_err(),
            FetchError::TooLarge(MAX_BODY)
        );
        let small = serve_once(chunked(32 * 1024), Duration::ZERO).await;
        assert_eq!(
            loopback(TIMEOUT)
                .fetch_json(&small)
                .await
                .unwrap()
                .body
                .len(),
            32 * 1024
        );

        // A server that trickles its body past the deadline (a short one, for the test).
        let slow = serve_once(chunked(48 * 1024), Duration::from_millis(400)).await;
        assert_eq!(
            loopback(Duration::from_millis(500))
                .fetch_json(&slow)
                .await
                .unwrap_err(),
            FetchError::Timeout
        );
    }

    /// The resolver drops loopback answers: `localhost` resolves to nothing allowed, though a
    /// server listens there, and the error says no more than a failed connection does.
    #[tokio::test]
    async fn the_resolver_drops_loopback_answers_and_says_no_more_than_a_failed_connection() {
        let body = br#"{"keys":[]}"#;
        let served = serve_once(
            answer(
                &format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}",
                    body.len()
                ),
                body,
            ),
            Duration::ZERO,
        )
        .await;
        let port = served.port().unwrap();
        let strict = fetcher(FetchPolicy {
            insecure_allow_http: true,
            ..FetchPolicy::default()
        });
        let by_name = Url::parse(&format!("http://localhost:{port}/doc.json")).unwrap();
        let blocked = strict.fetch_json(&by_name).await.unwrap_err();
        // A closed port, with private addresses allowed: a refused connection.
        let closed = loopback(TIMEOUT)
            .fetch_json(&Url::parse("http://127.0.0.1:9/doc.json").unwrap())
            .await
            .unwrap_err();
        assert_eq!(blocked.to_string(), closed.to_string());
        assert!(matches!(blocked, FetchError::Unreachable(_)), "{blocked:?}");
        // The server is there: the same name with private addresses allowed reads it.
        assert!(loopback(TIMEOUT).fetch_json(&by_name).await.is_ok());
    }
}
