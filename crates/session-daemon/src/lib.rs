//! The daemon of the HL7 session store as a library: what `sessionctl run` is, for a
//! program that embeds it.
//!
//! Start-up has an order, and each step is a method so that the order is the code's:
//!
//! 1. [`Claimed::claim`] takes the store's `daemon` role (one daemon per store) and
//!    says who holds it.
//! 2. [`StoreWatch::start`] follows the store directory *before* recovery, so that a
//!    session stored from then on is reported, not missed.
//! 3. [`Claimed::recover`] runs recovery once, on an exclusive handle (waiting for other
//!    processes to let go), decoding every file once: each session feeds the delivery
//!    index and whatever the caller builds (a page's index), and each outdated one is
//!    upgraded to the current version on the thread that read it (its original kept
//!    in `.backup/` first), so that a store of old files is read and decoded once.
//! 4. [`Claimed::migrate`] tries again the few the pass could not upgrade (in the same
//!    backup run, so one rollback undoes the whole start-up), and hands back the
//!    shared store.
//! 5. [`Claimed::start`] runs cleanup, submission (seeded with the index), the clock
//!    record and the capture relay until [`Running::stop`].
//!
//! ```
//! use session_daemon::{Claimed, Services};
//! use session_store::DecodeOptions;
//! use session_workers::submit::HttpTransport;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let claimed = Claimed::claim(dir.path(), DecodeOptions::default(), "my-station")?;
//! let recovered = claimed.recover(|_id, _session| {}, |_progress| {})?;
//! let store = claimed.migrate(recovered.outdated, |_progress| {})?;
//! let services = Services::<HttpTransport>::default(); // cleanup only: no endpoint, no relay
//! let running = claimed.start(&store, recovered.delivery, None, services)?;
//! assert!(running.stop(std::time::Duration::from_secs(5)).await);
//! # Ok(())
//! # }
//! ```
//!
//! A crate of its own rather than a module of `session-workers`: it composes recovery,
//! migration, capture's relay and a directory watch with the workers, and a team that
//! only wants a submission worker should not compile those.
//!
//! What the station reports of itself is here too, for the same reason: [`status`]
//! (counts, journals, the last cleanup, the clock and the [`Alert`]s they raise, from a
//! read of the store or the daemon's index), the [`AlertWebhook`] that tells the alerts,
//! and [`metrics`] in the Prometheus text format; [`keep_index`] keeps a daemon's
//! session index current from the directory watch.
//!
//! [`settings`] is the daemon's configuration: typed [`settings::Settings`] resolved from
//! defaults, a TOML file, `HL7_*` variables and flags, as `sessionctl run` reads them.
#![warn(missing_docs)]

mod alert_webhook;
mod claim;
mod clock_record;
mod index_keeper;
pub mod metrics;
mod running;
pub mod settings;
mod signals;
mod status;
mod watch;

pub use alert_webhook::AlertWebhook;

pub use claim::{Claimed, DaemonError, Phase, Progress, Recovered};
pub use index_keeper::keep_index;
pub use running::{Running, Services, Submission};
pub use signals::StopSignals;
pub use status::{Alert, AlertKind, StatusOptions, StatusReport, status, status_from_index};
pub use watch::StoreWatch;
