//! Small histories whose every number was worked out by hand (see the comments).

use setia_analytics::{
    compute_metrics, AnalyticsError, MetricsRequest, MinorAmount, Period, PointsEntry, PointsKind,
    PurchaseColumns, Segment, Tier, TierThresholds,
};

use crate::support::{clean_json, date, jakarta, local_micros};

/// Jakarta (UTC+7) purchases, as_of 2024-04-30:
/// - customer 1: Jan 5 100.00, Jan 20 50.00, Mar 2 25.50
/// - customer 2: Jan 31 23:59 10.00 and Feb 1 00:01 20.00 local time, which are both
///   Jan 31 in UTC: two local days, two months
/// - customer 3: Feb 10 30.00 and 40.00 (one day), Apr 15 60.00
/// - customer 4: Feb 29 5.00, and May 1 00:30 999.00 (local May: after as_of, ignored)
fn four_customers() -> PurchaseColumns {
    let zone = jakarta();
    let mut columns = PurchaseColumns::default();
    for (customer, at, amount) in [
        (1, "2024-01-05 10:00", 10_000),
        (1, "2024-01-20 12:00", 5_000),
        (1, "2024-03-02 08:00", 2_550),
        (2, "2024-01-31 23:59", 1_000),
        (2, "2024-02-01 00:01", 2_000),
        (3, "2024-02-10 09:00", 3_000),
        (3, "2024-02-10 18:00", 4_000),
        (3, "2024-04-15 11:00", 6_000),
        (4, "2024-02-29 15:00", 500),
        (4, "2024-05-01 00:30", 99_900),
    ] {
        columns.push(customer, local_micros(zone, at), amount);
    }
    columns
}

fn money(values: &[i64]) -> Vec<MinorAmount> {
    values.iter().copied().map(MinorAmount).collect()
}

fn request(period: Period, as_of: &str) -> MetricsRequest {
    MetricsRequest::new("mer_hand", date(as_of), jakarta(), period)
}

#[test]
fn totals_cohorts_and_local_days() {
    let output =
        compute_metrics(&request(Period::Month, "2024-04-30"), four_customers(), &[]).unwrap();
    let json = clean_json(&output);
    let report = &output.report;

    // 9 purchases on or before as_of; revenue 175.50 + 30 + 130 + 5.
    assert_eq!(report.totals.customers, 4);
    assert_eq!(report.totals.purchases, 9);
    assert_eq!(json["totals"]["revenue"], "340.50");
    // Customers 1 (3 days), 2 (Jan 31 and Feb 1 local) and 3 (2 days) bought twice.
    assert_eq!(report.totals.repeat_customers, 3);
    assert_eq!(report.totals.repeat_purchase_rate, 0.75);
    // Gaps: 1 → 15 and 42 (Jan 20 → Mar 2 in a leap year); 2 → 1; 3 → 65. Median of
    // [1, 15, 42, 65] = 28.5.
    assert_eq!(report.totals.median_days_between_purchases, Some(28.5));
    // Each customer's own median gap: 1 → (15 + 42) / 2, 2 → 1, 3 → 65, 4 → one day only.
    let own: Vec<Option<f64>> = output
        .customer_scores
        .iter()
        .map(|s| s.median_gap_days)
        .collect();
    assert_eq!(own, vec![Some(28.5), Some(1.0), Some(65.0), None]);

    // January cohort {1, 2}, months Jan..Apr: 1 buys Jan and Mar, 2 buys Jan and Feb.
    let january = &report.cohorts[0];
    assert_eq!(january.cohort, "2024-01");
    assert_eq!(january.size, 2);
    assert_eq!(january.retention, vec![1.0, 0.5, 0.5, 0.0]);
    assert_eq!(january.retention_unbounded, vec![1.0, 1.0, 0.5, 0.0]);
    assert_eq!(january.revenue, money(&[16_000, 2_000, 2_550, 0]));
    // February cohort {3, 4}, months Feb..Apr: 3 buys Feb and Apr, 4 buys Feb.
    let february = &report.cohorts[1];
    assert_eq!(february.cohort, "2024-02");
    assert_eq!(february.size, 2);
    assert_eq!(february.retention, vec![1.0, 0.0, 0.5]);
    assert_eq!(february.retention_unbounded, vec![1.0, 0.5, 0.5]);
    assert_eq!(february.revenue, money(&[7_500, 0, 6_000]));
    assert_eq!(report.cohorts.len(), 2);
    assert_eq!(
        json["cohorts"][1]["revenue"],
        serde_json::json!(["75.00", "0.00", "60.00"])
    );
}

#[test]
fn rfm_scores_and_segments() {
    let output =
        compute_metrics(&request(Period::Month, "2024-04-30"), four_customers(), &[]).unwrap();
    // Recency (days to Apr 30): 1 → 59, 2 → 89, 3 → 15, 4 → 61. Ranked ascending
    // 3, 1, 4, 2 at ranks 0..3 of n = 4: quintile bins 0, 1, 3, 4 → R = 5, 4, 2, 1.
    // Frequency (days): 1 → 3, 2 → 2, 3 → 2, 4 → 1. Ranked 4, 2, 3, 1 (tie 2/3 by id):
    // bins 0, 1, 3, 4 → F = 1, 2, 4, 5 respectively.
    // Mean amount: 1 → 58.50, 2 → 15.00, 3 → 43.33, 4 → 5.00 → M = 5, 2, 4, 1.
    let expected = [
        (1, 59, 3, 5_850, 4, 5, 5, Segment::Loyal),
        (2, 89, 2, 1_500, 1, 2, 2, Segment::Hibernating),
        (3, 15, 2, 4_333, 5, 4, 4, Segment::Champions),
        (4, 61, 1, 500, 2, 1, 1, Segment::Hibernating),
    ];
    assert_eq!(output.customer_scores.len(), 4);
    for (score, (customer, recency, frequency, monetary, r, f, m, segment)) in
        output.customer_scores.iter().zip(expected)
    {
        assert_eq!(score.customer, customer);
        assert_eq!(score.recency_days, recency, "customer {customer}");
        assert_eq!(score.frequency_days, frequency, "customer {customer}");
        assert_eq!(score.monetary_minor, monetary, "customer {customer}");
        assert_eq!(
            (score.r_score, score.f_score, score.m_score),
            (r, f, m),
            "customer {customer}"
        );
        assert_eq!(score.segment, segment, "customer {customer}");
        // Four customers are too few for BG/NBD: no forecasts.
        assert_eq!(score.p_alive, None);
    }
    assert_eq!(
        output.customer_scores[1].first_purchase_day,
        date("2024-01-31")
    );
    assert_eq!(
        output.customer_scores[1].last_purchase_day,
        date("2024-02-01")
    );
    let segments = &output.report.rfm.segments;
    assert_eq!(
        (segments.champions, segments.loyal, segments.hibernating),
        (1, 1, 2)
    );
    let json = clean_json(&output);
    let keys: Vec<&String> = json["rfm"]["segments"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
    assert_eq!(json["rfm"]["segments"]["cant_lose"], 0);
    assert_eq!(json["rfm"]["segments"]["new_customers"], 0);
}

#[test]
fn purchases_at_local_midnight_edges_land_on_their_local_day() {
    // 23:59 and 00:01 Jakarta time are 16:59 and 17:01 UTC of the same UTC day.
    let zone = jakarta();
    let mut columns = PurchaseColumns::default();
    columns.push(7, local_micros(zone, "2024-06-30 23:59"), 100);
    columns.push(7, local_micros(zone, "2024-07-01 00:01"), 100);
    // as_of 2024-06-30: the 00:01 purchase is on July 1 local, after as_of.
    let output =
        compute_metrics(&request(Period::Month, "2024-06-30"), columns.clone(), &[]).unwrap();
    assert_eq!(output.report.totals.purchases, 1);
    assert_eq!(
        output.customer_scores[0].last_purchase_day,
        date("2024-06-30")
    );
    // as_of 2024-07-01: two local days, June and July cohorts cells.
    let output = compute_metrics(&request(Period::Month, "2024-07-01"), columns, &[]).unwrap();
    assert_eq!(output.report.totals.purchases, 2);
    assert_eq!(output.report.totals.repeat_customers, 1);
    assert_eq!(
        output.report.totals.median_days_between_purchases,
        Some(1.0)
    );
    assert_eq!(output.report.cohorts[0].retention, vec![1.0, 1.0]);
    assert_eq!(output.customer_scores[0].recency_days, 0);
}

#[test]
fn weekly_cohorts_use_iso_weeks_across_the_year_boundary() {
    // 2024-12-30 (Mon) .. 2025-01-05 (Sun) is ISO week 2025-W01; as_of 2025-01-12 is in W02.
    // Customer 10: Dec 30 and Jan 5 (both W01). Customer 11: Dec 29 (W52) and Jan 6 (W02).
    // Customer 12: Dec 23 and Dec 28 (both 2024-W52).
    let zone = jakarta();
    let mut columns = PurchaseColumns::default();
    for (customer, at) in [
        (10, "2024-12-30 09:00"),
        (10, "2025-01-05 21:00"),
        (11, "2024-12-29 09:00"),
        (11, "2025-01-06 00:05"),
        (12, "2024-12-23 09:00"),
        (12, "2024-12-28 09:00"),
    ] {
        columns.push(customer, local_micros(zone, at), 1_000);
    }
    let output = compute_metrics(&request(Period::Week, "2025-01-12"), columns, &[]).unwrap();
    let json = clean_json(&output);
    assert_eq!(json["period"], "week");
    let cohorts = &output.report.cohorts;
    assert_eq!(cohorts.len(), 2);
    // 2024-W52 = {11, 12}, weeks W52, W01, W02: 11 returns in W02 only.
    assert_eq!(cohorts[0].cohort, "2024-W52");
    assert_eq!(cohorts[0].size, 2);
    assert_eq!(cohorts[0].retention, vec![1.0, 0.0, 0.5]);
    assert_eq!(cohorts[0].retention_unbounded, vec![1.0, 0.5, 0.5]);
    assert_eq!(cohorts[0].revenue, money(&[3_000, 0, 1_000]));
    // 2025-W01 = {10}: both purchases in W01 (Dec 30 belongs to 2025's first ISO week).
    assert_eq!(cohorts[1].cohort, "2025-W01");
    assert_eq!(cohorts[1].size, 1);
    assert_eq!(cohorts[1].retention, vec![1.0, 0.0]);
    assert_eq!(cohorts[1].retention_unbounded, vec![1.0, 0.0]);
    assert_eq!(cohorts[1].revenue, money(&[2_000, 0]));
    // Gaps 6 (10), 8 (11), 5 (12): median 6.
    assert_eq!(
        output.report.totals.median_days_between_purchases,
        Some(6.0)
    );
}

/// A purchase dated before 1970 (stored before every source refused such dates) is left
/// out and counted: weekly cohorts from year 1 would hold a hundred thousand empty weeks.
#[test]
fn purchases_before_1970_are_left_out_and_counted() {
    let zone = jakarta();
    let mut columns = PurchaseColumns::default();
    for (customer, at) in [
        (20, "0001-01-01 09:00"),
        (20, "2025-01-06 09:00"),
        (21, "1969-12-31 23:59"),
        (22, "1970-01-01 00:00"),
    ] {
        columns.push(customer, local_micros(zone, at), 1_000);
    }
    let output = compute_metrics(&request(Period::Week, "2025-01-12"), columns, &[]).unwrap();
    assert_eq!(output.ignored_before_first_year, 2);
    assert_eq!(output.report.totals.purchases, 2);
    let cohorts: Vec<(&str, usize)> = output
        .report
        .cohorts
        .iter()
        .map(|c| (c.cohort.as_str(), c.retention.len()))
        .collect();
    assert_eq!(cohorts, [("1970-W01", 2872), ("2025-W02", 1)]);
    let scored: Vec<i64> = output.customer_scores.iter().map(|s| s.customer).collect();
    assert_eq!(scored, [20, 22]);
}

#[test]
fn loyalty_totals_and_tiers() {
    let zone = jakarta();
    let entry = |customer, at: &str, points, kind| PointsEntry {
        customer,
        at_micros: local_micros(zone, at),
        points,
        kind,
    };
    let ledger = [
        entry(1, "2024-01-05 10:00", 10, PointsKind::Earn),
        entry(1, "2024-03-02 08:00", 50, PointsKind::Bonus),
        entry(1, "2024-04-01 12:00", -20, PointsKind::Redeem),
        entry(3, "2024-02-10 09:00", 5, PointsKind::Earn),
        entry(3, "2024-04-20 00:00", -5, PointsKind::Expire),
        entry(3, "2024-04-30 23:59", -3, PointsKind::Reverse),
        // After as_of in Jakarta (17:30 UTC on Apr 30): ignored.
        entry(2, "2024-05-01 00:30", 7, PointsKind::Earn),
    ];
    let mut request = request(Period::Month, "2024-04-30");
    // Spend over the 365 days to as_of: 1 → 175.50 (gold), 3 → 130.00 (silver), 2 → 30.00
    // and 4 → 5.00 (bronze).
    request.tiers = TierThresholds {
        silver_minor: 10_000,
        gold_minor: 15_000,
    };
    let output = compute_metrics(&request, four_customers(), &ledger).unwrap();
    let json = clean_json(&output);
    // Issued 10 + 50 + 5; redeemed 20; expired 5; outstanding 65 − 20 − 5 − 3 = 37.
    assert_eq!(
        json["loyalty"],
        serde_json::json!({
            "points_issued": 65, "points_redeemed": 20, "points_expired": 5,
            "points_outstanding": 37,
            "members_by_tier": {"bronze": 2, "silver": 1, "gold": 1}
        })
    );
    let tiers: Vec<Tier> = output.customer_scores.iter().map(|s| s.tier).collect();
    assert_eq!(
        tiers,
        [Tier::Gold, Tier::Bronze, Tier::Silver, Tier::Bronze]
    );

    // A tier window of 365 days: a purchase 365 days before as_of no longer counts.
    let mut columns = PurchaseColumns::default();
    columns.push(1, local_micros(zone, "2023-05-01 10:00"), 20_000); // day as_of − 365
    columns.push(2, local_micros(zone, "2023-05-02 10:00"), 20_000); // day as_of − 364
    let output = compute_metrics(&request, columns, &[]).unwrap();
    let tiers: Vec<Tier> = output.customer_scores.iter().map(|s| s.tier).collect();
    assert_eq!(tiers, [Tier::Bronze, Tier::Gold]);

    // A redemption recorded with positive points is a caller bug, reported as such.
    let wrong = [entry(1, "2024-04-01 12:00", 20, PointsKind::Redeem)];
    let error = compute_metrics(&request, four_customers(), &wrong).unwrap_err();
    assert!(
        matches!(error, AnalyticsError::PointsSign { index: 0, .. }),
        "{error}"
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let request = request(Period::Month, "2024-04-30");
    let mut columns = four_customers();
    columns.amount_minor[2] = -1;
    assert!(matches!(
        compute_metrics(&request, columns, &[]),
        Err(AnalyticsError::NegativeAmount {
            row: 2,
            amount_minor: -1
        })
    ));
    let mut columns = four_customers();
    columns.occurred_at_micros.pop();
    assert!(matches!(
        compute_metrics(&request, columns, &[]),
        Err(AnalyticsError::ColumnLengthMismatch { .. })
    ));
    let mut columns = four_customers();
    columns.occurred_at_micros[0] = i64::MAX;
    assert!(matches!(
        compute_metrics(&request, columns, &[]),
        Err(AnalyticsError::PurchaseTimeOutOfRange { row: 0, .. })
    ));
}
