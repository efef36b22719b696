//! What a store needs of the version it writes: the last version of its chain.

use serde::Serialize;

use crate::id::SessionId;
use crate::session::SessionV2_0;
use crate::submission::Submission;
use crate::v2_1::SessionV2_1;
use crate::version::Version;

/// The document a store keeps: the last version of its chain. Implemented beside each
/// version's type that can be current.
pub trait Document: Version + Serialize + Clone + PartialEq + Send + Sync + 'static {
    /// The session's id (its file name).
    fn id(&self) -> &SessionId;
    /// Records a save in `_metadata`: its revision and time (epoch ms), and this
    /// version's name.
    fn stamp(&mut self, revision: u64, saved_at: u64);
    /// The revision and save time the document records.
    fn saved(&self) -> (u64, u64);
    /// Its delivery state.
    fn submission(&self) -> &Submission;
    /// Its delivery state, to change.
    fn submission_mut(&mut self) -> &mut Submission;
    /// Whether `other` delivers exactly what this document delivers.
    fn same_delivery_content(&self, other: &Self) -> bool;
}

/// `Document` for a store version whose type has the fields every store version has
/// (`id`, `submission`, `_metadata` with `revision`, `savedAt` and `version`) and its own
/// `same_delivery_content` rule: one line per version.
macro_rules! store_document {
    ($version:ty) => {
        impl Document for $version {
            fn id(&self) -> &SessionId {
                &self.id
            }
            fn stamp(&mut self, revision: u64, saved_at: u64) {
                self.metadata.revision = revision;
                self.metadata.saved_at = saved_at;
                self.metadata.version = <Self as Version>::NAME.to_owned();
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
                <$version>::same_delivery_content(self, other)
            }
        }
    };
}

store_document!(SessionV2_0);
store_document!(SessionV2_1);
