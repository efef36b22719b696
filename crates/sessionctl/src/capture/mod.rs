//! `capture`: the relay alone (`session_capture::relay`), and pcap import.

pub(crate) mod pcap;

use std::sync::Arc;

use session_capture::Recorder;
use session_capture::relay::{BindError, RelayConfig, RelayStats, recover_orphans, relay};
use session_store::SessionStore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::CliError;

/// The relay `config` asks for, when `capture_listen` and `capture_forward` are set.
pub(crate) fn relay_config(config: &Config) -> Option<RelayConfig> {
    let (listen, forward) = config.settings().capture()?;
    Some(
        RelayConfig::new(listen, forward)
            .markers(config.settings().markers())
            .framing(config.settings().capture_framing),
    )
}

/// Binds the relay's address; start-up fails (exit 1) when it is taken.
pub(crate) async fn bind(config: &RelayConfig) -> Result<tokio::net::TcpListener, CliError> {
    session_capture::relay::bind(config)
        .await
        .map_err(|BindError { listen, source, .. }| {
            CliError::Failed(format!("cannot listen on {listen} (capture_listen): {source}"))
        })
}

/// `sessionctl capture`: the relay alone, until SIGINT or SIGTERM (exit 0).
pub(crate) fn run(config: &Config) -> Result<(), CliError> {
    let Some(relay_config) = relay_config(config) else {
        return Err(CliError::BadInput(
            "capture needs --listen ADDR and --forward ADDR (or capture_listen and capture_forward)".into(),
        ));
    };
    let dir = crate::config::store_dir(config)?;
    let fs =
        session_fs::Store::open(&dir).map_err(|e| CliError::Failed(format!("cannot open the store: {e}")))?;
    if let Some(was) = fs
        .secure_dir()
        .map_err(|e| CliError::Failed(format!("cannot secure the store: {e}")))?
    {
        tracing::warn!(dir = %dir.display(), was = format!("{was:o}"), "the store directory was open to others; now 0700");
    }
    let recorder = Arc::new(Recorder::new(SessionStore::new(
        fs,
        config.settings().decode_options(),
    )));
    recover_orphans(&recorder);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let signals = session_daemon::StopSignals::catch()?;
        let listener = bind(&relay_config).await?;
        let cancel = CancellationToken::new();
        let relaying = tokio::spawn(relay(
            listener,
            recorder,
            relay_config,
            Arc::new(RelayStats::default()),
            cancel.clone(),
        ));
        signals.wait().await;
        tracing::info!("stopping: open sessions are stored as interrupted");
        cancel.cancel();
        relaying
            .await
            .map_err(|e| CliError::Failed(format!("capture relay: {e}")))
    })
}
