//! The store directory watch on a real directory: what the kernel is asked for, what is
//! reported, and that it ends when dropped or when the directory goes away.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use session_daemon::StoreWatch;
use session_workers::submit::ChangeFeed;

const IN_ACCESS: u32 = 0x1;
const IN_MODIFY: u32 = 0x2;
const IN_CLOSE_WRITE: u32 = 0x8;
const IN_CLOSE_NOWRITE: u32 = 0x10;
const IN_OPEN: u32 = 0x20;
const IN_MOVED_FROM: u32 = 0x40;
const IN_MOVED_TO: u32 = 0x80;
const IN_CREATE: u32 = 0x100;
const IN_DELETE: u32 = 0x200;
const IN_DELETE_SELF: u32 = 0x400;
const IN_MOVE_SELF: u32 = 0x800;

/// The event masks of this process's inotify watches on the directory `inode`, as the
/// kernel shows them in `/proc/self/fdinfo`.
fn watch_masks(inode: u64) -> Vec<u32> {
    let mut masks = Vec::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if target.to_string_lossy() != "anon_inode:inotify" {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_string_lossy()))
            .unwrap_or_default();
        for line in info.lines().filter(|l| l.starts_with("inotify ")) {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|v| u64::from_str_radix(v, 16).ok())
            };
            if field("ino:") == Some(inode) {
                masks.push(field("mask:").unwrap() as u32);
            }
        }
    }
    masks
}

fn watch(dir: &Path) -> (StoreWatch, ChangeFeed, Receiver<(String, bool)>) {
    let feed = ChangeFeed::new();
    let (sender, seen) = channel();
    let watch = StoreWatch::start(dir, vec![feed.clone()], move |id, stored| {
        let _ = sender.send((id.to_string(), stored));
    })
    .expect("a temp dir can be watched");
    (watch, feed, seen)
}

#[test]
fn the_kernel_is_asked_for_changes_to_the_names_only_never_for_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, _feed, _seen) = watch(dir.path());
    let masks = watch_masks(std::fs::metadata(dir.path()).unwrap().ino());
    assert_eq!(masks.len(), 1, "one watch on the store directory: {masks:x?}");
    let mask = masks[0];
    // The names' changes, and the directory itself removed or moved away.
    for wanted in [
        IN_CLOSE_WRITE,
        IN_MOVED_FROM,
        IN_MOVED_TO,
        IN_CREATE,
        IN_DELETE,
        IN_DELETE_SELF,
        IN_MOVE_SELF,
    ] {
        assert_ne!(mask & wanted, 0, "mask {mask:#x} lacks {wanted:#x}");
    }
    // Every read of a session (start-up reads them all) would queue one of these.
    for unwanted in [IN_ACCESS, IN_OPEN, IN_CLOSE_NOWRITE, IN_MODIFY] {
        assert_eq!(mask & unwanted, 0, "mask {mask:#x} asks for {unwanted:#x}");
    }
    drop(watch);
    assert!(
        watch_masks(std::fs::metadata(dir.path()).unwrap().ino()).is_empty(),
        "a dropped watch is removed"
    );
}

#[test]
fn renames_in_and_out_are_reported_reads_are_not_and_nothing_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (watch, feed, seen) = watch(dir.path());
    let temp = dir.path().join(".s-1.json.tmp");
    std::fs::write(&temp, b"{}").unwrap();
    std::fs::rename(&temp, dir.path().join("s-1.json")).unwrap();
    let wait = || seen.recv_timeout(Duration::from_secs(10)).expect("reported");
    assert_eq!(wait(), ("s-1".to_owned(), true));
    for _ in 0..20 {
        std::fs::read(dir.path().join("s-1.json")).unwrap();
    }
    std::fs::rename(dir.path().join("s-1.json"), dir.path().join("s-1.bak")).unwrap();
    assert_eq!(wait(), ("s-1".to_owned(), false), "reads were not reported");
    assert_eq!(feed.take(), (vec!["s-1".parse().unwrap()], false));

    drop(watch);
    std::fs::write(dir.path().join("s-2.json"), b"{}").unwrap();
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing is reported once the watch is dropped"
    );
}

/// Watches `<parent>/store`, does `away` to it (given the parent and the store's path),
/// and waits for the watch to ask its feed for a rescan; the watch is dropped after.
fn rescan_asked_after(away: impl FnOnce(&Path, &Path)) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    let (watch, feed, _seen) = watch(&dir);
    away(parent.path(), &dir);
    test_support::wait_until(Duration::from_secs(10), "a rescan asked for", || {
        feed.take().1.then_some(())
    });
    drop(watch);
}

#[test]
fn a_removed_store_directory_asks_for_a_rescan_and_the_watch_still_drops() {
    rescan_asked_after(|_, dir| std::fs::remove_dir(dir).unwrap());
}

#[test]
fn a_store_path_that_is_a_file_is_not_watched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let watched = StoreWatch::start(&file, vec![ChangeFeed::new()], |_, _| {});
    assert!(watched.is_none(), "only a directory is watched");
}

#[test]
fn a_store_directory_moved_away_asks_for_a_rescan() {
    // A move leaves the watch on the moved directory (no IN_IGNORED follows): only its
    // own event says that the path the daemon serves is no longer the one watched.
    rescan_asked_after(|parent, dir| std::fs::rename(dir, parent.join("store.moved")).unwrap());
}
