//! `recover_upgrading`: recovery's one pass upgrades every outdated file it reads, on
//! the threads that read it, and hands on each session as its file is afterwards.

use std::collections::BTreeMap;
use std::path::Path;

use session_fs::Store;
use session_store::{DecodeOptions, SchemaVersion, SessionStore};

use test_support::FIXTURES;

const NEWER: &[u8] = br#"{"id": "newer", "_metadata": {"version": "99.0.0"}}"#;

/// `old` `1.0.0` files (`s0000.json`...), two torn ones, a newer build's file and one
/// current session.
fn mixed_store(dir: &Path, old: usize) -> BTreeMap<String, Vec<u8>> {
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(FIXTURES).join("v1/session-21.json")).unwrap())
            .unwrap();
    let mut originals = BTreeMap::new();
    for n in 0..old {
        let mut doc = template.clone();
        doc["id"] = format!("s{n:04}").into();
        let bytes = serde_json::to_vec(&doc).unwrap();
        std::fs::write(dir.join(format!("s{n:04}.json")), &bytes).unwrap();
        originals.insert(format!("s{n:04}.json"), bytes);
    }
    for n in 0..2 {
        std::fs::write(dir.join(format!("torn{n}.json")), b"{\"torn").unwrap();
    }
    std::fs::write(dir.join("newer.json"), NEWER).unwrap();
    let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
    let mut current = session_store::decode(br#"{"id": "current", "startTime": 5, "isComplete": true}"#)
        .unwrap()
        .session;
    store.save(&mut current).unwrap();
    originals
}

fn upgrade_in_one_pass(old: usize) {
    let dir = tempfile::tempdir().unwrap();
    let originals = mixed_store(dir.path(), old);
    let current_before = std::fs::read(dir.path().join("current.json")).unwrap();
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let upgrade = store.upgrade();
    let mut seen = BTreeMap::new();
    let mut reading = None;
    let report = session_recovery::recover_upgrading(
        &store,
        &upgrade,
        |files| reading = Some(files),
        |id, decoded| {
            assert!(
                seen.insert(id.to_string(), decoded).is_none(),
                "{id} visited twice"
            );
        },
    )
    .unwrap();
    assert_eq!(
        reading,
        Some(old + 4),
        "every live file: the old, the torn, the newer, the current"
    );
    let run = upgrade.run().to_string();
    let upgraded = upgrade.finish();

    assert_eq!(report.quarantined, 2, "{report:?}");
    assert_eq!((upgraded.migrated, upgraded.failed), (old, 0), "{upgraded:?}");
    assert_eq!(seen.len(), old + 1, "every old session and the current one");
    for (id, decoded) in &seen {
        let on_disk = std::fs::read(dir.path().join(format!("{id}.json"))).unwrap();
        assert_eq!(
            &session_store::decode(&on_disk).unwrap(),
            decoded,
            "{id} as its file is"
        );
        assert_eq!(decoded.from, SchemaVersion::CURRENT, "{id}");
    }
    assert_eq!(
        std::fs::read(dir.path().join("current.json")).unwrap(),
        current_before
    );
    assert_eq!(std::fs::read(dir.path().join("newer.json")).unwrap(), NEWER);
    let kept: BTreeMap<String, Vec<u8>> = std::fs::read_dir(dir.path().join(".backup").join(&run))
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            (
                f.file_name().to_string_lossy().into_owned(),
                std::fs::read(f.path()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept, originals,
        "every original, byte for byte, in the pass's one run"
    );
    assert_eq!(std::fs::read_dir(dir.path().join(".backup")).unwrap().count(), 1);
    assert!(
        session_recovery::recover(&store).unwrap().is_clean(),
        "nothing left for recovery"
    );
}

#[test]
fn a_small_store_is_upgraded_as_it_is_read() {
    upgrade_in_one_pass(3);
}

#[test]
fn a_large_store_is_upgraded_as_it_is_read_on_every_core() {
    // Past 512 files recovery reads on several threads; each upgrades what it reads.
    upgrade_in_one_pass(600);
}

#[test]
fn plain_recovery_upgrades_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let originals = mixed_store(dir.path(), 3);
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let mut from = Vec::new();
    session_recovery::recover_visiting(&store, |id, decoded| from.push((id.to_string(), decoded.from)))
        .unwrap();
    from.sort();
    assert_eq!(
        from.iter().filter(|(_, v)| *v == SchemaVersion::V1_0_0).count(),
        3
    );
    for (name, bytes) in &originals {
        assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), bytes, "{name}");
    }
    assert!(!dir.path().join(".backup").exists());
}
