//! `setia serve`: the HTTP server, stopped gracefully by SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use setia_ingest::{AddressList, Ingest, IngestConfig};
use setia_store::Store;
use setia_worker::supervise::{supervised, RESTART_AFTER};
use setia_worker::Worker;
use tokio::task::JoinHandle;

type Receiver = tokio::sync::watch::Receiver<bool>;

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::exit::CliError;

pub async fn serve(
    store: Arc<dyn Store>,
    settings: &Settings,
    args: ServeArgs,
) -> Result<(), CliError> {
    let listen = args.listen.as_deref().unwrap_or(&settings.listen);
    let options = Options {
        worker: !args.no_worker,
        scheduler: !args.no_scheduler,
    };
    let running = start(store, settings, listen, options).await?;
    // One machine-readable line, so scripts and tests started on port 0 find the server.
    println!("{}", serde_json::json!({"listening": running.base_url()}));
    shutdown_signal().await;
    running.stop().await
}

/// What runs beside the HTTP server in this process.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The inbox worker, the nightly metrics and the scheduled Moota sync.
    pub worker: bool,
    /// The email scheduler and delivery loop.
    pub scheduler: bool,
}

/// A started server with its background jobs; `stop` ends them in order.
pub struct Running {
    base_url: String,
    ingest: Arc<Ingest>,
    stop_server: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_jobs: tokio::sync::watch::Sender<bool>,
    jobs: Vec<tokio::task::JoinHandle<()>>,
}

/// Binds `listen` and starts the HTTP server, plus the worker, nightly metrics and email
/// jobs as `options` say.
pub async fn start(
    store: Arc<dyn Store>,
    settings: &Settings,
    listen: &str,
    options: Options,
) -> Result<Running, CliError> {
    let address_list = |name: &str, value: &Option<String>| -> Result<AddressList, CliError> {
        value
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(|e| CliError::BadInput(format!("{name}: {e}")))
    };
    let allowed = address_list("SETIA_MOOTA_ALLOWED_IPS", &settings.moota_allowed_ips)?;
    let trusted = address_list("SETIA_TRUSTED_PROXIES", &settings.trusted_proxies)?;
    let web = setia_web::WebConfig {
        public_url: settings.public_url.clone(),
        trusted_proxies: trusted.clone(),
        // Renders the dashboard's email previews with the merchant's templates.
        mailer: match super::mail::mailer(store.clone(), settings) {
            Ok(mailer) => Some(Arc::new(mailer)),
            Err(error) => {
                tracing::warn!(%error, "the dashboard shows no email previews");
                None
            }
        },
        ..setia_web::WebConfig::default()
    };
    let mut config = IngestConfig::new((!allowed.is_empty()).then_some(allowed), trusted);
    let new_inbox_rows = Arc::new(tokio::sync::Notify::new());
    config.new_inbox_rows = Some(new_inbox_rows.clone());
    let mailer = if options.scheduler {
        Some(super::mail::mailer(store.clone(), settings)?)
    } else {
        None
    };

    // Before listening, so that the first webhooks do not wait for it (about a second for a
    // million inbox rows on SQLite).
    store
        .prepare_for_webhooks()
        .await
        .context("cannot read the inbox for the duplicate check")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::BadInput(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().context("the listening address")?;
    let ingest = Ingest::start(store.clone(), config);
    let app = setia_web::app_with(store.clone(), ingest.clone(), web);

    let (stop_jobs, stopped) = tokio::sync::watch::channel(false);
    let mut jobs = Vec::new();
    if let Some(mailer) = mailer {
        jobs.push(mail_job(mailer, stopped.clone()));
    }
    if options.worker {
        jobs.push(nightly_job(store.clone(), settings, stopped.clone()));
        jobs.extend(moota_sync(store.clone(), settings, stopped.clone())?);
        jobs.push(inbox_job(
            store,
            settings.worker_config(),
            Some(new_inbox_rows),
            stopped,
        ));
    }

    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = server_stopped.await;
        })
        .await
    });
    tracing::info!(address = %bound, "serving");
    Ok(Running {
        base_url: format!("http://{bound}"),
        ingest,
        stop_server,
        server,
        stop_jobs,
        jobs,
    })
}

impl Running {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops accepting, answers the requests in flight, commits what the webhook writer
    /// holds, then stops the jobs (each finishes the item in hand).
    pub async fn stop(self) -> Result<(), CliError> {
        let _ = self.stop_server.send(());
        self.server
            .await
            .context("the HTTP server stopped")?
            .context("the HTTP server failed")?;
        self.ingest.shutdown().await;
        let _ = self.stop_jobs.send(true);
        for job in self.jobs {
            let _ = job.await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

pub async fn shutdown_signal() {
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
    let mut jobs = vec![
        nightly_job(store.clone(), settings, stopped.clone()),
        mail_job(
            super::mail::mailer(store.clone(), settings)?,
            stopped.clone(),
        ),
    ];
    jobs.extend(moota_sync(store.clone(), settings, stopped.clone())?);
    jobs.push(inbox_job(store, settings.worker_config(), None, stopped));
    tracing::info!("worker running");
    println!("{}", serde_json::json!({"worker": "running"}));
    shutdown_signal().await;
    // The row in hand is finished (or its lease runs out); nothing is left half-done.
    let _ = stop.send(true);
    for job in jobs {
        job.await.context("a background job failed")?;
    }
    Ok(())
}

// Each background job runs supervised: a panic is logged, counted in
// `setia_job_panics_total{job}` and the job starts again (setia_worker::supervise).

fn mail_job(mailer: setia_mail::Mailer, stopped: Receiver) -> JoinHandle<()> {
    supervised("mail", stopped, RESTART_AFTER, move |stop| {
        mailer.clone().run(stop)
    })
}

fn nightly_job(store: Arc<dyn Store>, settings: &Settings, stopped: Receiver) -> JoinHandle<()> {
    let schedule = settings.nightly_schedule();
    supervised("nightly_metrics", stopped, RESTART_AFTER, move |stop| {
        crate::metrics_job::nightly(store.clone(), schedule, stop)
    })
}

fn inbox_job(
    store: Arc<dyn Store>,
    config: setia_worker::WorkerConfig,
    wake: Option<Arc<tokio::sync::Notify>>,
    stopped: Receiver,
) -> JoinHandle<()> {
    supervised("inbox", stopped, RESTART_AFTER, move |stop| {
        let worker = Worker::new(store.clone(), config.clone());
        match &wake {
            Some(wake) => worker.woken_by(wake.clone()),
            None => worker,
        }
        .run(stop)
    })
}

/// The scheduled Moota sync, unless `SETIA_MOOTA_SYNC_MINUTES` is 0.
fn moota_sync(
    store: Arc<dyn Store>,
    settings: &Settings,
    stopped: Receiver,
) -> Result<Option<JoinHandle<()>>, CliError> {
    if settings.moota_sync_minutes == 0 {
        return Ok(None);
    }
    let every = chrono::TimeDelta::minutes(i64::from(settings.moota_sync_minutes));
    let api = settings.moota_api()?;
    Ok(Some(supervised(
        "moota_sync",
        stopped,
        RESTART_AFTER,
        move |stop| super::moota::scheduled(store.clone(), api.clone(), every, stop),
    )))
}
