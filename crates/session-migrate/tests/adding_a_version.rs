//! The crate docs' guide "Adding a schema version", followed for a test-only `2.1.0`.
//!
//! Exactly the four steps of the guide: one new module (the type), one `From` impl, one
//! line registering it in a chain, one fixture with its snapshot.

use std::path::Path;

use session_migrate::schema_chain;
use session_model::{Session, SessionV1};

/// Step 1: one new module with the new version's type.
mod v2_1 {
    use serde::{Deserialize, Serialize};
    use session_model::Session;

    /// `2.1.0`: `2.0.0` plus an optional operator note.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SessionV2_1 {
        /// The new field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub operator_note: Option<String>,
        /// Everything `2.0.0` had.
        #[serde(flatten)]
        pub base: Session,
    }

    impl session_migrate::Version for SessionV2_1 {
        const NAME: &'static str = "2.1.0";
    }

    /// Step 2: one `From` impl from the version before it.
    impl From<Session> for SessionV2_1 {
        fn from(mut base: Session) -> Self {
            base.metadata.version = "2.1.0".into();
            SessionV2_1 {
                operator_note: None,
                base,
            }
        }
    }
}

use v2_1::SessionV2_1;

// Step 3: one line registers it (in the crate: the list in `decode_chain`).
schema_chain! {
    fn decode_latest -> SessionV2_1 { SessionV1, Session, SessionV2_1 }
}

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
const OWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Step 4: one fixture of the new version, and the chain from every version to it.
#[test]
fn every_version_upgrades_to_the_new_one() {
    let files = [
        (SHARED, "legacy/session-12.json"),
        (SHARED, "v1/session-22.json"),
        (OWN, "v2/session-41.json"),
        (OWN, "v2.1/session-42.json"),
    ];
    let mut lines = Vec::new();
    for (root, rel) in files {
        let bytes = std::fs::read(Path::new(root).join(rel)).unwrap();
        let chained = decode_latest(&bytes, &Default::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let s = &chained.session;
        lines.push(format!(
            "{rel}: from {} -> {} (note {:?}, {} elements, status {})",
            chained.from,
            s.base.metadata.version,
            s.operator_note,
            s.base.elements.len(),
            s.base.submission.status
        ));
    }
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn a_version_newer_than_the_chain_is_still_refused() {
    let err = decode_latest(br#"{"_metadata": {"version": "2.2.0"}}"#, &Default::default()).unwrap_err();
    assert!(err.is_newer_version(), "{err}");
    // And the production chain, which does not know 2.1.0, treats it as newer.
    let bytes = std::fs::read(Path::new(OWN).join("v2.1/session-42.json")).unwrap();
    assert!(session_migrate::decode(&bytes).unwrap_err().is_newer_version());
}
