//! `recommend-bench`: how good setia's recommendations are, offline, and how fast and lean
//! the recommendation step is. See README.md beside this file.
//!
//! ```text
//! cargo build --release -p setia-bench-recommend
//! recommend-bench --mode quality [--customers 100000 --purchases 1000000] [--seed 42] [--json]
//! recommend-bench --mode speed   [--customers 1000000 --purchases 4500000] [--seed 42] [--json]
//! ```
//!
//! Both modes draw a purchase history as `setia sandbox generate` does (the same
//! `SimulationConfig::targeting` over the 730 days ending yesterday) into a temporary
//! folder, then its items with `setia_sandbox::write_items_csv` (same seed), and read both
//! back into line columns: customers numbered in order of appearance, products by their
//! position in the sandbox catalogue.
//!
//! - **quality**: leave-last-order-out. For every customer with at least two purchases, the
//!   lines of the last purchase are hidden; `setia_analytics::recommend` is trained on every
//!   other line (of all customers) and asked for 10 products per customer. The popularity
//!   baseline, on the same split, recommends the 10 products with the most distinct buyers
//!   that the customer has not bought yet. Hit rate@10: share of evaluated customers with at
//!   least one hidden product among their 10. Recall@10: mean over evaluated customers of the
//!   share of their distinct hidden products that are among the 10.
//! - **speed**: `recommend` on every line, timed, and the process's peak resident memory
//!   during the call (VmHWM, reset just before it through /proc/self/clear_refs).
//!
//! Prints a readable report, or with `--json` one JSON object.

use std::collections::HashMap;
use std::error::Error;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use setia_analytics::simulate::{
    write_import_csv, SimulationConfig, SimulationParams, SimulationWindow,
};
use setia_analytics::{recommend, BasketColumns, CatalogueColumns, RecommendConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// How many products each customer is recommended, and the cut-off of both metrics.
const K: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Quality,
    Speed,
    Both,
}

#[derive(Debug, Parser)]
#[command(
    name = "recommend-bench",
    about = "setia's recommender: quality against popularity, and speed"
)]
struct Args {
    /// Customers to simulate (default: 100,000 for quality, 1,000,000 for speed).
    #[arg(long)]
    customers: Option<u64>,
    /// Purchases to aim for, as `sandbox generate --purchases` (default: 1,000,000 for
    /// quality, 4,500,000 for speed: about 10 M lines).
    #[arg(long)]
    purchases: Option<u64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// One JSON object on stdout instead of the readable report.
    #[arg(long)]
    json: bool,
}

/// A temporary folder, removed when dropped.
struct Work(PathBuf);

impl Work {
    fn new() -> Result<Work> {
        let path = std::env::temp_dir().join(format!(
            "setia-bench-recommend-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Work(path))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every line of a generated history: customer (0-based, in order of appearance), product
/// (position in the catalogue) and the purchase's number among the customer's (0-based).
struct Lines {
    customer: Vec<i64>,
    product: Vec<i64>,
    order: Vec<u32>,
    /// Purchases per customer.
    orders: Vec<u32>,
    products: usize,
    purchases: u64,
}

/// Figures of drawing a data set.
struct Drawn {
    lines: Lines,
    generate_seconds: f64,
    items_seconds: f64,
    read_seconds: f64,
}

fn draw(customers: u64, purchases: u64, seed: u64) -> Result<Drawn> {
    // As `setia sandbox generate`: two years of history to yesterday, default parameters.
    let yesterday = Utc::now().date_naive() - TimeDelta::days(1);
    let window = SimulationWindow::ending_on(yesterday, 730)?;
    let config = SimulationConfig::targeting(
        customers,
        purchases,
        window,
        SimulationParams::default(),
        seed,
    )?;
    let work = Work::new()?;
    let history = work.0.join("history.csv");
    let items = work.0.join("items.csv");

    let started = Instant::now();
    write_import_csv(&config, File::create(&history)?)?;
    let generate_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    setia_sandbox::write_items_csv(File::open(&history)?, File::create(&items)?, seed)?;
    let items_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let lines = read_lines(&history, &items)?;
    let read_seconds = started.elapsed().as_secs_f64();
    Ok(Drawn {
        lines,
        generate_seconds,
        items_seconds,
        read_seconds,
    })
}

fn csv_reader(path: &Path) -> Result<csv::Reader<BufReader<File>>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, File::open(path)?)))
}

fn column(reader: &mut csv::Reader<BufReader<File>>, name: &str) -> Result<usize> {
    reader
        .byte_headers()?
        .iter()
        .position(|h| h == name.as_bytes())
        .ok_or_else(|| format!("no {name} column").into())
}

/// Reads the history and its items side by side: the items come in the history's order, a
/// purchase's lines together.
fn read_lines(history: &Path, items: &Path) -> Result<Lines> {
    let sku_index: HashMap<Vec<u8>, i64> = setia_sandbox::catalogue()
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p.sku.into_bytes(), i as i64))
        .collect();
    let mut purchases_in = csv_reader(history)?;
    let (customer_at, reference_at) = (
        column(&mut purchases_in, "customer_external_id")?,
        column(&mut purchases_in, "reference")?,
    );
    let mut lines_in = csv_reader(items)?;
    let (line_reference_at, sku_at) = (
        column(&mut lines_in, "reference")?,
        column(&mut lines_in, "sku")?,
    );

    let mut lines = Lines {
        customer: Vec::new(),
        product: Vec::new(),
        order: Vec::new(),
        orders: Vec::new(),
        products: sku_index.len(),
        purchases: 0,
    };
    let mut purchase = csv::ByteRecord::new();
    let mut line = csv::ByteRecord::new();
    let mut have_line = lines_in.read_byte_record(&mut line)?;
    let mut last_customer: Vec<u8> = Vec::new();
    while purchases_in.read_byte_record(&mut purchase)? {
        let external_id = &purchase[customer_at];
        if lines.orders.is_empty() || external_id != last_customer.as_slice() {
            last_customer.clear();
            last_customer.extend_from_slice(external_id);
            lines.orders.push(0);
        }
        let customer = lines.orders.len() - 1;
        let order = lines.orders[customer];
        lines.orders[customer] += 1;
        lines.purchases += 1;
        let reference = &purchase[reference_at];
        let mut count = 0;
        while have_line && &line[line_reference_at] == reference {
            let product = *sku_index
                .get(&line[sku_at])
                .ok_or("an items line with a SKU outside the catalogue")?;
            lines.customer.push(customer as i64);
            lines.product.push(product);
            lines.order.push(order);
            count += 1;
            have_line = lines_in.read_byte_record(&mut line)?;
        }
        if count == 0 {
            return Err(format!(
                "purchase {} has no items line",
                String::from_utf8_lossy(reference)
            )
            .into());
        }
    }
    if have_line {
        return Err("items lines left after the last purchase (not in the history's order)".into());
    }
    Ok(lines)
}

fn catalogue_columns(products: usize) -> CatalogueColumns {
    CatalogueColumns {
        product: (0..products as i64).collect(),
        in_stock: vec![true; products],
    }
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets VmHWM (the peak resident set) to the current resident set (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> Value {
    kib.map_or(Value::Null, |k| {
        json!((k as f64 / 1024.0 * 10.0).round() / 10.0)
    })
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Per customer, the range of their lines (lines are grouped by customer).
fn customer_ranges(customer: &[i64], customers: usize) -> Vec<(usize, usize)> {
    let mut ranges = vec![(0, 0); customers];
    let mut start = 0;
    for i in 1..=customer.len() {
        if i == customer.len() || customer[i] != customer[start] {
            ranges[customer[start] as usize] = (start, i);
            start = i;
        }
    }
    ranges
}

fn quality(customers: u64, purchases: u64, seed: u64) -> Result<Value> {
    let drawn = draw(customers, purchases, seed)?;
    let lines = &drawn.lines;
    let customer_count = lines.orders.len();

    // The split: the last purchase of a customer with at least two is hidden.
    let hidden_line = |i: usize| {
        let orders = lines.orders[lines.customer[i] as usize];
        orders >= 2 && lines.order[i] == orders - 1
    };
    let mut train = BasketColumns {
        customer: Vec::with_capacity(lines.customer.len()),
        product: Vec::with_capacity(lines.customer.len()),
    };
    let mut hidden: Vec<Vec<i64>> = vec![Vec::new(); customer_count];
    for i in 0..lines.customer.len() {
        if hidden_line(i) {
            hidden[lines.customer[i] as usize].push(lines.product[i]);
        } else {
            train.customer.push(lines.customer[i]);
            train.product.push(lines.product[i]);
        }
    }
    for products in &mut hidden {
        products.sort_unstable();
        products.dedup();
    }
    // What each customer bought in the training lines, distinct and sorted.
    let ranges = customer_ranges(&train.customer, customer_count);
    let bought: Vec<Vec<i64>> = ranges
        .iter()
        .map(|&(start, end)| {
            let mut products = train.product[start..end].to_vec();
            products.sort_unstable();
            products.dedup();
            products
        })
        .collect();

    // Popularity: distinct buyers per product in the training lines.
    let mut buyers = vec![0u64; lines.products];
    for products in &bought {
        for &p in products {
            buyers[p as usize] += 1;
        }
    }
    let mut by_popularity: Vec<i64> = (0..lines.products as i64).collect();
    by_popularity.sort_by(|&a, &b| buyers[b as usize].cmp(&buyers[a as usize]).then(a.cmp(&b)));

    let catalogue = catalogue_columns(lines.products);
    let config = RecommendConfig::default();
    let started = Instant::now();
    let recommendations = recommend(&train, &catalogue, &config)?;
    let recommend_seconds = started.elapsed().as_secs_f64();
    let mut position: Vec<Option<usize>> = vec![None; customer_count];
    for (i, &customer) in recommendations.customers.iter().enumerate() {
        if let Some(slot) = position.get_mut(customer as usize) {
            *slot = Some(i);
        }
    }

    #[derive(Default)]
    struct Score {
        hits: u64,
        recall: f64,
        listed: u64,
    }
    impl Score {
        fn add(&mut self, hidden: &[i64], top: &[i64]) {
            let found = hidden.iter().filter(|p| top.contains(p)).count();
            self.hits += u64::from(found > 0);
            self.recall += found as f64 / hidden.len() as f64;
            self.listed += top.len() as u64;
        }
    }
    let (mut setia, mut popular) = (Score::default(), Score::default());
    let (mut evaluated, mut missing, mut only_rebuys, mut rebuy_products, mut hidden_products) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut recommended_products = vec![false; lines.products];
    let mut top = Vec::with_capacity(K);
    for customer in 0..customer_count {
        if lines.orders[customer] < 2 {
            continue;
        }
        let hidden = &hidden[customer];
        let bought = &bought[customer];
        evaluated += 1;
        let rebuys = hidden
            .iter()
            .filter(|p| bought.binary_search(p).is_ok())
            .count();
        rebuy_products += rebuys as u64;
        hidden_products += hidden.len() as u64;
        only_rebuys += u64::from(rebuys == hidden.len());

        let theirs: &[i64] = match position[customer] {
            Some(i) => &recommendations.products[i],
            None => {
                missing += 1;
                &[]
            }
        };
        let theirs = &theirs[..theirs.len().min(K)];
        for &p in theirs {
            if let Some(seen) = recommended_products.get_mut(p as usize) {
                *seen = true;
            }
        }
        setia.add(hidden, theirs);

        top.clear();
        top.extend(
            by_popularity
                .iter()
                .copied()
                .filter(|p| bought.binary_search(p).is_err())
                .take(K),
        );
        popular.add(hidden, &top);
    }
    if evaluated == 0 {
        return Err("no customer has two purchases: nothing to evaluate".into());
    }
    let n = evaluated as f64;
    let (setia_hit, popular_hit) = (setia.hits as f64 / n, popular.hits as f64 / n);
    let (setia_recall, popular_recall) = (setia.recall / n, popular.recall / n);
    let ratio = |a: f64, b: f64| if b > 0.0 { Some(round(a / b, 3)) } else { None };
    Ok(json!({
        "customers": customer_count,
        "purchases": lines.purchases,
        "lines": lines.customer.len(),
        "training_lines": train.customer.len(),
        "products": lines.products,
        "generate_seconds": round(drawn.generate_seconds, 2),
        "items_seconds": round(drawn.items_seconds, 2),
        "read_seconds": round(drawn.read_seconds, 2),
        "recommend_seconds": round(recommend_seconds, 3),
        "evaluated_customers": evaluated,
        "customers_without_recommendations": missing,
        "k": K,
        "setia": {
            "hit_rate": round(setia_hit, 4),
            "recall": round(setia_recall, 4),
            "mean_list_length": round(setia.listed as f64 / n, 2),
            "distinct_products_recommended": recommended_products.iter().filter(|s| **s).count(),
        },
        "popularity": {
            "hit_rate": round(popular_hit, 4),
            "recall": round(popular_recall, 4),
            "mean_list_length": round(popular.listed as f64 / n, 2),
        },
        "hit_rate_ratio": ratio(setia_hit, popular_hit),
        "recall_ratio": ratio(setia_recall, popular_recall),
        "hidden_products_bought_before": round(rebuy_products as f64 / hidden_products as f64, 4),
        "hidden_orders_only_rebuys": round(only_rebuys as f64 / n, 4),
    }))
}

fn speed(customers: u64, purchases: u64, seed: u64) -> Result<Value> {
    let drawn = draw(customers, purchases, seed)?;
    let Lines {
        customer,
        product,
        orders,
        products,
        purchases,
        ..
    } = drawn.lines;
    let basket = BasketColumns { customer, product };
    let catalogue = catalogue_columns(products);
    let config = RecommendConfig::default();

    let rss_before = proc_status_kib("VmRSS:");
    let reset = reset_peak();
    let started = Instant::now();
    let recommendations = recommend(&basket, &catalogue, &config)?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = proc_status_kib("VmHWM:");
    let recommended = recommendations.customers.len();
    drop(recommendations);
    Ok(json!({
        "customers": orders.len(),
        "purchases": purchases,
        "lines": basket.customer.len(),
        "products": products,
        "generate_seconds": round(drawn.generate_seconds, 2),
        "items_seconds": round(drawn.items_seconds, 2),
        "read_seconds": round(drawn.read_seconds, 2),
        "recommend_seconds": round(seconds, 3),
        "customers_recommended": recommended,
        "rss_before_mib": mib(rss_before),
        "peak_rss_mib": mib(peak),
        "peak_is_of_the_call": reset,
    }))
}

fn report_quality(q: &Value) {
    println!(
        "quality, leave-last-order-out: {} customers, {} purchases, {} lines ({} evaluated customers)",
        q["customers"], q["purchases"], q["lines"], q["evaluated_customers"]
    );
    println!(
        "  drawn in {} s (history) + {} s (items), read in {} s; recommend took {} s",
        q["generate_seconds"], q["items_seconds"], q["read_seconds"], q["recommend_seconds"]
    );
    println!("  {:<12} {:>11} {:>10}", "", "hit rate@10", "recall@10");
    for who in ["setia", "popularity"] {
        println!(
            "  {:<12} {:>11} {:>10}",
            who,
            q[who]["hit_rate"].to_string(),
            q[who]["recall"].to_string()
        );
    }
    println!(
        "  setia / popularity: hit rate {}x, recall {}x (goal: hit rate >= 1.5x)",
        q["hit_rate_ratio"], q["recall_ratio"]
    );
    println!(
        "  hidden products bought before: {}; hidden orders of re-buys only: {}; customers without recommendations: {}",
        q["hidden_products_bought_before"], q["hidden_orders_only_rebuys"],
        q["customers_without_recommendations"]
    );
}

fn report_speed(s: &Value) {
    println!(
        "speed: {} customers, {} purchases, {} lines",
        s["customers"], s["purchases"], s["lines"]
    );
    println!(
        "  drawn in {} s (history) + {} s (items), read in {} s",
        s["generate_seconds"], s["items_seconds"], s["read_seconds"]
    );
    println!(
        "  recommend: {} s, peak RSS {} MiB (resident before the call {} MiB); goal < 30 s and < 2 GiB",
        s["recommend_seconds"], s["peak_rss_mib"], s["rss_before_mib"]
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut out = serde_json::Map::new();
    out.insert("seed".into(), json!(args.seed));
    out.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
    );
    type Part = fn(u64, u64, u64) -> Result<Value>;
    let parts: [(bool, &str, u64, u64, Part, fn(&Value)); 2] = [
        (
            matches!(args.mode, Mode::Quality | Mode::Both),
            "quality",
            100_000,
            1_000_000,
            quality,
            report_quality,
        ),
        (
            matches!(args.mode, Mode::Speed | Mode::Both),
            "speed",
            1_000_000,
            4_500_000,
            speed,
            report_speed,
        ),
    ];
    for (wanted, name, default_customers, default_purchases, run, report) in parts {
        if !wanted {
            continue;
        }
        let customers = args.customers.unwrap_or(default_customers);
        let purchases = args.purchases.unwrap_or(default_purchases);
        eprintln!(
            "{name}: {customers} customers, {purchases} purchases, seed {}…",
            args.seed
        );
        let figures = run(customers, purchases, args.seed)?;
        if !args.json {
            report(&figures);
        }
        out.insert(name.into(), figures);
    }
    if args.json {
        println!("{}", Value::Object(out));
    }
    Ok(())
}
