//! Where certificates, keys and the account live.
//!
//! # The contract of [`Storage`]
//!
//! * **Keys** are `/`-separated relative names (`current/cert.pem`); the names
//!   the service uses are defined in one place, [`keys`].
//! * **`store` is atomic**: a concurrent or later `load` sees either the old or
//!   the new value, never a mix; after `store` returns, `load` sees the new
//!   value (also after a crash).
//! * **`load` of a missing key** is [`StorageError::NotFound`], distinct from
//!   every other failure.
//! * **`delete`** of a missing key succeeds. **`list(prefix)`** returns every
//!   key under the prefix.
//! * **Locks are leases**: [`Storage::lock`] returns a guard or
//!   [`StorageError::Locked`]; a lease expires after its TTL unless
//!   [`StorageLock::refresh`] is called, so a dead holder cannot block others
//!   forever; dropping the guard releases it. Callers re-check state after
//!   taking a lock (another node may have done the work meanwhile).
//!
//! Methods are blocking and short (small files); call them from async code via
//! `spawn_blocking` when the storage may be slow.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use site_encrypt_proto::fs::{create_private_dir, write_atomic};

/// The storage keys the service uses: naming lives here and nowhere else.
pub mod keys {
    /// The ACME account credentials (JSON, secret).
    pub const ACCOUNT: &str = "account.json";
    /// The current certificate chain (PEM).
    pub const CERT: &str = "current/cert.pem";
    /// The current certificate's private key (PEM, secret).
    pub const KEY: &str = "current/key.pem";
    /// Prefix of archived earlier certificates.
    pub const ARCHIVE: &str = "archive/";

    /// The archive folder for a certificate replaced at `unix` seconds.
    pub fn archived(unix: i64, file: &str) -> String {
        format!("{ARCHIVE}{unix}/{file}")
    }
}

/// Errors of a [`Storage`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The key does not exist.
    #[error("{0} not found in storage")]
    NotFound(String),
    /// The lock is held by someone else until the given time.
    #[error("lock {name} is held (lease ends in {remaining:?})")]
    Locked {
        /// The lock name.
        name: String,
        /// Time left on the holder's lease.
        remaining: Duration,
    },
    /// The key is not a safe relative name.
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    /// An I/O error.
    #[error("storage I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A held lease; dropping it releases the lock.
pub trait StorageLock: Send + Sync {
    /// Extends the lease by its TTL from now.
    fn refresh(&self) -> Result<(), StorageError>;
}

/// Persistent key/value storage with leases. See the module docs for the contract.
pub trait Storage: Send + Sync + 'static {
    /// Reads a value.
    fn load(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    /// Writes a value atomically (private permissions where the backend has them).
    fn store(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Removes a value; a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Every key starting with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Takes the named lease for `ttl`, or fails with [`StorageError::Locked`].
    fn lock(&self, name: &str, ttl: Duration) -> Result<Box<dyn StorageLock>, StorageError>;
    /// Removes everything (used by `clean_restart`).
    fn wipe(&self) -> Result<(), StorageError>;
    /// Whether nothing is stored.
    fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.list("")?.is_empty())
    }
}

/// The default [`Storage`]: a folder (0700) of files (0600), written atomically.
///
/// Layout: `account.json`, `current/cert.pem`, `current/key.pem`,
/// `archive/<unix time>/{cert,key}.pem` for replaced certificates, and
/// `locks/<name>` for leases (ignored by `list`).
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage in `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStorage { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let rel = Path::new(key);
        let safe = !key.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(StorageError::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(rel))
    }

    fn io(path: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Storage for FsStorage {
    fn load(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let p = self.path(key)?;
        std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound(key.to_owned()),
            _ => Self::io(&p, e),
        })
    }

    fn store(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let p = self.path(key)?;
        create_private_dir(&self.root).map_err(|e| Self::io(&self.root, e))?;
        if let Some(parent) = p.parent() {
            create_private_dir(parent).map_err(|e| Self::io(parent, e))?;
        }
        write_atomic(&p, data, 0o600).map_err(|e| Self::io(&p, e))
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let p = self.path(key)?;
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io(&p, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Self::io(&dir, e)),
            };
            for entry in rd {
                let entry = entry.map_err(|e| Self::io(&dir, e))?;
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel == "locks"
                    || rel.starts_with("locks/")
                    || rel.rsplit('/').next().is_some_and(|n| n.starts_with('.'))
                {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if rel.starts_with(prefix) {
                    out.push(rel);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn lock(&self, name: &str, ttl: Duration) -> Result<Box<dyn StorageLock>, StorageError> {
        let p = self.path(&format!("locks/{name}"))?;
        if let Some(parent) = p.parent() {
            create_private_dir(parent).map_err(|e| Self::io(parent, e))?;
        }
        for _ in 0..2 {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            match opts.open(&p) {
                Ok(mut f) => {
                    use std::io::Write;
                    let until = unix_now() + ttl.as_secs().max(1);
                    f.write_all(until.to_string().as_bytes())
                        .map_err(|e| Self::io(&p, e))?;
                    return Ok(Box::new(FsLock { path: p, ttl }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let until: u64 = std::fs::read_to_string(&p)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0);
                    let now = unix_now();
                    if until > now {
                        return Err(StorageError::Locked {
                            name: name.to_owned(),
                            remaining: Duration::from_secs(until - now),
                        });
                    }
                    // The holder's lease ran out (it died or hung): take over.
                    let _ = std::fs::remove_file(&p);
                }
                Err(e) => return Err(Self::io(&p, e)),
            }
        }
        Err(StorageError::Locked {
            name: name.to_owned(),
            remaining: Duration::ZERO,
        })
    }

    fn wipe(&self) -> Result<(), StorageError> {
        match std::fs::remove_dir_all(&self.root) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io(&self.root, e)),
        }
    }
}

struct FsLock {
    path: PathBuf,
    ttl: Duration,
}

impl StorageLock for FsLock {
    fn refresh(&self) -> Result<(), StorageError> {
        let until = unix_now() + self.ttl.as_secs().max(1);
        write_atomic(&self.path, until.to_string().as_bytes(), 0o600)
            .map_err(|e| FsStorage::io(&self.path, e))
    }
}

impl Drop for FsLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
