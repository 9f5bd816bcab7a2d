//! The peer of the ingest benchmark: a bare axum 0.8 handler on setia's webhook route shape
//! (`POST /webhooks/moota/{merchant_id}`) that reads the whole body and answers 200
//! `{"status":"received"}`. No signature check, no storage: the ceiling that setia's
//! endpoint is compared against.
//!
//! Runs on the same runtime setup as `setia serve` (tokio multi-thread, one worker per core,
//! axum with `http1` only) and prints the same `{"listening":"http://ADDR"}` line when ready.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "A bare axum webhook handler: reads the body, answers 200 received")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

async fn receive(Path(_merchant_id): Path<String>, body: Bytes) -> impl IntoResponse {
    // The body is read to the end (the extractor collects it); its bytes are not used.
    std::hint::black_box(body.len());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"received"}"#,
    )
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot listen on {}: {error}", args.listen);
                return std::process::ExitCode::from(2);
            }
        };
        let bound = listener.local_addr().expect("the listening address");
        let app = Router::new().route("/webhooks/moota/{merchant_id}", post(receive));
        println!(
            "{}",
            serde_json::json!({"listening": format!("http://{bound}")})
        );
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        match served {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("the HTTP server failed: {error}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}
