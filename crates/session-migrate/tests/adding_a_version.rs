//! The crate docs' guide "Adding a schema version", followed for a test-only version,
//! `9.9.9-guide`, a name no real version will take (so that the next real version never
//! clashes with it).
//!
//! Exactly the guide's steps, in this one file where the real version would spread
//! over three: (1) one module with the new type, declaring its version beside it,
//! with (2) one `From` impl from the version before it; (3) one line registering it in
//! a chain; (4) one fixture, `tests/fixtures/guide-example/session-42.json`, with its snapshot.
//! Then decode, encode, the store-wide migrate and rollback all run through it.

use std::path::Path;

use session_fs::Store;
use session_migrate::{DecodeOptions, MigrateOptions, RollbackOptions, SchemaVersion, Version, schema_chain};
use session_model::SessionV1;
use session_store::SessionStore;

/// Steps 1 and 2: one new module with the new version's type.
mod guide_example {
    use serde::{Deserialize, Serialize};
    use session_model::{
        Document, Element, Interruption, Metadata, SchemaVersion, SessionId, SessionV2_1, Submission,
        UnknownFields, Version,
    };

    /// `9.9.9-guide`: a copy of the current version plus an optional operator note.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct SessionGuide {
        pub id: SessionId,
        #[serde(rename = "sessionId", default, skip_serializing_if = "Option::is_none")]
        pub session_number: Option<u64>,
        pub start_time: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub end_time: Option<u64>,
        #[serde(rename = "deviceIP", default, skip_serializing_if = "Option::is_none")]
        pub device_ip: Option<String>,
        #[serde(rename = "lisIP", default, skip_serializing_if = "Option::is_none")]
        pub lis_ip: Option<String>,
        pub is_complete: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interrupted: Option<Interruption>,
        pub elements: Vec<Element>,
        pub persisted_until: u64,
        pub submission: Submission,
        #[serde(rename = "_metadata")]
        pub metadata: Metadata,
        /// The new field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub operator_note: Option<String>,
        #[serde(flatten)]
        pub unknown: UnknownFields,
    }

    // Its name and its place in the order, declared beside it.
    impl Version for SessionGuide {
        const SCHEMA: SchemaVersion = SchemaVersion::new("9.9.9-guide", 1000);
    }

    // What a store needs of the version it writes.
    impl Document for SessionGuide {
        fn id(&self) -> &SessionId {
            &self.id
        }
        fn stamp(&mut self, revision: u64, saved_at: u64) {
            self.metadata.revision = revision;
            self.metadata.saved_at = saved_at;
            self.metadata.version = Self::NAME.to_owned();
        }
        fn saved(&self) -> (u64, u64) {
            (self.metadata.revision, self.metadata.saved_at)
        }
        fn submission(&self) -> &Submission {
            &self.submission
        }
        fn submission_mut(&mut self) -> &mut Submission {
            &mut self.submission
        }
        fn same_delivery_content(&self, other: &Self) -> bool {
            (
                &self.id,
                self.start_time,
                self.end_time,
                &self.device_ip,
                &self.lis_ip,
                &self.elements,
            ) == (
                &other.id,
                other.start_time,
                other.end_time,
                &other.device_ip,
                &other.lis_ip,
                &other.elements,
            )
        }
    }

    /// Step 2: one `From` impl from the version before it.
    impl From<SessionV2_1> for SessionGuide {
        fn from(s: SessionV2_1) -> Self {
            let mut metadata = s.metadata;
            metadata.version = Self::NAME.to_owned();
            SessionGuide {
                id: s.id,
                session_number: s.session_number,
                start_time: s.start_time,
                end_time: s.end_time,
                device_ip: s.device_ip,
                lis_ip: s.lis_ip,
                is_complete: s.is_complete,
                interrupted: s.interrupted,
                elements: s.elements,
                persisted_until: s.persisted_until,
                submission: s.submission,
                metadata,
                operator_note: None,
                unknown: s.unknown,
            }
        }
    }
}

use guide_example::SessionGuide;
use session_model::{SessionV2_0, SessionV2_1};

// Step 3: one line registers it (in the crate: the list in `codec.rs`'s `Current`).
schema_chain! { struct Latest -> SessionGuide { SessionV1, SessionV2_0, SessionV2_1, SessionGuide } }

const SHARED: &str = test_support::FIXTURES;
const OWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn read(root: &str, rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(root).join(rel)).unwrap()
}

/// Step 4: one fixture of the new version, and the chain from every version to it.
#[test]
fn every_version_upgrades_to_the_new_one() {
    use session_migrate::Schema;
    let files = [
        (SHARED, "legacy/session-12.json"),
        (SHARED, "v1/session-22.json"),
        (OWN, "v2/session-41.json"),
        (OWN, "guide-example/session-42.json"),
    ];
    let mut lines = Vec::new();
    for (root, rel) in files {
        let chained = Latest::decode_chain(&read(root, rel), &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let s = &chained.session;
        lines.push(format!(
            "{rel}: from {} -> {} (note {:?}, {} elements, status {})",
            chained.from,
            s.metadata.version,
            s.operator_note,
            s.elements.len(),
            s.submission.status
        ));
        // Encoded by the same rules as the current version: it reads back as itself.
        let bytes = session_migrate::encode_with::<Latest>(s).unwrap();
        assert_eq!(
            &Latest::decode_chain(&bytes, &DecodeOptions::default())
                .unwrap()
                .session,
            s,
            "{rel}"
        );
    }
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn the_store_wide_migration_and_rollback_run_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let originals = [
        ("session-12.json", read(SHARED, "legacy/session-12.json")),
        ("session-22.json", read(SHARED, "v1/session-22.json")),
        ("session-41.json", read(OWN, "v2/session-41.json")),
        ("session-42.json", read(OWN, "guide-example/session-42.json")),
    ];
    for (name, bytes) in &originals {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let store =
        SessionStore::<Latest>::with_schema(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    let report = store.migrate(&MigrateOptions::default(), &|_, _| {}).unwrap();
    assert_eq!((report.migrated, report.up_to_date, report.failed), (3, 1, 0));
    for (name, _) in &originals {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["_metadata"]["version"], "9.9.9-guide", "{name}");
    }
    // Typed operations work on the new version too.
    let id = "session-41".parse().unwrap();
    let ((), updated) = store
        .update(&id, |s| {
            s.operator_note = Some("checked".into());
            Ok(())
        })
        .unwrap();
    assert_eq!(updated.operator_note.as_deref(), Some("checked"));
    // Rollback puts back every original the run replaced and nobody changed since.
    drop(store);
    let exclusive = SessionStore::<Latest>::with_schema(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let undone = exclusive.rollback(&RollbackOptions::default()).unwrap();
    assert_eq!(undone.restored, 2);
    assert_eq!(
        undone.not_restored.len(),
        1,
        "session-41 changed since: {:?}",
        undone.not_restored
    );
    for (name, bytes) in &originals {
        if *name != "session-41.json" {
            assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), bytes, "{name}");
        }
    }
}

#[test]
fn versions_are_named_and_ordered_by_their_types() {
    assert_eq!(
        SchemaVersion::V2_0_0.as_str(),
        "2.0.0",
        "a released version keeps its name"
    );
    assert_eq!(<SessionV2_0 as Version>::SCHEMA, SchemaVersion::V2_0_0);
    assert!(<SessionGuide as Version>::SCHEMA > SchemaVersion::V2_0_0);
    assert!(
        SchemaVersion::new("10.0.0", 1001) > <SessionGuide as Version>::SCHEMA,
        "order, not text"
    );
}

#[test]
fn a_version_newer_than_the_chain_is_still_refused() {
    use session_migrate::Schema;
    let err =
        Latest::decode_chain(br#"{"_metadata": {"version": "2.3.0"}}"#, &Default::default()).unwrap_err();
    assert!(err.is_newer_version(), "{err}");
    // And the production chain, which does not know it, treats it as newer.
    let bytes = read(OWN, "guide-example/session-42.json");
    assert!(session_migrate::decode(&bytes).unwrap_err().is_newer_version());
}
