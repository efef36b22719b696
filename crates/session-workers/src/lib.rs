//! The tokio workers of the HL7 session store: retention cleanup, and submission of
//! completed sessions to the REST API. (Filled by the workers issue.)
#![warn(missing_docs)]
