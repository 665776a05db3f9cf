//! The reading-statistics database under a fake clock: aggregation per day,
//! persistence one file per day, pruning after the retention period.

use std::sync::Arc;
use std::time::Duration;

use blog::stats::Stats;
use site_encrypt::{Clock, FakeClock};

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn aggregates_persists_and_prunes() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(FakeClock::new(
        time::macros::datetime!(2026-11-01 12:00 UTC),
    ));
    let path = dir.path().join("stats");
    let stats = Stats::open(&path, None, 7, clock.clone()).expect("open");
    stats.record("a");
    stats.record("a");
    stats.record("b");
    clock.advance(DAY);
    stats.record("a");
    assert_eq!(stats.flush().expect("flush"), 2, "two days written");
    assert!(path.join("2026-11-01.json").exists() && path.join("2026-11-02.json").exists());
    assert_eq!(
        stats.flush().expect("flush"),
        0,
        "nothing new, nothing written"
    );
    let recent = stats.recent(7);
    assert_eq!(recent.len(), 7);
    assert_eq!(recent[5].1.get("a"), Some(&2));
    assert_eq!(recent[5].1.get("b"), Some(&1));
    assert_eq!(recent[6].1.get("a"), Some(&1));

    // Reopened, the files give the same counts.
    let again = Stats::open(&path, None, 7, clock.clone()).expect("reopen");
    assert_eq!(again.totals().get("a"), Some(&3));

    // Seven days after the first day, it is pruned (memory and file); the second stays.
    clock.advance(6 * DAY);
    assert_eq!(again.prune().expect("prune"), 1);
    assert!(!path.join("2026-11-01.json").exists());
    assert!(path.join("2026-11-02.json").exists());
    assert_eq!(again.totals().get("a"), Some(&1));
    assert_eq!(again.totals().get("b"), None);
    assert_eq!(clock.now().date(), time::macros::date!(2026 - 11 - 08));
}

#[test]
fn backup_restores_a_lost_folder_and_unreadable_files_are_skipped() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(FakeClock::new(
        time::macros::datetime!(2026-11-01 12:00 UTC),
    ));
    let path = dir.path().join("stats");
    let backup = dir.path().join("stats.tgz");
    let stats = Stats::open(&path, Some(&backup), 7, clock.clone()).expect("open");
    stats.record("x");
    stats.flush().expect("flush");
    assert!(backup.exists(), "backup written with the flush");
    std::fs::remove_dir_all(&path).expect("lose folder");
    let restored = Stats::open(&path, Some(&backup), 7, clock.clone()).expect("restore");
    assert_eq!(restored.totals().get("x"), Some(&1));
    std::fs::write(path.join("2026-10-31.json"), b"{broken").expect("write");
    let tolerant = Stats::open(&path, None, 7, clock).expect("opens despite a broken file");
    assert_eq!(tolerant.totals().get("x"), Some(&1));
}
