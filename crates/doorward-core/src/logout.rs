//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the checks of a logout
//! request. The confirmation page and the signing out are the adapter's.

use serde::Deserialize;

use crate::error::{EndSessionError, Error};
use crate::model::Client;
use crate::Engine;

/// A checked RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0 §2, §3).
#[derive(Debug)]
pub struct EndSession {
    /// The client that asked, when it said who it is.
    pub client: Option<Client>,
    /// Where to send the browser afterwards: the registered `post_logout_redirect_uri` with
    /// `state`, or `None` for Doorward's own page.
    pub redirect: Option<String>,
}

#[derive(Deserialize)]
struct HintClaims {
    aud: Audience,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Engine {
    /// Checks a logout request. The `id_token_hint` may be expired (§2: the OP "SHOULD accept
    /// ID Tokens when the RP identified by the ID Token's aud claim … had a recent session",
    /// even when `exp` has passed) but must carry this server's signature. The
    /// `post_logout_redirect_uri` must be registered for the client, compared as an exact
    /// string (§3, RFC 9700 §4.11: no open redirect).
    pub async fn check_end_session(
        &self,
        params: &[(String, String)],
    ) -> Result<EndSession, Error> {
        let single = |name: &str| {
            params
                .iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let refuse = |e: EndSessionError| Error::EndSession(e);
        let hinted = match single("id_token_hint") {
            None => None,
            // An ID token signed by a key removed since (rotation) cannot be checked: it
            // counts as no hint, so that signing out still works days after a rotation; a
            // post_logout_redirect_uri then needs client_id. A bad signature is refused.
            Some(hint) => match self.verify_own_jws::<HintClaims>(hint, true) {
                Ok(claims) => Some(match claims.aud {
                    Audience::One(aud) => aud,
                    Audience::Many(mut auds) => auds.drain(..).next().unwrap_or_default(),
                }),
                Err(crate::jose::JwsError::UnknownKey) => None,
                Err(e) => return Err(refuse(EndSessionError::BadHint(e))),
            },
        };
        let find = |id: String| async move {
            self.find_client(&id)
                .await?
                .ok_or(refuse(EndSessionError::UnknownClient))
        };
        let client = match (single("client_id"), hinted) {
            (Some(id), Some(aud)) => {
                let client = find(id.to_owned()).await?;
                let by_hint = find(aud).await?;
                if client.id != by_hint.id {
                    return Err(refuse(EndSessionError::ClientMismatch));
                }
                Some(client)
            }
            (Some(id), None) => Some(find(id.to_owned()).await?),
            (None, Some(aud)) => Some(find(aud).await?),
            (None, None) => None,
        };
        let redirect = match single("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let client = client.as_ref().ok_or(refuse(EndSessionError::NoClient))?;
                let registered = client
                    .policy
                    .post_logout_redirect_uris
                    .iter()
                    .find(|u| u.as_str() == uri)
                    .ok_or(refuse(EndSessionError::UnregisteredRedirect))?;
                let state = single("state").map(|s| ("state", s));
                Some(registered.with_params(state))
            }
        };
        Ok(EndSession {
            client: client.map(std::sync::Arc::unwrap_or_clone),
            redirect,
        })
    }
}
