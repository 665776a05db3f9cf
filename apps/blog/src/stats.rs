//! Reading statistics: a small hand-made database.
//!
//! Views are counted in memory per day and article (one short mutex section on
//! the request path), flushed periodically to one JSON file per day with
//! atomic writes, pruned after a retention period, and backed up like the
//! certificates (a gzip tar restored at start when the folder is missing).
//! A crash loses at most the views since the last flush.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use site_encrypt::Clock;
use time::Date;
use time::format_description::well_known::Iso8601;

/// Default number of days kept.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;
/// Default flush interval: the most a crash can lose.
pub const DEFAULT_FLUSH_SECS: u64 = 10;

/// Views per article for one day.
pub type Day = BTreeMap<String, u64>;

#[derive(Default)]
struct Inner {
    days: BTreeMap<Date, Day>,
    dirty: BTreeSet<Date>,
}

/// The statistics database.
pub struct Stats {
    dir: PathBuf,
    backup: Option<PathBuf>,
    retention_days: u32,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn file_name(d: Date) -> String {
    format!("{d}.json")
}

impl Stats {
    /// Opens the database in `dir`, restoring it from `backup` when the folder
    /// is missing, and loading every day file.
    pub fn open(
        dir: &Path,
        backup: Option<&Path>,
        retention_days: u32,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Self> {
        if !dir.exists() {
            if let Some(b) = backup.filter(|b| b.exists()) {
                let n = site_encrypt::restore_backup(b, dir).map_err(std::io::Error::other)?;
                tracing::info!(files = n, "Restored reading statistics from backup");
            }
        }
        site_encrypt::proto::fs::create_private_dir(dir)?;
        let mut days = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let Ok(date) = Date::parse(stem, &Iso8601::DEFAULT) else {
                continue;
            };
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Day>(&b).ok())
            {
                Some(day) => {
                    days.insert(date, day);
                }
                None => {
                    tracing::warn!(file = %path.display(), "unreadable statistics file skipped")
                }
            }
        }
        let stats = Stats {
            dir: dir.to_owned(),
            backup: backup.map(Path::to_owned),
            retention_days,
            clock,
            inner: Mutex::new(Inner {
                days,
                dirty: BTreeSet::new(),
            }),
        };
        stats.prune()?;
        Ok(stats)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn today(&self) -> Date {
        self.clock.now().date()
    }

    /// Counts one view of `slug` today.
    pub fn record(&self, slug: &str) {
        let today = self.today();
        let mut inner = self.inner();
        let day = inner.days.entry(today).or_default();
        // Allocate the key only for the first view of the article that day.
        match day.get_mut(slug) {
            Some(n) => *n += 1,
            None => {
                day.insert(slug.to_owned(), 1);
            }
        }
        inner.dirty.insert(today);
    }

    /// Writes the days changed since the last flush (atomically, one file a
    /// day), prunes old days and refreshes the backup. Returns how many day
    /// files were written.
    pub fn flush(&self) -> std::io::Result<usize> {
        let pending: Vec<(Date, Day)> = {
            let mut inner = self.inner();
            let dirty = std::mem::take(&mut inner.dirty);
            dirty
                .into_iter()
                .filter_map(|d| inner.days.get(&d).map(|v| (d, v.clone())))
                .collect()
        };
        for (date, day) in &pending {
            let json = serde_json::to_vec(day).map_err(std::io::Error::other)?;
            site_encrypt::proto::fs::write_atomic(&self.dir.join(file_name(*date)), &json, 0o600)?;
        }
        let pruned = self.prune()?;
        if (!pending.is_empty() || pruned > 0) && self.backup.is_some() {
            if let Some(b) = &self.backup {
                site_encrypt::write_backup(&self.dir, b).map_err(std::io::Error::other)?;
            }
        }
        Ok(pending.len())
    }

    /// Removes days older than the retention period, in memory and on disk.
    pub fn prune(&self) -> std::io::Result<usize> {
        let oldest_kept = self.today() - time::Duration::days(i64::from(self.retention_days) - 1);
        let old: Vec<Date> = {
            let mut inner = self.inner();
            let old: Vec<Date> = inner
                .days
                .keys()
                .copied()
                .filter(|d| *d < oldest_kept)
                .collect();
            for d in &old {
                inner.days.remove(d);
                inner.dirty.remove(d);
            }
            old
        };
        for d in &old {
            match std::fs::remove_file(self.dir.join(file_name(*d))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(old.len())
    }

    /// The last `n` days (oldest first, empty days included) with their views.
    pub fn recent(&self, n: u32) -> Vec<(Date, Day)> {
        let today = self.today();
        let inner = self.inner();
        (0..n)
            .rev()
            .map(|i| {
                let d = today - time::Duration::days(i64::from(i));
                (d, inner.days.get(&d).cloned().unwrap_or_default())
            })
            .collect()
    }

    /// Total views per article over the kept days.
    pub fn totals(&self) -> Day {
        let mut out = Day::new();
        for day in self.inner().days.values() {
            for (k, v) in day {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
