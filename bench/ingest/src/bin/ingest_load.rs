//! The ingest benchmark's load generator, one tool for both targets (setia's webhook endpoint
//! and the bare axum peer), so both see exactly the same client.
//!
//! Before anything is timed it builds every request it will send: distinct realistic Moota
//! bodies (a JSON array of one mutation with its own `mutation_id` and `amount`), each signed
//! with HMAC-SHA256 under the merchant's secret. Signing is not in the measured path.
//!
//! Two modes, over HTTP/1.1 keep-alive connections:
//! - `closed`: C connections, each sends its next request as soon as the previous answer is in
//!   (maximum throughput). Reports requests/s and latency of the requests sent after warm-up.
//! - `open`: a fixed rate. A dispatcher thread releases request i at `start + i/rate` whatever
//!   the answers do; a free connection takes it. Latency is measured from the *scheduled* send
//!   time (no coordinated omission: a stalled server is charged for the queue it causes), and
//!   also, for information, from the actual send (service time).
//!
//! Prints one JSON object on stdout and one human line on stderr.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::sync::{mpsc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Closed loop: maximum throughput with C connections.
    Closed,
    /// Open loop: a fixed request rate, latency from the scheduled send time.
    Open,
}

#[derive(Parser, Debug)]
#[command(about = "Load generator for setia's Moota webhook endpoint and its bare axum peer")]
struct Args {
    /// Full URL of the webhook endpoint, e.g. http://127.0.0.1:8080/webhooks/moota/mer_…
    #[arg(long)]
    url: String,
    /// The merchant's webhook secret (bodies are signed with it).
    #[arg(long)]
    secret: String,
    /// A name for the target, copied into the output.
    #[arg(long, default_value = "target")]
    label: String,
    #[arg(long, value_enum, default_value_t = Mode::Closed)]
    mode: Mode,
    /// Concurrent HTTP/1.1 keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    /// Seconds of load before measuring; answers are checked and counted, not timed.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop: requests per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Closed loop: the most requests to prepare (and so send). The run stops early, and says
    /// so, if they are used up before the duration ends.
    #[arg(long, default_value_t = 1_600_000)]
    max_requests: usize,
    /// Tokio worker threads of the generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-request timeout in milliseconds (a timed-out request counts as an error).
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Makes mutation ids unique across runs against the same database; defaults to the clock.
    #[arg(long)]
    run_id: Option<String>,
    /// The server's process id: its CPU use during the measured window is reported (Linux),
    /// with the generator's own and what the rest of the machine used.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// One prepared request: its body and the signature header value.
struct Prepared {
    body: Bytes,
    signature: HeaderValue,
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    /// Latency of measured requests (closed: from send; open: from scheduled send), in ns.
    latencies: Vec<u64>,
    /// Open loop: latency from the actual send, in ns.
    service: Vec<u64>,
    /// Open loop: how late the send was against its schedule, in ns.
    lag: Vec<u64>,
    measured: u64,
    received: u64,
    duplicate: u64,
    other_200: u64,
    non_200: u64,
    errors: u64,
    /// Every request answered 200 "received", warm-up included (what the inbox must hold).
    received_total: u64,
    sent_total: u64,
    last_completion: Option<Instant>,
}

enum Outcome {
    Received,
    Duplicate,
    Other200,
    Non200,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let uri: Uri = match args.url.parse() {
        Ok(uri) => uri,
        Err(error) => {
            eprintln!("--url: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        eprintln!("--url: only http://HOST:PORT/… is supported");
        return std::process::ExitCode::from(2);
    }
    let count = match args.mode {
        Mode::Closed => args.max_requests,
        Mode::Open => ((args.warmup + args.duration) * args.rate).ceil() as usize,
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{:x}", nanos % (1 << 40))
    });

    let prepare_started = Instant::now();
    let requests = Arc::new(prepare(&args.secret, &run_id, count));
    let prepare_seconds = prepare_started.elapsed().as_secs_f64();
    let body_bytes = requests.iter().map(|r| r.body.len()).sum::<usize>() / count.max(1);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match args.mode {
            Mode::Closed => closed_loop(&args, &uri, requests.clone()).await,
            Mode::Open => open_loop(&args, &uri, requests.clone()).await,
        }
    });
    let (tallies, window, exhausted, cpu) = match result {
        Ok(result) => result,
        Err(error) => {
            eprintln!("{}: {error}", args.label);
            return std::process::ExitCode::FAILURE;
        }
    };

    let report = Report::new(tallies);
    let json = serde_json::json!({
        "label": args.label,
        "mode": match args.mode { Mode::Closed => "closed", Mode::Open => "open" },
        "url": args.url,
        "connections": args.connections,
        "threads": args.threads,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "target_rate": (args.mode == Mode::Open).then_some(args.rate),
        "prepared": count,
        "body_bytes_avg": body_bytes,
        "prepare_s": round3(prepare_seconds),
        "exhausted": exhausted,
        "window_s": round3(window.as_secs_f64()),
        "measured": report.measured,
        "requests_per_s": round3(report.measured as f64 / window.as_secs_f64().max(1e-9)),
        "received_per_s": round3(report.received as f64 / window.as_secs_f64().max(1e-9)),
        "latency_ms": report.latency.json(),
        "service_ms": report.service.as_ref().map(Percentiles::json),
        "send_lag_ms": report.lag.as_ref().map(Percentiles::json),
        "received": report.received,
        "duplicate": report.duplicate,
        "other_200": report.other_200,
        "non_200": report.non_200,
        "errors": report.errors,
        "cpu_cores": cpu.as_ref().map(CpuUse::json),
        "sent_total": report.sent_total,
        "received_total": report.received_total,
    });
    println!("{json}");
    let latency_from = match args.mode {
        Mode::Closed => "",
        Mode::Open => " (from scheduled send)",
    };
    eprintln!(
        "{label} {mode}: {rps:.0} req/s over {window:.1}s, p50 {p50:.3} ms, p99 {p99:.3} ms, \
         max {max:.3} ms{latency_from}; {measured} measured, {received} received, \
         {duplicate} duplicate, {non_200} non-200, {errors} errors{exhausted}",
        label = args.label,
        mode = match args.mode {
            Mode::Closed => format!("closed c={}", args.connections),
            Mode::Open => format!("open {} req/s", args.rate),
        },
        rps = report.measured as f64 / window.as_secs_f64().max(1e-9),
        window = window.as_secs_f64(),
        p50 = report.latency.p50,
        p99 = report.latency.p99,
        max = report.latency.max,
        measured = report.measured,
        received = report.received,
        duplicate = report.duplicate,
        non_200 = report.non_200,
        errors = report.errors,
        exhausted = if exhausted {
            "; ran out of prepared requests"
        } else {
            ""
        },
    );
    std::process::ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// Builds `count` distinct signed single-mutation Moota bodies, on every core.
fn prepare(secret: &str, run_id: &str, count: usize) -> Vec<Prepared> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = count.div_ceil(threads).max(1);
    let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|from| {
                let mac = mac.clone();
                let to = (from + chunk).min(count);
                scope.spawn(move || {
                    (from..to)
                        .map(|i| {
                            let body = mutation_body(run_id, i);
                            let mut mac = mac.clone();
                            mac.update(body.as_bytes());
                            let signature = hex::encode(mac.finalize().into_bytes());
                            Prepared {
                                body: Bytes::from(body),
                                signature: HeaderValue::from_str(&signature)
                                    .expect("hex is a header value"),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a body-building thread"))
            .collect()
    })
}

const PAYERS: [&str; 8] = [
    "BUDI SANTOSO",
    "SITI RAHAYU",
    "AGUS SETIAWAN",
    "DEWI LESTARI",
    "RINA KARTIKA",
    "HENDRA WIJAYA",
    "NURUL HIDAYAH",
    "EKO PRASETYO",
];

/// A realistic Moota webhook body: an array of one CR mutation, shaped like the ones in
/// tests/fixtures/moota/webhook-history-vector.json. `mutation_id`, `token` and `amount` are
/// unique per request; the time moves one second per request.
fn mutation_body(run_id: &str, i: usize) -> String {
    let mutation_id = format!("b{run_id}x{i:07}");
    let amount = 50_000 + i as u64; // rupiah; unique within a run
    let seconds = i as u64;
    let day = 1 + (seconds / 86_400) % 28;
    let (h, m, s) = ((seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60);
    let date = format!("2026-11-{day:02} {h:02}:{m:02}:{s:02}");
    let payer = PAYERS[i % PAYERS.len()];
    let description = format!(
        "TRSF E-BANKING CR {day:02}11/FTSCY/WS9{:04} {amount}.00 {payer}",
        i % 10_000
    );
    let balance = 10_000_000 + amount;
    // Written out rather than built as a serde_json::Value: about 4x faster to prepare, and
    // every value here is plain ASCII that needs no escaping.
    format!(
        concat!(
            r#"[{{"account_number":"235264741","date":"{date}","description":"{description}","#,
            r#""note":"","amount":{amount},"type":"CR","balance":{balance},"updated_at":"{date}","#,
            r#""created_at":"{date}","mutation_id":"{id}","token":"{id}","bank_id":"VLagzqBj42D","#,
            r#""taggings":[],"bank":{{"corporate_id":null,"username":"toko.sejahtera","#,
            r#""atas_nama":"Toko Sejahtera","balance":"{balance}.00","account_number":"235264741","#,
            r#""bank_type":"bca","login_retry":0,"date_from":"2026-11-01 00:00:00","#,
            r#""date_to":"2026-11-30 00:00:00","meta":null,"interval_refresh":15,"#,
            r#""next_queue":"2026-11-27 11:16:57","is_active":true,"in_queue":0,"in_progress":0,"#,
            r#""recurred_at":"2026-11-27 11:01:57","created_at":"2026-09-24 11:01:57","#,
            r#""token":"VLagzqBj42D","bank_id":"VLagzqBj42D","label":"BCA","#,
            r#""last_update":"2026-11-27T03:46:57.000000Z"}}}}]"#
        ),
        date = date,
        description = description,
        amount = amount,
        balance = balance,
        id = mutation_id,
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

struct Target {
    address: String,
    host: HeaderValue,
    path: Uri,
    timeout: Duration,
}

impl Target {
    fn new(args: &Args, uri: &Uri) -> Target {
        let host = uri.host().expect("checked");
        let port = uri.port_u16().unwrap_or(80);
        let address = format!("{host}:{port}");
        Target {
            host: HeaderValue::from_str(&address).expect("host:port is a header value"),
            address,
            path: uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .expect("a path"),
            timeout: Duration::from_millis(args.timeout_ms),
        }
    }

    async fn connect(&self) -> std::io::Result<Sender> {
        let stream = tokio::net::TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends one prepared request on `sender` and reads the whole answer.
    async fn send(&self, sender: &mut Sender, prepared: &Prepared) -> Result<Outcome, String> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.path.clone())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static("setia-bench-ingest"))
            .header("signature", prepared.signature.clone())
            .body(Full::new(prepared.body.clone()))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(if status != 200 {
                Outcome::Non200
            } else if contains(&body, b"\"received\"") {
                Outcome::Received
            } else if contains(&body, b"\"duplicate\"") {
                Outcome::Duplicate
            } else {
                Outcome::Other200
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err("timed out".into()),
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sends one request, reconnecting first if the connection is gone, and counts the outcome.
/// True when an HTTP answer (of any status) came back: only those have a latency.
async fn exchange(
    target: &Target,
    sender: &mut Option<Sender>,
    prepared: &Prepared,
    tally: &mut Tally,
    measured: bool,
) -> bool {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        match target.connect().await {
            Ok(fresh) => *sender = Some(fresh),
            Err(_) => {
                tally.errors += u64::from(measured);
                tokio::time::sleep(Duration::from_millis(10)).await;
                return false;
            }
        }
    }
    tally.sent_total += 1;
    let outcome = target
        .send(sender.as_mut().expect("connected"), prepared)
        .await;
    if matches!(outcome, Ok(Outcome::Received)) {
        tally.received_total += 1;
    }
    if measured {
        match &outcome {
            Ok(Outcome::Received) => tally.received += 1,
            Ok(Outcome::Duplicate) => tally.duplicate += 1,
            Ok(Outcome::Other200) => tally.other_200 += 1,
            Ok(Outcome::Non200) => tally.non_200 += 1,
            Err(_) => tally.errors += 1,
        }
    }
    if outcome.is_err() {
        // The connection's state is unknown: start a new one.
        *sender = None;
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Closed loop

type RunResult = Result<(Vec<Tally>, Duration, bool, Option<CpuUse>), String>;

async fn closed_loop(args: &Args, uri: &Uri, requests: Arc<Vec<Prepared>>) -> RunResult {
    let target = Arc::new(Target::new(args, uri));
    let mut senders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        senders.push(
            target
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", target.address))?,
        );
    }
    let next = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(args.warmup);
    let cpu_start = CpuSnapshot::at(measure_from);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for sender in senders {
        let (target, requests, next, exhausted) = (
            target.clone(),
            requests.clone(),
            next.clone(),
            exhausted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sender = Some(sender);
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(prepared) = requests.get(index) else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                let measured = sent >= measure_from;
                if !exchange(&target, &mut sender, prepared, &mut tally, measured).await {
                    continue;
                }
                if measured {
                    let done = Instant::now();
                    tally.measured += 1;
                    tally.latencies.push((done - sent).as_nanos() as u64);
                    tally.last_completion = Some(done);
                }
            }
            tally
        }));
    }
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await.map_err(|e| e.to_string())?);
    }
    let end = tallies
        .iter()
        .filter_map(|t| t.last_completion)
        .max()
        .unwrap_or(measure_from);
    let window = end.saturating_duration_since(measure_from);
    let cpu = CpuUse::since(cpu_start, args.server_pid).await;
    Ok((tallies, window, exhausted.load(Ordering::Relaxed), cpu))
}

// ---------------------------------------------------------------------------------------------
// Open loop

async fn open_loop(args: &Args, uri: &Uri, requests: Arc<Vec<Prepared>>) -> RunResult {
    let target = Arc::new(Target::new(args, uri));
    let mut senders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        senders.push(
            target
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", target.address))?,
        );
    }
    let count = requests.len();
    let warmup_count = (args.warmup * args.rate).round() as usize;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let (queue, receiver) = mpsc::unbounded_channel::<(usize, Instant)>();
    let receiver = Arc::new(Mutex::new(receiver));

    let mut tasks = Vec::new();
    for sender in senders {
        let (target, requests, receiver) = (target.clone(), requests.clone(), receiver.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sender = Some(sender);
            loop {
                let job = receiver.lock().await.recv().await;
                let Some((index, scheduled)) = job else { break };
                let measured = index >= warmup_count;
                let sent = Instant::now();
                // A failed connect or exchange is counted as an error; it is not retried.
                if !exchange(&target, &mut sender, &requests[index], &mut tally, measured).await {
                    continue;
                }
                if measured {
                    let done = Instant::now();
                    tally.measured += 1;
                    tally.latencies.push((done - scheduled).as_nanos() as u64);
                    tally.service.push((done - sent).as_nanos() as u64);
                    tally
                        .lag
                        .push(sent.saturating_duration_since(scheduled).as_nanos() as u64);
                    tally.last_completion = Some(done);
                }
            }
            tally
        }));
    }

    // The schedule is kept by a plain thread: std's sleep is precise to tens of microseconds,
    // a tokio timer only to the millisecond.
    let started = Instant::now();
    let dispatcher = std::thread::spawn(move || {
        for index in 0..count {
            let scheduled = started + period.mul_f64(index as f64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            if queue.send((index, scheduled)).is_err() {
                break;
            }
        }
    });
    let measure_from = started + period.mul_f64(warmup_count as f64);
    let cpu_start = CpuSnapshot::at(measure_from);
    tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the dispatcher thread panicked".to_string())?;

    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await.map_err(|e| e.to_string())?);
    }
    // The measured window is the schedule's (rate × duration); a server that falls behind shows
    // up in the latencies, not in a stretched window.
    let window = (started + period.mul_f64(count as f64)).saturating_duration_since(measure_from);
    let cpu = CpuUse::since(cpu_start, args.server_pid).await;
    Ok((tallies, window, false, cpu))
}

// ---------------------------------------------------------------------------------------------
// CPU use (Linux /proc): who used the cores during the measured window

/// CPU ticks at one instant: the machine's (from /proc/stat) and every user-space process's
/// (from /proc/PID/stat), this generator and the server included.
struct CpuSnapshot {
    at: Instant,
    /// Busy ticks outside interrupts.
    machine_busy: u64,
    /// Interrupt and softirq ticks (loopback TCP is mostly here): no process is charged them.
    machine_interrupts: u64,
    machine_total: u64,
    /// pid → utime + stime + cutime + cstime (children reaped during the window count for
    /// their parent), user-space processes only (kernel threads have no command line).
    processes: HashMap<u32, u64>,
}

impl CpuSnapshot {
    fn take() -> Option<CpuSnapshot> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
        let total: u64 = ticks.iter().take(8).sum();
        let (idle, interrupts) = (field(3) + field(4), field(5) + field(6));
        let mut processes = HashMap::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ticks) = process_ticks(pid) {
                processes.insert(pid, ticks);
            }
        }
        Some(CpuSnapshot {
            at: Instant::now(),
            machine_busy: total - idle - interrupts,
            machine_interrupts: interrupts,
            machine_total: total,
            processes,
        })
    }

    /// Takes a snapshot when `at` comes.
    fn at(at: Instant) -> tokio::task::JoinHandle<Option<CpuSnapshot>> {
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            CpuSnapshot::take()
        })
    }
}

/// A user-space process's CPU ticks, its reaped children's included.
fn process_ticks(pid: u32) -> Option<u64> {
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if command_line.is_empty() {
        return None; // a kernel thread (or a zombie)
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime, stime, cutime and cstime are the 12th to 15th of them.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    (11..15).map(|i| fields.get(i)?.parse::<u64>().ok()).sum()
}

/// Cores used on average over the window (1.0 = one core busy all the time).
struct CpuUse {
    cores: usize,
    /// The whole machine, interrupts included.
    machine: f64,
    interrupts: f64,
    generator: f64,
    server: Option<f64>,
    /// Every other user-space process.
    other: f64,
}

impl CpuUse {
    async fn since(
        start: tokio::task::JoinHandle<Option<CpuSnapshot>>,
        server_pid: Option<u32>,
    ) -> Option<CpuUse> {
        let start = start.await.ok()??;
        let end = CpuSnapshot::take()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let seconds = (end.at - start.at).as_secs_f64().max(1e-9);
        // /proc counts in USER_HZ ticks, 100 per second on Linux.
        let per_second = |ticks: u64| ticks as f64 / 100.0 / seconds;
        // A process that started during the window counts whole.
        let used = |pid: u32| -> u64 {
            let after = end.processes.get(&pid).copied().unwrap_or(0);
            after.saturating_sub(start.processes.get(&pid).copied().unwrap_or(0))
        };
        let own = std::process::id();
        let other = end
            .processes
            .keys()
            .filter(|&&pid| pid != own && Some(pid) != server_pid)
            .map(|&pid| used(pid))
            .sum();
        let total = (end.machine_total - start.machine_total).max(1) as f64;
        let share = |ticks: u64| ticks as f64 / total * cores as f64;
        let generator = per_second(used(own));
        let server = server_pid.map(|pid| per_second(used(pid)));
        // A parent that reaps a long-lived child during the window is charged the child's whole
        // life: never report more than the machine's busy time (outside interrupts) left over.
        let left_over =
            share(end.machine_busy - start.machine_busy) - generator - server.unwrap_or(0.0);
        Some(CpuUse {
            cores,
            machine: share(
                end.machine_busy + end.machine_interrupts
                    - start.machine_busy
                    - start.machine_interrupts,
            ),
            interrupts: share(end.machine_interrupts - start.machine_interrupts),
            generator,
            server,
            other: per_second(other).min(left_over.max(0.0)),
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "of": self.cores,
            "machine": round3(self.machine),
            "interrupts": round3(self.interrupts),
            "generator": round3(self.generator),
            "server": self.server.map(round3),
            "other": round3(self.other),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Results

struct Percentiles {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut values: Vec<u64>) -> Percentiles {
        if values.is_empty() {
            return Percentiles {
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        values.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        // Nearest rank: the smallest value with at least q of the values at or below it.
        let at = |q: f64| {
            ms(values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1])
        };
        Percentiles {
            mean: ms(values.iter().sum::<u64>() / values.len() as u64),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: ms(*values.last().expect("not empty")),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "mean": round3(self.mean),
            "p50": round3(self.p50),
            "p90": round3(self.p90),
            "p99": round3(self.p99),
            "p999": round3(self.p999),
            "max": round3(self.max),
        })
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

struct Report {
    measured: u64,
    latency: Percentiles,
    service: Option<Percentiles>,
    lag: Option<Percentiles>,
    received: u64,
    duplicate: u64,
    other_200: u64,
    non_200: u64,
    errors: u64,
    sent_total: u64,
    received_total: u64,
}

impl Report {
    fn new(tallies: Vec<Tally>) -> Report {
        let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
        let (measured, received, duplicate, other_200, non_200, errors, sent, received_total) = (
            sum(|t| t.measured),
            sum(|t| t.received),
            sum(|t| t.duplicate),
            sum(|t| t.other_200),
            sum(|t| t.non_200),
            sum(|t| t.errors),
            sum(|t| t.sent_total),
            sum(|t| t.received_total),
        );
        let open = tallies.iter().any(|t| !t.service.is_empty());
        let mut latencies = Vec::new();
        let mut service = Vec::new();
        let mut lag = Vec::new();
        for tally in tallies {
            latencies.extend(tally.latencies);
            service.extend(tally.service);
            lag.extend(tally.lag);
        }
        Report {
            measured,
            latency: Percentiles::of(latencies),
            service: open.then(|| Percentiles::of(service)),
            lag: open.then(|| Percentiles::of(lag)),
            received,
            duplicate,
            other_200,
            non_200,
            errors,
            sent_total: sent,
            received_total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_moota_shaped_distinct_and_signed() {
        let prepared = prepare("a-secret-1234", "t", 1000);
        assert_eq!(prepared.len(), 1000);
        let mut ids = std::collections::HashSet::new();
        for (i, p) in prepared.iter().enumerate() {
            let value: serde_json::Value = serde_json::from_slice(&p.body).expect("valid JSON");
            let mutation = &value.as_array().expect("an array")[0];
            assert_eq!(mutation["type"], "CR");
            assert_eq!(mutation["amount"], 50_000 + i as u64);
            assert_eq!(mutation["bank"]["bank_type"], "bca");
            assert!(ids.insert(mutation["mutation_id"].as_str().unwrap().to_owned()));
            let mut mac = Hmac::<Sha256>::new_from_slice(b"a-secret-1234").unwrap();
            mac.update(&p.body);
            assert_eq!(
                p.signature.to_str().unwrap(),
                hex::encode(mac.finalize().into_bytes())
            );
        }
    }
}
