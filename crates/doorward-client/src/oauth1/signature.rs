//! RFC 5849 §3.4: the signature base string and the three signature methods, as pure
//! functions (no clock, no randomness, no I/O), so that they can be checked against the RFC's
//! own examples.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha1::Sha1;
use url::Url;

/// How a request is signed (RFC 5849 §3.4).
#[derive(Clone)]
pub enum SignatureMethod {
    /// `HMAC-SHA1` (§3.4.2): keyed with the client secret and the token secret.
    HmacSha1,
    /// `RSA-SHA1` (§3.4.3): RSASSA-PKCS1-v1_5 with SHA-1 and the client's private key; the
    /// provider holds the public key, and the client secret is not used.
    RsaSha1(Box<RsaPrivateKey>),
    /// `PLAINTEXT` (§3.4.4): the secrets themselves. Only over TLS (§3.4.4: "MUST NOT be used
    /// without transport-layer security").
    Plaintext,
}

impl std::fmt::Debug for SignatureMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl SignatureMethod {
    /// `RSA-SHA1` with a PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    pub fn rsa_sha1_from_pem(pem: &str) -> Result<Self, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map(|key| Self::RsaSha1(Box::new(key)))
            .map_err(|e| format!("not an RSA private key in PEM: {e}"))
    }

    /// The value of `oauth_signature_method`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC-SHA1",
            Self::RsaSha1(_) => "RSA-SHA1",
            Self::Plaintext => "PLAINTEXT",
        }
    }

    /// The `oauth_signature` value for `base_string` (§3.4.2–3.4.4). `client_secret` and
    /// `token_secret` are the raw secrets (the token secret empty when there is no token).
    pub fn sign(&self, base_string: &str, client_secret: &str, token_secret: &str) -> String {
        let key = format!("{}&{}", encode(client_secret), encode(token_secret));
        match self {
            Self::HmacSha1 => {
                let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(base_string.as_bytes());
                STANDARD.encode(mac.finalize().into_bytes())
            }
            Self::RsaSha1(private) => {
                let signer = SigningKey::<Sha1>::new((**private).clone());
                STANDARD.encode(signer.sign(base_string.as_bytes()).to_bytes())
            }
            Self::Plaintext => key,
        }
    }
}

/// RFC 5849 §3.6: percent-encoding of every octet of the UTF-8 form except the unreserved
/// characters `A-Z a-z 0-9 - . _ ~`, with upper-case hex digits.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// RFC 5849 §3.4.1.2: the base string URI — scheme and host lower-cased, the port left out
/// when it is the scheme's default, the path kept, no query and no fragment.
pub fn base_string_uri(url: &Url) -> String {
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = match (url.port(), scheme.as_str()) {
        (Some(80), "http") | (Some(443), "https") | (None, _) => String::new(),
        (Some(port), _) => format!(":{port}"),
    };
    let path = if url.path().is_empty() {
        "/"
    } else {
        url.path()
    };
    format!("{scheme}://{host}{port}{path}")
}

/// RFC 5849 §3.4.1.3.2: the normalized parameters — each name and value encoded, sorted by
/// name then value (byte order of the encoded forms), joined as `name=value` with `&`.
/// `oauth_signature` and `realm` must not be among `params` (the caller leaves them out).
pub fn normalize(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 5849 §3.4.1.1: `METHOD&base-string-URI&normalized-parameters`, each part encoded.
/// `params` are the request's parameters from every source (§3.4.1.3.1): the query, a form
/// body, and the `oauth_*` protocol parameters (without `oauth_signature`).
pub fn base_string(method: &str, url: &Url, params: &[(String, String)]) -> String {
    format!(
        "{}&{}&{}",
        encode(&method.to_ascii_uppercase()),
        encode(&base_string_uri(url)),
        encode(&normalize(params))
    )
}

/// The query parameters of `url`, decoded (`+` as a space, as in a form: §3.4.1.3.1 reads the
/// query as `application/x-www-form-urlencoded`).
pub fn query_params(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}
