//! Unit tests of the relying-party library, one file per subject. No network besides the
//! loopback servers the tests start; the helpers they share are in `support`.

mod support;

mod callbacks;
mod client_credentials;
mod discovery_and_registry;
mod http_layer;
mod id_token_claims;
mod id_token_signatures;
mod jwt_access_tokens;
mod key_rotation;
mod oauth1;
mod odd_providers;
mod subject_and_limits;
mod token_responses;
