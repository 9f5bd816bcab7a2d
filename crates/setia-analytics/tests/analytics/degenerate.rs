//! Merchants the models cannot be fitted on still get a complete, finite report.

use setia_analytics::{compute_metrics, MetricsOutput, MetricsRequest, Period, PurchaseColumns};

use crate::support::{clean_json, date, jakarta, local_micros};

fn run(columns: PurchaseColumns, as_of: &str) -> (MetricsOutput, serde_json::Value) {
    let request = MetricsRequest::new("mer_degenerate", date(as_of), jakarta(), Period::Month);
    let output = compute_metrics(&request, columns, &[]).expect("a report, not an error");
    let json = clean_json(&output);
    let table = output.report.to_table();
    assert!(table.contains("converged"), "{table}");
    (output, json)
}

/// The parts every degenerate report shares: unfitted models with reasons, no NaN.
fn assert_models_not_fitted(json: &serde_json::Value, reason_mentions: &str) {
    let churn = &json["churn"];
    assert_eq!(churn["model"], "bg_nbd");
    assert_eq!(churn["converged"], false);
    let reason = churn["reason"].as_str().expect("a reason");
    assert!(reason.contains(reason_mentions), "{reason}");
    assert_eq!(
        churn["params"],
        serde_json::json!({"r": null, "alpha": null, "a": null, "b": null})
    );
    assert_eq!(churn["log_likelihood"], serde_json::Value::Null);
    assert_eq!(churn["customers_at_risk"], 0);
    assert_eq!(churn["expected_purchases_next_90d"], 0.0);
    assert_eq!(churn["p_alive_threshold"], 0.5);
    let clv = &json["clv"];
    assert_eq!(clv["model"], "gamma_gamma");
    assert_eq!(clv["expected_12m_total"], serde_json::Value::Null);
    assert!(
        clv["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{clv}"
    );
    assert_eq!(
        json["rfm"]["segments"].as_object().map(|s| s.len()),
        Some(10)
    );
    for key in [
        "schema",
        "merchant_id",
        "as_of",
        "timezone",
        "period",
        "totals",
        "cohorts",
        "rfm",
        "churn",
        "clv",
        "loyalty",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["schema"], 1);
    assert_eq!(json["timezone"], "Asia/Jakarta");
}

#[test]
fn no_purchases() {
    let (output, json) = run(PurchaseColumns::default(), "2024-04-30");
    assert_models_not_fitted(&json, "no customer");
    assert_eq!(json["totals"]["customers"], 0);
    assert_eq!(json["totals"]["revenue"], "0.00");
    assert_eq!(json["totals"]["repeat_purchase_rate"], 0.0);
    assert_eq!(
        json["totals"]["median_days_between_purchases"],
        serde_json::Value::Null
    );
    assert_eq!(json["cohorts"], serde_json::json!([]));
    assert!(output.customer_scores.is_empty());
}

#[test]
fn as_of_before_the_first_purchase() {
    let mut columns = PurchaseColumns::default();
    columns.push(1, local_micros(jakarta(), "2024-05-01 00:00"), 1_000);
    columns.push(2, local_micros(jakarta(), "2024-06-01 09:00"), 1_000);
    let (output, json) = run(columns, "2024-04-30");
    assert_models_not_fitted(&json, "no customer");
    assert_eq!(json["totals"]["purchases"], 0);
    assert!(output.customer_scores.is_empty());
}

#[test]
fn one_customer() {
    let mut columns = PurchaseColumns::default();
    for at in ["2024-01-05 10:00", "2024-02-05 10:00", "2024-04-01 10:00"] {
        columns.push(42, local_micros(jakarta(), at), 12_345);
    }
    let (output, json) = run(columns, "2024-04-30");
    assert_models_not_fitted(&json, "1 customer");
    assert_eq!(json["totals"]["repeat_customers"], 1);
    // One customer is the most recent (R 5) and the least frequent (F 1): new.
    assert_eq!(json["rfm"]["segments"]["new_customers"], 1);
    assert_eq!(output.customer_scores[0].p_alive, None);
    assert_eq!(output.customer_scores[0].clv_12m_minor, None);
}

#[test]
fn nobody_bought_twice() {
    let mut columns = PurchaseColumns::default();
    for customer in 0..40 {
        let day = 1 + customer % 28;
        columns.push(
            customer,
            local_micros(jakarta(), &format!("2024-03-{day:02} 10:00")),
            5_000,
        );
        // A second purchase the same local day is still one purchase day.
        columns.push(
            customer,
            local_micros(jakarta(), &format!("2024-03-{day:02} 20:00")),
            5_000,
        );
    }
    let (output, json) = run(columns, "2024-04-30");
    assert_models_not_fitted(&json, "two different days");
    assert_eq!(json["totals"]["purchases"], 80);
    assert_eq!(json["totals"]["repeat_customers"], 0);
    assert_eq!(
        json["totals"]["median_days_between_purchases"],
        serde_json::Value::Null
    );
    assert!(output
        .customer_scores
        .iter()
        .all(|s| s.expected_purchases_90d.is_none()));
}

#[test]
fn identical_histories_never_produce_non_finite_numbers() {
    // Twenty customers with exactly the same two purchase days: the likelihood is flat in
    // some directions. Whatever the optimiser does, the report stays finite.
    let mut columns = PurchaseColumns::default();
    for customer in 0..20 {
        columns.push(
            customer,
            local_micros(jakarta(), "2024-01-10 10:00"),
            10_000,
        );
        columns.push(
            customer,
            local_micros(jakarta(), "2024-02-10 10:00"),
            10_000,
        );
    }
    let (output, json) = run(columns, "2024-04-30");
    if json["churn"]["converged"] == false {
        assert!(json["churn"]["reason"].as_str().is_some());
    }
    assert!(
        json["clv"]["reason"].as_str().is_some() || json["clv"]["expected_12m_total"].is_string()
    );
    for score in &output.customer_scores {
        for value in [score.p_alive, score.expected_purchases_90d]
            .into_iter()
            .flatten()
        {
            assert!(value.is_finite());
        }
    }
}
