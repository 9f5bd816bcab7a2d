//! The delivery peer (issue 27): a bare lettre sender. It builds `--messages` messages of
//! about the size setia's birthday offers have (not timed), then sends them all through
//! lettre's pooled async SMTP transport with `--connections` connections and as many
//! messages in flight, as setia does, and prints one JSON object: sent, seconds, per second.
//! No database, no templates, no outbox: what SMTP costs alone.

use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use lettre::message::{header::ContentType, MultiPart, SinglePart};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Message, Tokio1Executor};

/// setia's allocator, as `mail-bench` has it: the two differ in their code, not in malloc
/// (glibc's made this peer 3 to 7 % slower).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// The SMTP server, e.g. smtp://127.0.0.1:2525.
    #[arg(long)]
    smtp_url: String,
}

/// A two-part message (text and HTML) of about 3.5 KB, as a birthday offer renders.
fn message(n: usize) -> Message {
    let text = format!(
        "Selamat ulang tahun, Pelanggan {n}!\n\n{}",
        "Kode BDAY-ABCD1234. ".repeat(60)
    );
    let html = format!(
        "<p>Selamat ulang tahun, Pelanggan {n}!</p>{}",
        "<p>Kode <b>BDAY-ABCD1234</b></p>".repeat(45)
    );
    Message::builder()
        .from("Toko Benchmark <noreply@toko.example>".parse().unwrap())
        .to(format!("Pelanggan {n} <b{n}@example.co.id>")
            .parse()
            .unwrap())
        .subject("Selamat ulang tahun dari Toko Benchmark")
        .message_id(Some(format!("<bare.{n}@toko.example>")))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .expect("a message")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let messages: Vec<Message> = (0..args.messages).map(message).collect();
    let bytes = messages.iter().map(|m| m.formatted().len()).sum::<usize>() / messages.len().max(1);
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&args.smtp_url)
        .expect("an SMTP URL")
        .pool_config(
            PoolConfig::new()
                .max_size(args.connections.max(1))
                .idle_timeout(Duration::from_secs(60)),
        )
        .timeout(Some(Duration::from_secs(30)))
        .build();
    let started = Instant::now();
    let results: Vec<bool> = futures_util::stream::iter(messages)
        .map(|message| {
            let transport = &transport;
            async move { transport.send(message).await.is_ok() }
        })
        .buffer_unordered(args.connections.max(1) as usize)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let sent = results.iter().filter(|ok| **ok).count();
    println!(
        "{}",
        serde_json::json!({"sent": sent, "failed": results.len() - sent, "seconds": seconds,
                           "per_second": (sent as f64 / seconds).round(),
                           "connections": args.connections, "mean_bytes": bytes})
    );
}
