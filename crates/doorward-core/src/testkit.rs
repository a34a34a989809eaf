//! The contract test kit of the storage ports: the checks that every implementation of
//! [`Store`] must pass, published so that an application with a store of its own can prove it
//! correct with the same suite Doorward runs against its in-memory, SQLite and PostgreSQL
//! adapters. Compiled with the `testkit` feature only.
//!
//! # Running the suite against your store
//!
//! Enable the feature for your tests only:
//!
//! ```toml
//! [dev-dependencies]
//! doorward-core = { version = "0.1", features = ["testkit"] }
//! tokio = { version = "1", features = ["macros", "rt"] }
//! ```
//!
//! and give [`run_contract`] a function that makes a fresh, empty store; each check gets its
//! own:
//!
//! ```
//! use std::sync::Arc;
//!
//! use doorward_core::memory::MemoryStore; // your store instead
//! use doorward_core::ports::SharedStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // In your tests: #[tokio::test] async fn my_store_passes_the_contract() { … }
//! doorward_core::testkit::run_contract(|| async { Arc::new(MemoryStore::default()) as SharedStore })
//!     .await;
//! # }
//! ```
//!
//! A failed check panics with what the store did wrong; the test's captured output names the
//! check that was running. Each check is also a public function over `&dyn Store`, so that a
//! store can be brought up one check at a time. `examples/embedded/src/store.rs` in Doorward's
//! repository is a complete store written this way. What each method must guarantee is written
//! on the traits of [`crate::ports`]; the checks hold stores to it.
//!
//! # What the kit does not check
//!
//! The checks call the store one operation at a time. The atomicity that the ports require
//! under concurrency (of many redemptions of one code, exactly one is [`Redemption::Fresh`])
//! needs tests of your own that race real tasks against your real backend:
//! `crates/doorward-store/src/contract.rs` races 16 redemptions of one code, and [`fixtures`]
//! builds the records for such tests. Nor do the checks cover
//! [`StoreError::Unavailable`], nor that a failed redemption leaves its code unspent: only
//! your backend knows how to fail.
//!
//! [`Store`]: crate::ports::Store
//! [`Redemption::Fresh`]: crate::ports::Redemption::Fresh
//! [`StoreError::Unavailable`]: crate::ports::StoreError::Unavailable

use std::future::Future;

use doorward_proto::{RedirectUri, ScopeSet};

use crate::ports::{SharedStore, StoreResult};

mod accounts;
mod assertions;
mod clients;
mod delegation;
mod devices;
mod events;
mod grant_data;
mod invitations;
mod records;
mod redemption;
mod registration;
mod resources;
mod revocation;
mod second_factors;
mod steps;
mod throttle;

pub mod fixtures;
pub mod fuzz;

pub use accounts::{
    disabling_or_removing_a_user_ends_what_it_holds, users_are_listed_searched_and_updated,
};
pub use assertions::assertion_jtis_are_single_use;
pub use clients::{
    clients_insert_list_and_keep_their_rotation, deleting_a_client_revokes_its_grants,
};
pub use delegation::delegated_tokens_are_listed_per_user;
pub use devices::device_authorizations_are_answered_once;
pub use events::events_are_kept_in_order_filtered_and_purged;
pub use fixtures::{client, code, tokens, user, NOW};
pub use grant_data::grant_data_travels_with_the_family;
pub use invitations::invitations_are_spent_once_with_the_account;
pub use records::{
    absent_rows_are_not_errors, clients_by_id_and_key,
    keys_and_secrets_reseal_only_the_expected_value, server_secrets_are_created_once,
    sessions_are_found_and_deleted, signing_keys_are_created_once_per_generation,
    users_upsert_by_username,
};
pub use redemption::{
    codes_are_single_use, redemptions_store_their_tokens_and_sealed_answer,
    refresh_tokens_rotate_once_and_families_revoke, user_less_access_tokens,
};
pub use registration::{
    initial_tokens_are_spent_once_per_registration,
    registrations_keep_their_cap_and_go_with_their_client,
};
pub use resources::resources_stay_with_codes_and_tokens;
pub use revocation::{
    an_access_token_is_revoked_alone, consents_merge_list_and_revoke_tokens,
    expired_rows_are_purged, revoking_consent_spends_outstanding_codes,
    tokens_born_into_a_revoked_family_are_revoked,
};
pub use second_factors::{
    passkeys_are_kept_found_and_removed, second_factors_are_kept_and_spent_once,
};
pub use throttle::failures_count_restart_and_clear;

/// Runs every check, each against a fresh store from `make`. Panics at the first failure.
pub async fn run_contract<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SharedStore>,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {$({
            let store = make().await;
            println!("doorward contract check: {}", stringify!($check));
            $check(store.as_ref()).await;
        })*};
    }
    run!(
        clients_by_id_and_key,
        users_upsert_by_username,
        sessions_are_found_and_deleted,
        codes_are_single_use,
        refresh_tokens_rotate_once_and_families_revoke,
        redemptions_store_their_tokens_and_sealed_answer,
        an_access_token_is_revoked_alone,
        consents_merge_list_and_revoke_tokens,
        revoking_consent_spends_outstanding_codes,
        tokens_born_into_a_revoked_family_are_revoked,
        expired_rows_are_purged,
        server_secrets_are_created_once,
        signing_keys_are_created_once_per_generation,
        keys_and_secrets_reseal_only_the_expected_value,
        absent_rows_are_not_errors,
        failures_count_restart_and_clear,
        clients_insert_list_and_keep_their_rotation,
        deleting_a_client_revokes_its_grants,
        assertion_jtis_are_single_use,
        user_less_access_tokens,
        resources_stay_with_codes_and_tokens,
        initial_tokens_are_spent_once_per_registration,
        registrations_keep_their_cap_and_go_with_their_client,
        device_authorizations_are_answered_once,
        delegated_tokens_are_listed_per_user,
        grant_data_travels_with_the_family,
        users_are_listed_searched_and_updated,
        disabling_or_removing_a_user_ends_what_it_holds,
        events_are_kept_in_order_filtered_and_purged,
        invitations_are_spent_once_with_the_account,
        second_factors_are_kept_and_spent_once,
        passkeys_are_kept_found_and_removed,
    );
}

fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse(s).expect("the fixtures' scopes are valid")
}

fn uri(s: &str) -> RedirectUri {
    RedirectUri::parse(s).expect("the fixtures' URIs are valid")
}

/// A store call that must succeed.
trait Must<T> {
    fn must(self, call: &str) -> T;
}

impl<T> Must<T> for StoreResult<T> {
    #[track_caller]
    fn must(self, call: &str) -> T {
        match self {
            Ok(value) => value,
            Err(e) => panic!("{call} failed: {e} ({e:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::memory::MemoryStore;
    use crate::ports::SharedStore;

    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        super::run_contract(|| async { Arc::new(MemoryStore::default()) as SharedStore }).await;
    }
}
