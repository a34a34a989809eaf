//! The engine's side of added claims ([`crate::claims_hook`]): the hook registered, and the
//! claims of the client, the user and the hook merged into an answer, reserved ones dropped.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::claims_hook::{is_reserved, ClaimsHook, ClaimsRequest};
use crate::error::Error;
use crate::Engine;

impl Engine {
    /// Adds the application's claims to every ID token, JWT access token, introspection
    /// answer and UserInfo answer (module documentation).
    pub fn with_claims_hook(mut self, hook: Arc<dyn ClaimsHook>) -> Self {
        self.claims_hook = Some(hook);
        self
    }

    /// The claims the three sources add for `request`, reserved names left out.
    pub(crate) async fn added_claims(
        &self,
        request: ClaimsRequest<'_>,
    ) -> Result<Map<String, Value>, Error> {
        let mut added = request.client.policy.claims.clone();
        // A user's claims (roles, tenant…) go only to the clients the operator registered,
        // never to one that registered itself or that a metadata document describes.
        if let Some(user) = request.user.filter(|_| request.client.is_verified()) {
            added.extend(user.claims.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(hook) = &self.claims_hook {
            added.extend(hook.claims(request).await?);
        }
        added.retain(|name, _| !is_reserved(name));
        Ok(added)
    }

    /// Puts the added claims for `request` into `claims`, none replacing one already there.
    pub(crate) async fn add_claims(
        &self,
        claims: &mut Map<String, Value>,
        request: ClaimsRequest<'_>,
    ) -> Result<(), Error> {
        for (name, value) in self.added_claims(request).await? {
            claims.entry(name).or_insert(value);
        }
        Ok(())
    }
}
