//! Document versions: each version's type declares its name and its place in the order.

use serde::de::DeserializeOwned;

/// A document version, named as `_metadata.version` names it (`legacy` for none), with
/// its place in the order of versions. Versions compare by that place, never by the
/// text of their names (`"10.0.0" < "9.0.0"` as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchemaVersion {
    name: &'static str,
    order: u32,
}

impl SchemaVersion {
    /// No `_metadata`: written by the app before it had metadata. First in the order.
    pub const LEGACY: SchemaVersion = SchemaVersion::new("legacy", 0);
    /// The Electron app's format (declared beside [`SessionV1`](crate::SessionV1)).
    pub const V1_0_0: SchemaVersion = <crate::SessionV1 as Version>::SCHEMA;
    /// This store's first format (declared beside [`SessionV2_0`](crate::SessionV2_0)).
    pub const V2_0_0: SchemaVersion = <crate::SessionV2_0 as Version>::SCHEMA;
    /// The format that added capture's interruptions (declared beside [`SessionV2_1`](crate::SessionV2_1)).
    pub const V2_1_0: SchemaVersion = <crate::SessionV2_1 as Version>::SCHEMA;
    /// The version every save of this build writes: the one [`Session`](crate::Session) names.
    pub const CURRENT: SchemaVersion = <crate::Session as Version>::SCHEMA;

    /// A version called `name`, at place `order` (each new version one past the last).
    pub const fn new(name: &'static str, order: u32) -> Self {
        SchemaVersion { name, order }
    }

    /// The name used in `_metadata.version` and in reports.
    pub const fn as_str(self) -> &'static str {
        self.name
    }

    /// Its place in the order of versions.
    pub const fn order(self) -> u32 {
        self.order
    }

    /// Whether a file of this version must be rewritten to be current.
    pub fn is_outdated(self) -> bool {
        self != Self::CURRENT
    }
}

impl PartialOrd for SchemaVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SchemaVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order
            .cmp(&other.order)
            .then_with(|| self.name.cmp(other.name))
    }
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A document version after legacy: a serde type and the version it carries in
/// `_metadata.version`. Implemented beside each version's type.
pub trait Version: DeserializeOwned {
    /// Its name and place in the order.
    const SCHEMA: SchemaVersion;
    /// Its `_metadata.version`.
    const NAME: &'static str = Self::SCHEMA.as_str();

    /// The `_metadata.version` this document states, for a type that carries one:
    /// a decoder that parsed bytes as this version can then confirm that they were
    /// (see `session_migrate::schema_chain!`). `None`, the default, cannot confirm.
    fn stated_version(&self) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_place_not_by_text() {
        let ten = SchemaVersion::new("10.0.0", 3);
        assert!(SchemaVersion::LEGACY < SchemaVersion::V1_0_0);
        assert!(SchemaVersion::V1_0_0 < SchemaVersion::V2_0_0);
        assert!(
            SchemaVersion::V2_0_0 < ten,
            "10.0.0 comes after 2.0.0 though it sorts before as text"
        );
        assert_eq!(SchemaVersion::V2_0_0.as_str(), "2.0.0");
        assert_eq!(<crate::SessionV1 as Version>::NAME, "1.0.0");
    }
}
