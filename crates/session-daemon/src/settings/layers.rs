//! The layers a configuration is resolved from, each a figment provider that says
//! where its values came from: built-in defaults, the TOML file, `HL7_*` variables,
//! command-line flags.

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::Source;

/// Values from one place, named as a refusal names it (`config /etc/x.toml`,
/// `environment variable HL7_CONCURRENCY`, `--set concurrency`).
#[derive(Clone)]
pub(crate) struct Layer {
    pub(crate) source: Source,
    pub(crate) origin: String,
    pub(crate) values: Dict,
}

impl Layer {
    pub(crate) fn new(source: Source, origin: impl Into<String>) -> Self {
        Layer {
            source,
            origin: origin.into(),
            values: Dict::new(),
        }
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.values.insert(key.to_owned(), value.into());
        self
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            self.origin.clone(),
            figment::Source::Custom(self.source.as_str().to_owned()),
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// Where the value a provider gave came from.
pub(crate) fn source_of(metadata: &Metadata) -> Option<Source> {
    match metadata.source.as_ref()?.custom()? {
        "default" => Some(Source::Default),
        "file" => Some(Source::File),
        "env" => Some(Source::Env),
        "flag" => Some(Source::Flag),
        _ => None,
    }
}

/// A value as text: what was written, for `config` and refusals.
pub(crate) fn as_text(value: &Value) -> String {
    match value {
        Value::String(_, s) => s.clone(),
        Value::Char(_, c) => c.to_string(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| n.to_i128().map(|n| n.to_string()))
            .or_else(|| n.to_f64().map(|n| n.to_string()))
            .unwrap_or_default(),
        Value::Empty(..) => String::new(),
        Value::Dict(..) => "(a table)".to_owned(),
        Value::Array(..) => "(a list)".to_owned(),
    }
}
