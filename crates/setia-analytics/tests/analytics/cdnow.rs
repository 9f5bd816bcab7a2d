//! The CDNOW sample (Fader & Hardie) against the published BG/NBD and Gamma-Gamma fits.

use setia_analytics::{compute_metrics, BgNbdHistory, MetricsRequest, Period, PurchaseColumns};

use crate::support::{assert_close, clean_json, date, jakarta, local_micros};

const TRANSACTIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/cdnow/cdnow_sample_transactions.csv"
);

/// customer_external_id "S<n>" → n; occurred_at YYYY-MM-DD → Jakarta midnight; amount in
/// dollars with two decimals → cents.
fn read_cdnow() -> PurchaseColumns {
    let mut reader = csv::Reader::from_path(TRANSACTIONS).expect("CDNOW fixture");
    let mut columns = PurchaseColumns::default();
    for record in reader.records() {
        let record = record.expect("CSV record");
        let customer: i64 = record[0]
            .trim_start_matches('S')
            .parse()
            .expect("customer id");
        let at = local_micros(jakarta(), &format!("{} 00:00", &record[1]));
        let (dollars, cents) = record[2].split_once('.').expect("two decimals");
        assert_eq!(cents.len(), 2, "amount {}", &record[2]);
        let amount =
            dollars.parse::<i64>().expect("dollars") * 100 + cents.parse::<i64>().expect("cents");
        columns.push(customer, at, amount);
    }
    columns
}

#[test]
fn cdnow_calibration_period_reproduces_the_published_fits() {
    let purchases = read_cdnow();
    assert_eq!(purchases.len(), 6_919);
    let request = MetricsRequest::new("cdnow", date("1997-09-30"), jakarta(), Period::Month);
    let output = compute_metrics(&request, purchases, &[]).expect("metrics");
    let json = clean_json(&output);
    let report = &output.report;

    // Every CDNOW customer made a first purchase in Q1 1997, before as_of.
    assert_eq!(report.totals.customers, 2_357);
    let repeat_days: u64 = output
        .customer_scores
        .iter()
        .map(|score| u64::from(score.frequency_days - 1))
        .sum();
    assert_eq!(
        repeat_days, 2_457,
        "repeat purchase days in the calibration period"
    );
    assert!(output
        .customer_scores
        .iter()
        .any(|s| s.first_purchase_day == date("1997-01-01")));

    // BG/NBD (FHL 2005): r 0.2426, α 4.4135, a 0.7929, b 2.4258, LL −9582.43.
    let churn = &report.churn;
    assert!(churn.converged, "{churn:?}");
    assert!(churn.reason.is_none());
    let params = churn.params.params().expect("fitted parameters");
    assert_close(params.r, 0.2426, 0.001, "r");
    assert_close(params.alpha, 4.4135, 0.001, "alpha");
    assert_close(params.a, 0.7929, 0.001, "a");
    assert_close(params.b, 2.4258, 0.001, "b");
    assert_close(
        churn.log_likelihood.expect("LL"),
        -9582.43,
        0.05,
        "log-likelihood",
    );
    assert_eq!(json["churn"]["model"], "bg_nbd");
    assert_eq!(json["churn"]["p_alive_threshold"], 0.5);

    // Hardie's spreadsheet check: x = 2, t_x = 30.43, T = 38.86.
    let check = BgNbdHistory {
        frequency: 2,
        recency_weeks: 30.43,
        age_weeks: 38.86,
    };
    assert_close(params.p_alive(&check), 0.7266, 0.001, "P(alive)");
    assert_close(
        params.expected_purchases(&check, 39.0).expect("2F1"),
        1.226,
        0.001,
        "E[purchases in 39 weeks]",
    );

    // Gamma-Gamma on the 946 repeat customers' mean repeat-day value.
    let spend = report.clv.params.params().expect("Gamma-Gamma parameters");
    assert_close(spend.p, 6.2496, 0.01, "p");
    assert_close(spend.q, 3.7442, 0.01, "q");
    assert_close(spend.v, 15.4435, 0.01, "v");
    let repeat_customers = output
        .customer_scores
        .iter()
        .filter(|s| s.frequency_days > 1)
        .count();
    assert_eq!(repeat_customers, 946);
    assert_eq!(report.totals.repeat_customers, 946);
    assert!(report.clv.expected_12m_total.is_some(), "{:?}", report.clv);
    assert!(json["clv"].get("reason").is_none());

    // Cross-checked with the lifetimes package 0.11.3 on the same daily summary (t_x and T
    // divided by 7): BetaGeoFitter + GammaGammaFitter.customer_lifetime_value(bgf, ...,
    // time=12, discount_rate=0.01, freq="W").sum() = 71507.9533;
    // conditional_expected_number_of_purchases_up_to_time(90/7, ...).sum() = 621.639427;
    // 393 repeat customers with conditional_probability_alive < 0.5.
    assert_eq!(json["clv"]["expected_12m_total"], "71507.95");
    assert_close(
        churn.expected_purchases_next_90d,
        621.639_427,
        1e-4,
        "90-day forecast",
    );
    assert_eq!(churn.customers_at_risk, 393);

    // Every customer is scored, forecasts are there, at-risk customers are repeat buyers.
    assert_eq!(output.customer_scores.len(), 2_357);
    let at_risk = output
        .customer_scores
        .iter()
        .filter(|s| s.frequency_days > 1 && s.p_alive.expect("p_alive") < 0.5)
        .count() as u64;
    assert_eq!(at_risk, churn.customers_at_risk);
    let expected_total: f64 = output
        .customer_scores
        .iter()
        .map(|s| s.expected_purchases_90d.expect("forecast"))
        .sum();
    assert_close(
        expected_total,
        churn.expected_purchases_next_90d,
        1e-6,
        "90-day total",
    );
    let clv_total: i64 = output
        .customer_scores
        .iter()
        .map(|s| s.clv_12m_minor.expect("clv"))
        .sum();
    let reported = report.clv.expected_12m_total.expect("total").0;
    assert!(
        (clv_total - reported).abs() <= 2_357,
        "{clv_total} vs {reported}"
    );

    let segments: u64 = setia_analytics::Segment::ALL
        .iter()
        .map(|segment| report.rfm.segments.get(*segment))
        .sum();
    assert_eq!(segments, 2_357);
    // Cohorts: Jan, Feb and Mar 1997, each observed to September (k = 0..=8 or fewer).
    let labels: Vec<&str> = report.cohorts.iter().map(|c| c.cohort.as_str()).collect();
    assert_eq!(labels, ["1997-01", "1997-02", "1997-03"]);
    assert_eq!(report.cohorts[0].retention.len(), 9);
    assert_eq!(report.cohorts[2].retention.len(), 7);
    assert_eq!(report.cohorts.iter().map(|c| c.size).sum::<u64>(), 2_357);
}
