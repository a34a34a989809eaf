//! Where `doorward login` keeps tokens: the token file (JSON, 0600 in a 0700 directory, written
//! whole through a renamed temporary file) lists the entries and their providers; each token is
//! in the OS keyring when one answers (the Secret Service on the session's D-Bus: GNOME
//! Keyring, KWallet, KeePassXC), else in the file itself.
//!
//! A keyring entry is named by the service `doorward` and the user `<token file>#<entry>`, so
//! two token files never share one. `--no-keyring` (or `DOORWARD_NO_KEYRING`) keeps the token in
//! the file even where a keyring answers.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use doorward_client::Token;
use serde::{Deserialize, Serialize};

use super::{Entry, Target};

/// The keyring service name of every entry.
const SERVICE: &str = "doorward";

/// An entry as the file holds it: the token itself, or a mark that the keyring has it.
#[derive(Serialize, Deserialize)]
struct Stored {
    provider: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<Token>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    keyring: bool,
}

/// Where a token went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    File,
    Keyring,
}

/// The token file and its entries.
pub(super) struct Kept {
    path: PathBuf,
    entries: BTreeMap<String, Stored>,
}

impl Kept {
    /// The token file at `path` (none yet: no entries). The path is made absolute: it names
    /// the file's keyring entries, which must not depend on the working directory.
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let path = &std::path::absolute(path)
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        let entries = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a Doorward token file", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The entry to use: `name`, or the only one.
    pub(super) fn pick(&self, name: Option<&str>) -> anyhow::Result<String> {
        if let Some(name) = name {
            return Ok(name.to_owned());
        }
        match self.entries.keys().collect::<Vec<_>>().as_slice() {
            [only] => Ok((*only).clone()),
            [] => bail!(
                "no token is kept in {}: run doorward login",
                self.path.display()
            ),
            several => bail!(
                "several tokens are kept ({}): name one with --name",
                several
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Whether the token of `name` is in the keyring.
    pub(super) fn in_keyring(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|s| s.keyring)
    }

    /// The entry `name`, its token read from the keyring when it is there.
    pub(super) async fn get(&self, name: &str) -> anyhow::Result<Entry> {
        let stored = self
            .entries
            .get(name)
            .ok_or_else(|| anyhow!("no token named {name:?} in {}", self.path.display()))?;
        let token = match (&stored.token, stored.keyring) {
            (Some(token), _) => token.clone(),
            (None, true) => {
                let secret = keyring_call(self.user(name), |entry| entry.get_password())
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "the token {name:?} is not in the keyring ({e}): run doorward login"
                        )
                    })?;
                serde_json::from_str(&secret)
                    .with_context(|| format!("the keyring's token {name:?} is not readable"))?
            }
            (None, false) => bail!("the entry {name:?} has no token: run doorward login"),
        };
        Ok(Entry {
            provider: stored.provider.clone(),
            token,
        })
    }

    /// Keeps `entry` as `name`: its token in the keyring when `keyring` allows it and one
    /// answers, else in the file; then writes the file. Where it went.
    pub(super) async fn put(
        &mut self,
        name: &str,
        entry: Entry,
        keyring: bool,
    ) -> anyhow::Result<Place> {
        let was_in_keyring = self.entries.get(name).is_some_and(|s| s.keyring);
        let place = if keyring {
            let secret = serde_json::to_string(&entry.token)?;
            match keyring_call(self.user(name), move |e| e.set_password(&secret)).await {
                Ok(()) => Place::Keyring,
                Err(why) => {
                    tracing::debug!(error = %why, "no OS keyring: the token goes in the file");
                    Place::File
                }
            }
        } else {
            Place::File
        };
        if place == Place::File && was_in_keyring {
            let _ = keyring_call(self.user(name), |e| e.delete_credential()).await;
        }
        self.entries.insert(
            name.to_owned(),
            Stored {
                provider: entry.provider,
                token: (place == Place::File).then_some(entry.token),
                keyring: place == Place::Keyring,
            },
        );
        self.write()?;
        Ok(place)
    }

    /// Forgets `name`, in the keyring too.
    pub(super) async fn remove(&mut self, name: &str) -> anyhow::Result<()> {
        if let Some(stored) = self.entries.remove(name) {
            if stored.keyring {
                keyring_call(self.user(name), |e| e.delete_credential())
                    .await
                    .map_err(|e| anyhow!("cannot remove the token from the keyring: {e}"))?;
            }
        }
        self.write()
    }

    fn user(&self, name: &str) -> String {
        format!("{}#{name}", self.path.display())
    }

    /// Writes the file whole, readable by the user only, through a temporary file renamed
    /// over it.
    fn write(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = &self.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let temporary = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.write_all(&serde_json::to_vec_pretty(&self.entries)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// One keyring operation on the entry of `user`, off the async threads (the keyring library
/// runs the D-Bus exchange to completion itself).
async fn keyring_call<T: Send + 'static>(
    user: String,
    call: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> Result<T, keyring::Error> {
    tokio::task::spawn_blocking(move || {
        let entry = keyring::Entry::new(SERVICE, &user)?;
        call(&entry)
    })
    .await
    .unwrap_or_else(|e| Err(keyring::Error::PlatformFailure(Box::new(e))))
}
