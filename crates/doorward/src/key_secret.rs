//! The key-encryption secret that seals the private signing keys and the server's secret in
//! the database (XChaCha20-Poly1305, `doorward_core::jose`). Doorward never stores them in the
//! clear:
//!
//! 1. `DOORWARD_KEY_ENCRYPTION_SECRET`, else `keys.encryption_secret`, when set;
//! 2. else, for a SQLite file, the key file beside it (`<database>.key`), created on first
//!    start with 256 random bits, readable by its owner only. A copy of the database alone
//!    (a backup, a stray file) then reveals no key. Keep the two together;
//! 3. else, for `sqlite::memory:`, a random secret that lives as long as the process;
//! 4. for PostgreSQL, instances share the database and must share the secret: without one,
//!    `doorward` refuses to start.
//!
//! With a secret, keys stored in the clear are refused (someone who can write to the database
//! could plant one). Rows written before are sealed once by `doorward keys seal`, and
//! automatically when the key file is created (the first start after an upgrade), since
//! nothing was sealed before that moment.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use doorward_core::ports::{OsRandom, Random};
use doorward_proto::Secret;

/// The variable that gives the secret, over `keys.encryption_secret`.
pub const ENV: &str = "DOORWARD_KEY_ENCRYPTION_SECRET";

/// The secret in force and where it came from.
pub struct KeySecret {
    pub secret: Secret,
    pub source: Source,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// `keys.encryption_secret` or the environment.
    Configured,
    /// The key file beside the SQLite database; `created` on this start.
    KeyFile { path: PathBuf, created: bool },
    /// A random secret for an in-memory database.
    Ephemeral,
}

/// The secret for the database at `database`, `configured` when set (see the module
/// documentation).
pub fn resolve(configured: Option<&Secret>, database: &str) -> anyhow::Result<KeySecret> {
    if let Some(secret) = configured {
        return Ok(KeySecret {
            secret: Secret::new(secret.secret().to_owned()),
            source: Source::Configured,
        });
    }
    match sqlite_path(database) {
        Some(None) => Ok(KeySecret {
            secret: Secret::new(random_secret()),
            source: Source::Ephemeral,
        }),
        Some(Some(database)) => {
            let path = key_file_of(&database);
            let (secret, created) = key_file(&path)?;
            Ok(KeySecret {
                secret,
                source: Source::KeyFile { path, created },
            })
        }
        None => bail!(
            "the signing keys and the server secret in PostgreSQL are sealed with a secret that \
             every instance shares: set `keys.encryption_secret` or {ENV} (at least 16 \
             characters; keys stored in the clear before then are sealed by `doorward keys seal`)"
        ),
    }
}

/// `Some(Some(path))` for a SQLite file, `Some(None)` for `sqlite::memory:`, `None` otherwise.
fn sqlite_path(url: &str) -> Option<Option<PathBuf>> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    match rest.split('?').next().unwrap_or("") {
        "" | ":memory:" => Some(None),
        path => Some(Some(PathBuf::from(path))),
    }
}

/// `doorward.sqlite` → `doorward.sqlite.key`.
fn key_file_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Reads the key file, or creates it (owner-only) when it does not exist. Creation is atomic:
/// the secret is written to a private temporary file, then linked to its name, which fails if
/// another process linked its own first (then that one is read).
fn key_file(path: &Path) -> anyhow::Result<(Secret, bool)> {
    let shown = path.display();
    if !path.exists() {
        let temporary = PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
        let secret = random_secret();
        write_private(&temporary, &secret)
            .with_context(|| format!("cannot create the key file {shown}"))?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => return Ok((Secret::new(secret), true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create the key file {shown}"));
            }
        }
    }
    warn_if_shared(path);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {shown}"))?;
    let secret = text.trim();
    if secret.len() < 16 {
        bail!("the key file {shown} holds less than 16 characters");
    }
    Ok((Secret::new(secret.to_owned()), false))
}

fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the key file can be read by others than its owner: chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_: &Path) {}

/// 256 random bits, in hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRandom.fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_file_of_a_sqlite_database() {
        assert_eq!(
            sqlite_path("sqlite:data/d.sqlite?mode=rwc"),
            Some(Some(PathBuf::from("data/d.sqlite")))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/d.sqlite"),
            Some(Some(PathBuf::from("/var/lib/d.sqlite")))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), Some(None));
        assert_eq!(sqlite_path("postgres://h/db"), None);
        assert_eq!(
            key_file_of(Path::new("data/d.sqlite")),
            PathBuf::from("data/d.sqlite.key")
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("doorward-key-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.sqlite.key");
        let _ = std::fs::remove_file(&path);
        let (first, created) = key_file(&path).unwrap();
        assert!(created);
        assert_eq!(first.secret().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = key_file(&path).unwrap();
        assert!(!created);
        assert_eq!(first.secret(), second.secret());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
