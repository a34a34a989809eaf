//! The application decides who the user is: the [`Authenticator`] it gives the provider, what
//! it is asked ([`LoginRequest`]) and what it answers ([`Authentication`]). The protocol
//! meaning of its answers (`login_required` under `prompt=none`, `access_denied`, a provider
//! session) is decided by the engine (`doorward_core::embedding`); the authorization endpoint
//! only asks and carries the answer to the browser.

use std::future::Future;
use std::pin::Pin;

use axum::http::HeaderMap;
use axum::response::Response;

pub use doorward_core::embedding::{AppUser, Decision, GrantTerms};

/// Decides who the user is when an authorization needs a signed-in user (TxOAuth2's
/// `onAuthenticate`). Called instead of Doorward's own sign-in page.
///
/// The application's answer is either a user it already knows (its own session cookie is in
/// [`LoginRequest::headers`]), or a page of its own (its login page, which later calls
/// [`crate::Provider::resume`] with the grant id), or a refusal:
///
/// ```
/// use std::{future::Future, pin::Pin, sync::Arc};
/// use axum::{body::Body, http::{header, Request}, Router};
/// use doorward_axum::{AppUser, Authentication, Authenticator, LoginRequest, Provider};
/// use doorward_axum::{ClientSpec, Grants, RedirectUri, Secret};
/// use tower::ServiceExt as _;
///
/// struct ShopLogin;
/// impl Authenticator for ShopLogin {
///     fn authenticate<'a>(&'a self, request: LoginRequest<'a>)
///         -> Pin<Box<dyn Future<Output = Authentication> + Send + 'a>> {
///         Box::pin(async move {
///             let cookies = request.headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
///             match cookies.and_then(|c| c.strip_prefix("shop_user=")) {
///                 // Signed in at the shop: that user (a real app checks its session store).
///                 Some(name) => Authentication::User(AppUser {
///                     id: name.to_owned(),
///                     display_name: name.to_owned(),
///                     email: None,
///                     email_verified: false,
///                 }),
///                 // Not signed in: the shop's login page, which resumes the grant.
///                 None => Authentication::Redirect(format!("/login?grant={}", request.grant_id)),
///             }
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Provider::builder("https://shop.example/auth")
///     .store(Arc::new(doorward_core::memory::MemoryStore::default()))
///     .grants(Grants::CODE_AND_REFRESH)
///     .authenticator(ShopLogin)
/// #   .client(ClientSpec {
/// #       key: "app@clients".into(),
/// #       display_name: "App".into(),
/// #       app_uri: "https://app.example".into(),
/// #       redirect_uris: vec![RedirectUri::parse("https://app.example/cb")?],
/// #       secret: Secret::new("a long random secret"),
/// #       policy: Default::default(),
/// #   })
/// #   .config(doorward_axum::EngineConfig {
/// #       issuer: "https://shop.example/auth".into(),
/// #       hash_cost: doorward_core::passwords::HashCost::InsecureFastForTests,
/// #       ..Default::default()
/// #   })
///     .build()
///     .await?;
/// let app = provider.mount(Router::new());
/// let authorize = "/auth/oauth/authorize?response_type=code&client_id=app%40clients\
///                  &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=xyz";
/// let response = app.oneshot(Request::get(authorize).body(Body::empty())?).await?;
/// assert_eq!(response.status(), 303);
/// let location = response.headers()[header::LOCATION].to_str()?;
/// assert!(location.starts_with("/login?grant="), "{location}");
/// # Ok(()) }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Authentication> + Send + 'a>>;
}

/// The authorization waiting for a user.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginRequest<'a> {
    /// Hand it back to [`Provider::resume`] after your own login page.
    pub grant_id: &'a str,
    /// The browser's request headers (your session cookie is there).
    pub headers: &'a HeaderMap,
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub scopes: Vec<String>,
    /// OIDC `login_hint`.
    pub login_hint: Option<&'a str>,
    /// The request asks the user to sign in again (`prompt=login`, `max_age`).
    pub reauthenticate: bool,
}

/// What the application answers.
#[derive(Debug)]
#[non_exhaustive]
pub enum Authentication {
    /// This user is signed in at the application: the flow goes on (to consent).
    User(AppUser),
    /// Send the browser to this URL (the application's login page, which keeps the grant id and
    /// calls [`Provider::resume`]).
    Redirect(String),
    /// Answer this page instead (it calls [`Provider::resume`] later, the same way).
    Page(Response),
    /// The user may not sign in here: the client gets `access_denied`.
    Deny,
}

/// What an authorization waiting on the application's page asks for ([`Provider::pending`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PendingGrant {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub login_hint: Option<String>,
}
