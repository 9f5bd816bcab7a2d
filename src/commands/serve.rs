//! `setia serve`: the HTTP server, stopped gracefully by SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use setia_ingest::{AddressList, Ingest, IngestConfig};
use setia_store::Store;
use setia_worker::Worker;

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::exit::CliError;

pub async fn serve(
    store: Arc<dyn Store>,
    settings: &Settings,
    args: ServeArgs,
) -> Result<(), CliError> {
    let listen = args.listen.as_deref().unwrap_or(&settings.listen);
    let address_list = |name: &str, value: &Option<String>| -> Result<AddressList, CliError> {
        value
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(|e| CliError::BadInput(format!("{name}: {e}")))
    };
    let allowed = address_list("SETIA_MOOTA_ALLOWED_IPS", &settings.moota_allowed_ips)?;
    let trusted = address_list("SETIA_TRUSTED_PROXIES", &settings.trusted_proxies)?;
    let mut config = IngestConfig::new((!allowed.is_empty()).then_some(allowed), trusted);
    let new_inbox_rows = Arc::new(tokio::sync::Notify::new());
    config.new_inbox_rows = Some(new_inbox_rows.clone());

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::BadInput(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().context("the listening address")?;
    let ingest = Ingest::start(store.clone(), config);
    let app = setia_web::app(store.clone(), ingest.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = (!args.no_worker).then(|| {
        let worker = Worker::new(store, settings.worker_config()).woken_by(new_inbox_rows);
        tokio::spawn(worker.run(stopped))
    });

    tracing::info!(address = %bound, "serving");
    // One machine-readable line, so scripts and tests started on port 0 find the server.
    println!(
        "{}",
        serde_json::json!({"listening": format!("http://{bound}")})
    );

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the HTTP server failed")?;
    // In-flight requests have been answered; commit what the writer still holds.
    ingest.shutdown().await;
    let _ = stop.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: no new requests, finishing the ones in flight");
}

/// `setia worker`: the inbox worker alone, until SIGTERM or Ctrl-C.
pub async fn work(store: Arc<dyn Store>, settings: &Settings) -> Result<(), CliError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(store, settings.worker_config()).run(stopped));
    tracing::info!("worker running");
    println!("{}", serde_json::json!({"worker": "running"}));
    shutdown_signal().await;
    // The row in hand is finished (or its lease runs out); nothing is left half-done.
    let _ = stop.send(true);
    worker.await.context("the worker failed")?;
    Ok(())
}
