//! `bgnbd-fit`: the BG/NBD half of the metrics benchmark (bench/metrics/run.sh): the summary
//! setia fits, exported for the lifetimes peer, and the fit timed on it.
//!
//! ```text
//! cargo build --release -p setia -p setia-bench-metrics
//! bgnbd-fit HISTORY.csv AS_OF SUMMARY_OUT.csv [RUNS] [TIMEZONE]
//! ```
//!
//! 1. Reads an import CSV as `setia sandbox generate` writes it
//!    (`customer_external_id,occurred_at,amount[,reference]`, no quoted fields, local times
//!    in TIMEZONE, default Asia/Jakarta) into purchase columns, numbering customers in the
//!    order they first appear (as `setia transactions import` creates them).
//! 2. Runs `compute_metrics` on them as of AS_OF, in memory: the whole batch from columns,
//!    with no database (timed and reported as such).
//! 3. Derives every customer's (x, t_x, T) from the batch's own per-customer output, groups
//!    identical histories, and writes them to SUMMARY_OUT.csv:
//!    `frequency,recency_days,age_days,customers`.
//! 4. Fits BG/NBD on that summary RUNS times (default 5) and reports the fastest and the
//!    median fit, with the parameters.
//!
//! Prints one JSON object on stdout.

use std::collections::HashMap;
use std::error::Error;
use std::io::{BufRead, Write};
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use setia_analytics::{
    compute_metrics, fit_bg_nbd, BgNbdHistory, BgNbdSummary, MetricsRequest, Period,
    PurchaseColumns,
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn usage() -> Box<dyn Error> {
    "usage: bgnbd-fit HISTORY.csv AS_OF SUMMARY_OUT.csv [RUNS] [TIMEZONE]".into()
}

/// Amount text ("12345", "12345.6", "12345.67") in minor units.
fn parse_amount(text: &[u8], line: u64) -> Result<i64> {
    let bad = || {
        format!(
            "line {line}: amount {:?} is not a decimal with at most 2 decimals",
            String::from_utf8_lossy(text)
        )
    };
    let (whole, fraction) = match text.iter().position(|b| *b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if whole.is_empty() || fraction.len() > 2 {
        return Err(bad().into());
    }
    let mut value: i64 = 0;
    for &digit in whole.iter().chain(fraction) {
        if !digit.is_ascii_digit() {
            return Err(bad().into());
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(digit - b'0')))
            .ok_or_else(bad)?;
    }
    for _ in fraction.len()..2 {
        value = value.checked_mul(10).ok_or_else(bad)?;
    }
    Ok(value)
}

/// Local wall time ("YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS") or RFC 3339, as UTC microseconds.
struct Times {
    zone: Tz,
    /// Offset (seconds east of UTC) per local date when it is the same all day.
    offsets: HashMap<NaiveDate, Option<i32>>,
}

impl Times {
    fn utc_micros(&mut self, text: &str, line: u64) -> Result<i64> {
        let bad = || format!("line {line}: occurred_at {text:?} is not a date or time");
        if text.len() > 19 {
            let instant = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| bad())?;
            return Ok(instant.timestamp_micros());
        }
        let local: NaiveDateTime = if text.len() == 10 {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| bad())?
                .and_hms_opt(0, 0, 0)
                .ok_or_else(bad)?
        } else {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").map_err(|_| bad())?
        };
        let zone = self.zone;
        let offset = *self.offsets.entry(local.date()).or_insert_with(|| {
            let at = |time: NaiveDateTime| {
                zone.from_local_datetime(&time)
                    .single()
                    .map(|t| t.offset().fix().local_minus_utc())
            };
            let morning = at(local.date().and_hms_opt(0, 0, 0)?)?;
            let evening = at(local.date().and_hms_opt(23, 59, 59)?)?;
            (morning == evening).then_some(morning)
        });
        let offset = match offset {
            Some(offset) => offset,
            None => zone
                .from_local_datetime(&local)
                .earliest()
                .ok_or_else(bad)?
                .offset()
                .fix()
                .local_minus_utc(),
        };
        Ok((local.and_utc().timestamp() - i64::from(offset)) * 1_000_000)
    }
}

fn read_history(path: &str, zone: Tz) -> Result<(PurchaseColumns, u64)> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line_text = Vec::new();
    reader.read_until(b'\n', &mut line_text)?;
    let header: Vec<&[u8]> = trim_line(&line_text).split(|b| *b == b',').collect();
    let column = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|h| *h == name.as_bytes())
            .ok_or_else(|| format!("{path}: no {name} column in the header").into())
    };
    let (customer_at, time_at, amount_at) = (
        column("customer_external_id")?,
        column("occurred_at")?,
        column("amount")?,
    );
    let width = header.len();
    let mut keys: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut times = Times {
        zone,
        offsets: HashMap::new(),
    };
    let mut columns = PurchaseColumns::default();
    let mut line: u64 = 1;
    loop {
        line_text.clear();
        if reader.read_until(b'\n', &mut line_text)? == 0 {
            break;
        }
        line += 1;
        let text = trim_line(&line_text);
        if text.is_empty() {
            continue;
        }
        if text.contains(&b'"') {
            return Err(format!("{path} line {line}: quoted fields are not supported here").into());
        }
        let (mut customer_field, mut time_field, mut amount_field) = (&b""[..], &b""[..], &b""[..]);
        let mut count = 0;
        for (i, field) in text.split(|b| *b == b',').enumerate() {
            if i == customer_at {
                customer_field = field;
            } else if i == time_at {
                time_field = field;
            } else if i == amount_at {
                amount_field = field;
            }
            count += 1;
        }
        if count != width {
            return Err(
                format!("{path} line {line}: {count} fields, the header has {width}").into(),
            );
        }
        let external = customer_field;
        let customer = match keys.get(external) {
            Some(key) => *key,
            None => {
                let key = keys.len() as i64 + 1;
                keys.insert(external.to_vec(), key);
                key
            }
        };
        let time = std::str::from_utf8(time_field)
            .map_err(|_| format!("{path} line {line}: occurred_at is not UTF-8"))?;
        columns.push(
            customer,
            times.utc_micros(time, line)?,
            parse_amount(amount_field, line)?,
        );
    }
    let rows = columns.len() as u64;
    Ok((columns, rows))
}

fn trim_line(text: &[u8]) -> &[u8] {
    let mut end = text.len();
    while end > 0 && matches!(text[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &text[..end]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 || args.len() > 5 {
        return Err(usage());
    }
    let (history, as_of, summary_out) = (&args[0], &args[1], &args[2]);
    let as_of = NaiveDate::parse_from_str(as_of, "%Y-%m-%d")
        .map_err(|_| format!("AS_OF {as_of:?} is not a date (YYYY-MM-DD)"))?;
    let runs: usize = match args.get(3) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("RUNS {text:?} is not a count"))?,
        None => 5,
    };
    if runs == 0 {
        return Err("RUNS must be at least 1".into());
    }
    let zone: Tz = match args.get(4) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("{text:?} is not a time zone"))?,
        None => chrono_tz::Asia::Jakarta,
    };

    let started = Instant::now();
    let (columns, rows) = read_history(history, zone)?;
    let parse_seconds = started.elapsed().as_secs_f64();

    let request = MetricsRequest::new("mer_bench", as_of, zone, Period::Month);
    let started = Instant::now();
    let output = compute_metrics(&request, columns, &[])?;
    let compute_seconds = started.elapsed().as_secs_f64();

    // The batch's own per-customer figures give each customer's (x, t_x, T) in days.
    let mut counts: HashMap<(u32, i32, i32), u64> = HashMap::new();
    for score in &output.customer_scores {
        let first = score.first_purchase_day;
        let history = (
            score.frequency_days - 1,
            (score.last_purchase_day - first).num_days() as i32,
            (as_of - first).num_days() as i32,
        );
        *counts.entry(history).or_default() += 1;
    }
    let mut grouped: Vec<((u32, i32, i32), u64)> = counts.into_iter().collect();
    grouped.sort_unstable();
    let mut out = std::io::BufWriter::new(std::fs::File::create(summary_out)?);
    writeln!(out, "frequency,recency_days,age_days,customers")?;
    for ((x, recency, age), customers) in &grouped {
        writeln!(out, "{x},{recency},{age},{customers}")?;
    }
    out.flush()?;

    // What the batch fits: the same weighted summary, built as the batch builds it.
    let build = || {
        BgNbdSummary::from_weighted(grouped.iter().map(|((x, recency, age), customers)| {
            (BgNbdHistory::from_days(*x, *recency, *age), *customers)
        }))
    };
    let summary = build();
    let mut seconds = Vec::with_capacity(runs);
    let mut fit = None;
    for _ in 0..runs {
        let started = Instant::now();
        let result = fit_bg_nbd(&summary)?;
        seconds.push(started.elapsed().as_secs_f64());
        fit = Some(result);
    }
    let fit = fit.ok_or("no fit ran")?;
    seconds.sort_by(f64::total_cmp);
    // One pass of the likelihood over the summary, to say how many passes a fit costs.
    let mut passes = Vec::with_capacity(5);
    for _ in 0..5 {
        let started = Instant::now();
        let value = summary.log_likelihood(&fit.params);
        passes.push(started.elapsed().as_secs_f64());
        if !value.is_finite() {
            return Err("the log-likelihood at the fitted parameters is not finite".into());
        }
    }
    passes.sort_by(f64::total_cmp);

    let json = serde_json::json!({
        "rows": rows,
        "parse_seconds": parse_seconds,
        "compute_seconds": compute_seconds,
        "customers": summary.customers(),
        "distinct_histories": summary.distinct_histories(),
        "fit": {
            "runs": runs,
            "seconds_min": seconds[0],
            "seconds_median": seconds[seconds.len() / 2],
            "params": {
                "r": fit.params.r,
                "alpha": fit.params.alpha,
                "a": fit.params.a,
                "b": fit.params.b,
            },
            "log_likelihood": fit.log_likelihood,
            "converged": fit.converged,
            "iterations": fit.iterations,
            "likelihood_pass_seconds": passes[passes.len() / 2],
        },
        "report": output.report,
    });
    println!("{json}");
    Ok(())
}
