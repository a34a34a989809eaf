//! OAuth 1.0a signing (RFC 5849) against the RFC's own examples, and the older OAuth Core 1.0
//! Appendix A example every implementation checks; the RSA-SHA1 signature verified with the
//! public key. (A real provider, built on oauthlib, is in tests/interop/test_oauth1.py.)

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use url::Url;

use crate::oauth1::{
    base_string, base_string_uri, encode, Oauth1Client, Oauth1Config, Oauth1Error, Placement,
    SignatureMethod, TemporaryCredentials,
};
use crate::Method;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn percent_encoding_is_section_3_6() {
    assert_eq!(encode("Ladies + Gentlemen"), "Ladies%20%2B%20Gentlemen");
    assert_eq!(encode("An encoded string!"), "An%20encoded%20string%21");
    assert_eq!(encode("Dogs, Cats & Mice"), "Dogs%2C%20Cats%20%26%20Mice");
    assert_eq!(encode("☃"), "%E2%98%83");
    assert_eq!(encode("-._~azAZ09"), "-._~azAZ09");
}

#[test]
fn base_string_uri_is_section_3_4_1_2() {
    let uri = |s: &str| base_string_uri(&Url::parse(s).unwrap());
    assert_eq!(
        uri("HTTP://EXAMPLE.COM:80/r%20v/X?id=123"),
        "http://example.com/r%20v/X"
    );
    assert_eq!(
        uri("https://www.example.net:8080/?q=1"),
        "https://www.example.net:8080/"
    );
    assert_eq!(uri("https://example.net:443/a"), "https://example.net/a");
}

/// RFC 5849 §3.4.1.1: the example request's signature base string, from the query, the form
/// body and the protocol parameters (`realm` left out).
#[test]
fn the_base_string_of_section_3_4_1_1() {
    let url = Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    params.extend(pairs(&[
        ("c2", ""),
        ("a3", "2 q"),
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
    ]));
    assert_eq!(
        base_string("post", &url, &params),
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
    );
}

/// OAuth Core 1.0 Appendix A.5: the photo example, HMAC-SHA1.
#[test]
fn hmac_sha1_of_the_oauth_core_example() {
    let url =
        Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
    let mut params: Vec<(String, String)> =
        pairs(&[("file", "vacation.jpg"), ("size", "original")]);
    params.extend(pairs(&[
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1191242096"),
        ("oauth_nonce", "kllo9940pd9333jh"),
        ("oauth_version", "1.0"),
    ]));
    let base = base_string("GET", &url, &params);
    assert_eq!(
        base,
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
    );
    assert_eq!(
        SignatureMethod::HmacSha1.sign(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
        "tR3+Ty81lMeYAr/Fid0kMTYa/WM="
    );
}

fn photos_client(
    method: SignatureMethod,
    placement: Placement,
    nonce: &'static str,
    at: i64,
) -> Oauth1Client {
    let config = Oauth1Config::new(
        "dpf43f3p2l4k3l03",
        "kd94hf93k423kf44",
        "https://photos.example.net/initiate".parse().unwrap(),
        "https://photos.example.net/authorize".parse().unwrap(),
        "https://photos.example.net/token".parse().unwrap(),
    )
    .with_method(method)
    .with_placement(placement)
    .with_realm("Photos");
    Oauth1Client::new(config)
        .unwrap()
        .with_clock_and_nonce(move || at, move || nonce.to_owned())
}

fn header(request: &crate::RawRequest) -> String {
    request.headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// RFC 5849 §1.2: Jane's printer. The temporary-credentials request in PLAINTEXT, and the
/// photo request in HMAC-SHA1 (the realm is not signed, `oauth_version` is optional and
/// this client sends it: the §1.2 request has none, so it is compared without).
#[test]
fn the_requests_of_section_1_2() {
    let client = photos_client(
        SignatureMethod::Plaintext,
        Placement::Header,
        "wIjqoS",
        137131200,
    );
    let request = client
        .signed(
            Method::POST,
            &client.config().request_token_url.clone(),
            &[],
            None,
            &[("oauth_callback", "http://printer.example.com/ready")],
        )
        .unwrap();
    let h = header(&request);
    assert!(
        h.starts_with("OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\""),
        "{h}"
    );
    assert!(h.contains("oauth_signature_method=\"PLAINTEXT\""), "{h}");
    assert!(
        h.contains("oauth_callback=\"http%3A%2F%2Fprinter.example.com%2Fready\""),
        "{h}"
    );
    assert!(
        h.ends_with("oauth_signature=\"kd94hf93k423kf44%26\""),
        "{h}"
    );

    // The photo request, by the base string of its parameters (no oauth_version in §1.2).
    let url =
        Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
    let mut params = pairs(&[("file", "vacation.jpg"), ("size", "original")]);
    params.extend(pairs(&[
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131202"),
        ("oauth_nonce", "chapoH"),
    ]));
    let base = base_string("GET", &url, &params);
    assert_eq!(
        SignatureMethod::HmacSha1.sign(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
        "MdpQcU8iPSUjWoN/UDMsK2sui9I="
    );
}

#[test]
fn rsa_sha1_verifies_with_the_public_key_and_plaintext_needs_tls() {
    let mut rng = rand::rngs::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
    let public = private.to_public_key();
    let base = "GET&http%3A%2F%2Fexample.com%2F&a%3Db";
    let signature = SignatureMethod::RsaSha1(Box::new(private)).sign(base, "ignored", "");
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature).unwrap();
    VerifyingKey::<sha1::Sha1>::new(public)
        .verify(
            base.as_bytes(),
            &Signature::try_from(raw.as_slice()).unwrap(),
        )
        .expect("a valid RSASSA-PKCS1-v1_5 SHA-1 signature");

    let client = photos_client(SignatureMethod::Plaintext, Placement::Header, "n", 1);
    let http = Url::parse("http://photos.example.net/photos").unwrap();
    assert!(matches!(
        client.signed(Method::GET, &http, &[], None, &[]),
        Err(Oauth1Error::PlaintextWithoutTls)
    ));
}

#[test]
fn body_and_query_placements() {
    let client = photos_client(SignatureMethod::HmacSha1, Placement::Body, "n1", 5);
    let url = Url::parse("https://photos.example.net/upload?x=1").unwrap();
    let form = pairs(&[("title", "a b")]);
    let request = client
        .signed(Method::POST, &url, &form, Some(("tok", "sec")), &[])
        .unwrap();
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert!(
        body.starts_with("title=a+b&oauth_consumer_key=dpf43f3p2l4k3l03"),
        "{body}"
    );
    assert!(
        body.contains("oauth_token=tok") && body.contains("oauth_signature="),
        "{body}"
    );
    assert!(!request.headers.contains_key("authorization"));
    assert!(matches!(
        client.signed(Method::GET, &url, &[], None, &[]),
        Err(Oauth1Error::BodyPlacement)
    ));

    let client = photos_client(SignatureMethod::HmacSha1, Placement::Query, "n2", 5);
    let request = client
        .signed(Method::GET, &url, &[], Some(("tok", "sec")), &[])
        .unwrap();
    let query: Vec<(String, String)> = request
        .url
        .query_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(query[0], ("x".into(), "1".into()));
    assert!(query.iter().any(|(n, _)| n == "oauth_signature"));
    // The signature covers x=1 and the oauth parameters: recompute it.
    let signed: Vec<(String, String)> = query
        .iter()
        .filter(|(n, _)| n != "oauth_signature")
        .cloned()
        .collect();
    let base = base_string("GET", &url, &signed);
    let expected = SignatureMethod::HmacSha1.sign(&base, "kd94hf93k423kf44", "sec");
    assert!(query.contains(&("oauth_signature".into(), expected)));
}

#[test]
fn the_callback_must_carry_this_temporary_token() {
    let temporary = TemporaryCredentials {
        token: "hh5s93j4hdidpola".into(),
        secret: doorward_proto::Secret::new("hdhd0244k9j7ao03"),
    };
    assert_eq!(
        temporary
            .verifier_from_callback("oauth_token=hh5s93j4hdidpola&oauth_verifier=hfdp7dh39dks9884")
            .unwrap(),
        "hfdp7dh39dks9884"
    );
    assert!(matches!(
        temporary.verifier_from_callback("?oauth_token=other&oauth_verifier=v"),
        Err(Oauth1Error::Callback(_))
    ));
    assert!(matches!(
        temporary.verifier_from_callback("oauth_token=hh5s93j4hdidpola"),
        Err(Oauth1Error::Callback(_))
    ));
    assert!(matches!(
        temporary.verifier_from_callback("oauth_problem=user_refused"),
        Err(Oauth1Error::Denied(p)) if p == "user_refused"
    ));
}
