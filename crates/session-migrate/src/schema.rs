//! What makes a chain of versions a store's schema: the last version is a [`Document`]
//! (declared beside its type in `session-model`), and the chain decodes into it.

pub use session_model::Document;

use crate::codec::{Chained, DecodeError, DecodeOptions};

/// A chain of versions ending in a [`Document`]: what [`schema_chain!`](crate::schema_chain)
/// declares, and what a typed store (`session_store::SessionStore`) and [`migrate_store`](crate::migrate_store) are typed by.
pub trait Schema: Send + Sync + 'static {
    /// The last version of the chain: what the store writes.
    type Document: Document;
    /// Reads `_metadata.version`, deserializes exactly that version and upgrades it
    /// along the chain.
    fn decode_chain(bytes: &[u8], options: &DecodeOptions) -> Result<Chained<Self::Document>, DecodeError>;
}
