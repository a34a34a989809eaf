//! Back-channel requests to the token, revocation and introspection endpoints, with the
//! configured client authentication (RFC 6749 §2.3, §4.1.3; RFC 7523 §2.2 client assertions).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use doorward_proto::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Map, Value};
use url::Url;

use super::{Client, Endpoint};
use crate::config::{AuthMethod, BasicEncoding, BodyFormat};
use crate::error::TokenError;
use crate::http::{Channel, Http, Method, RawResponse};
use crate::state::random_token;
use crate::token::{assume_bearer, parse_token_response, Token};

impl Client {
    /// A token-endpoint call (code or refresh grant).
    pub(super) async fn token_request(
        &self,
        form: Vec<(&str, String)>,
    ) -> Result<Token, TokenError> {
        let url = self.endpoint(Endpoint::Token).await?;
        let mut response = self.proven_post(url, form).await?;
        if self.inner.config.lenient_token_type {
            assume_bearer(&mut response);
        }
        parse_token_response(&response, self.now())
    }

    /// POSTs `form` to a token, revocation or introspection endpoint with client
    /// authentication.
    pub(super) async fn authenticated_post(
        &self,
        url: Url,
        form: Vec<(&str, String)>,
    ) -> Result<RawResponse, TokenError> {
        let request = self.authenticated_request(url, form).await?;
        Ok(self.inner.http.send(Channel::Token, request).await?)
    }

    /// [`Client::authenticated_post`] to the token or pushed-request endpoint, with a DPoP
    /// proof when the client has a key (RFC 9449 §5); a `use_dpop_nonce` answer is retried
    /// once with the nonce it carries (§8).
    pub(super) async fn proven_post(
        &self,
        url: Url,
        form: Vec<(&str, String)>,
    ) -> Result<RawResponse, TokenError> {
        let Some(key) = &self.inner.dpop else {
            return self.authenticated_post(url, form).await;
        };
        let mut attempt = 0;
        loop {
            let mut request = self
                .authenticated_request(url.clone(), form.clone())
                .await?;
            let nonce = self.inner.dpop_nonces.get(&url);
            let proof = key
                .proof("POST", &url, None, nonce.as_deref(), self.now())
                .map_err(|e| TokenError::Configuration(format!("the DPoP proof: {e}")))?;
            if let Some(value) = crate::dpop::header_value(&proof) {
                request.headers.insert("dpop", value);
            }
            let response = self.inner.http.send(Channel::Token, request).await?;
            self.inner.dpop_nonces.remember(&url, &response.headers);
            attempt += 1;
            let wants_nonce = crate::dpop::token_endpoint_wants_nonce(
                response.status.as_u16(),
                &response.body,
                &response.headers,
            );
            if !(wants_nonce && attempt == 1) {
                return Ok(response);
            }
        }
    }

    /// The request of [`Client::authenticated_post`].
    async fn authenticated_request(
        &self,
        url: Url,
        mut form: Vec<(&str, String)>,
    ) -> Result<crate::http::RawRequest, TokenError> {
        let config = &self.inner.config;
        let mut request = Http::request(Method::POST, url);
        let secret = config.client_secret.as_ref().map(Secret::secret);
        let missing_secret = || TokenError::Configuration("no client secret is configured".into());
        match &config.auth_method {
            AuthMethod::ClientSecretBasic => {
                let secret = secret.ok_or_else(missing_secret)?;
                let credentials = match config.basic_encoding {
                    BasicEncoding::FormUrlEncoded => {
                        format!("{}:{}", form_encode(&config.client_id), form_encode(secret))
                    }
                    BasicEncoding::Raw => format!("{}:{secret}", config.client_id),
                };
                let value = format!("Basic {}", STANDARD.encode(credentials));
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    TokenError::Configuration(
                        "the client credentials are not valid in a header".into(),
                    )
                })?;
                request.headers.insert(AUTHORIZATION, value);
            }
            AuthMethod::ClientSecretPost => {
                form.push(("client_id", config.client_id.clone()));
                form.push((
                    "client_secret",
                    secret.ok_or_else(missing_secret)?.to_owned(),
                ));
            }
            AuthMethod::ClientSecretJwt => {
                let key = EncodingKey::from_secret(secret.ok_or_else(missing_secret)?.as_bytes());
                let assertion = self.client_assertion(Algorithm::HS256, None, &key).await?;
                push_assertion(&mut form, &config.client_id, assertion);
            }
            AuthMethod::PrivateKeyJwt(private) => {
                let assertion = self
                    .client_assertion(private.alg, private.kid.clone(), &private.key)
                    .await?;
                push_assertion(&mut form, &config.client_id, assertion);
            }
            AuthMethod::None => form.push(("client_id", config.client_id.clone())),
        }
        let (content_type, body) = match config.body_format {
            BodyFormat::Form => (
                "application/x-www-form-urlencoded",
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish()
                    .into_bytes(),
            ),
            BodyFormat::Json => (
                "application/json",
                serde_json::to_vec(
                    &form
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                        .collect::<Map<_, _>>(),
                )
                .unwrap_or_default(),
            ),
        };
        request
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        request.body = body;
        Ok(request)
    }

    /// A client assertion (RFC 7523 §3): `iss` = `sub` = client id, `aud` = the token
    /// endpoint, a fresh `jti`, valid one minute.
    async fn client_assertion(
        &self,
        alg: Algorithm,
        kid: Option<String>,
        key: &EncodingKey,
    ) -> Result<String, TokenError> {
        let audience = self.endpoint(Endpoint::Token).await?;
        let now = self.now();
        let claims = serde_json::json!({
            "iss": self.inner.config.client_id,
            "sub": self.inner.config.client_id,
            "aud": audience.as_str(),
            "jti": random_token(),
            "iat": now,
            "exp": now + 60,
        });
        let mut header = Header::new(alg);
        header.kid = kid;
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| {
            TokenError::Configuration(format!("the client assertion could not be signed: {e}"))
        })
    }
}

fn push_assertion(form: &mut Vec<(&str, String)>, client_id: &str, assertion: String) {
    form.push(("client_id", client_id.to_owned()));
    form.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
    ));
    form.push(("client_assertion", assertion));
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
