//! `--format table`: the report as aligned text tables.

use comfy_table::presets::ASCII_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::report::{MetricsReport, MinorAmount};
use crate::rfm::Segment;

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(ASCII_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

fn align_right_from(table: &mut Table, first_column: usize) {
    for column in table.column_iter_mut().skip(first_column) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(value) => format!("{value:.decimals$}"),
        None => "-".to_owned(),
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

impl MetricsReport {
    /// A human-readable rendering of the whole report.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Metrics for {} as of {} ({}, cohorts by {})\n\n",
            self.merchant_id, self.as_of, self.timezone, self.period
        );

        let totals = &self.totals;
        let mut table = new_table(&["Totals", ""]);
        table.add_row(vec!["customers".to_owned(), totals.customers.to_string()]);
        table.add_row(vec!["purchases".to_owned(), totals.purchases.to_string()]);
        table.add_row(vec!["revenue".to_owned(), totals.revenue.to_string()]);
        table.add_row(vec![
            "repeat customers".to_owned(),
            totals.repeat_customers.to_string(),
        ]);
        table.add_row(vec![
            "repeat purchase rate".to_owned(),
            percent(totals.repeat_purchase_rate),
        ]);
        table.add_row(vec![
            "median days between purchases".to_owned(),
            optional(totals.median_days_between_purchases, 1),
        ]);
        align_right_from(&mut table, 1);
        out.push_str(&format!("{table}\n\n"));

        let longest = self
            .cohorts
            .iter()
            .map(|c| c.retention.len())
            .max()
            .unwrap_or(0);
        let mut header = vec!["cohort".to_owned(), "size".to_owned()];
        header.extend((0..longest).map(|k| format!("+{k}")));
        let mut table = Table::new();
        table.load_preset(ASCII_FULL_CONDENSED).set_header(header);
        for cohort in &self.cohorts {
            let mut row = vec![cohort.cohort.clone(), cohort.size.to_string()];
            row.extend(cohort.retention.iter().map(|share| percent(*share)));
            table.add_row(row);
        }
        align_right_from(&mut table, 1);
        out.push_str(&format!(
            "Retention: share of each cohort buying in period +k\n{table}\n\n"
        ));

        let mut table = new_table(&["RFM segment", "customers"]);
        for segment in Segment::ALL {
            table.add_row(vec![
                segment.as_str().to_owned(),
                self.rfm.segments.get(segment).to_string(),
            ]);
        }
        align_right_from(&mut table, 1);
        out.push_str(&format!("{table}\n\n"));

        let churn = &self.churn;
        let mut table = new_table(&["Churn (BG/NBD)", ""]);
        table.add_row(vec!["r".to_owned(), optional(churn.params.r, 4)]);
        table.add_row(vec!["alpha".to_owned(), optional(churn.params.alpha, 4)]);
        table.add_row(vec!["a".to_owned(), optional(churn.params.a, 4)]);
        table.add_row(vec!["b".to_owned(), optional(churn.params.b, 4)]);
        table.add_row(vec![
            "log-likelihood".to_owned(),
            optional(churn.log_likelihood, 2),
        ]);
        table.add_row(vec!["converged".to_owned(), churn.converged.to_string()]);
        table.add_row(vec![
            format!("customers at risk (P(alive) < {})", churn.p_alive_threshold),
            churn.customers_at_risk.to_string(),
        ]);
        table.add_row(vec![
            "expected purchases, next 90 days".to_owned(),
            format!("{:.1}", churn.expected_purchases_next_90d),
        ]);
        if let Some(reason) = &churn.reason {
            table.add_row(vec!["reason".to_owned(), reason.clone()]);
        }
        align_right_from(&mut table, 1);
        out.push_str(&format!("{table}\n\n"));

        let clv = &self.clv;
        let mut table = new_table(&["CLV (Gamma-Gamma)", ""]);
        table.add_row(vec!["p".to_owned(), optional(clv.params.p, 4)]);
        table.add_row(vec!["q".to_owned(), optional(clv.params.q, 4)]);
        table.add_row(vec!["v".to_owned(), optional(clv.params.v, 4)]);
        table.add_row(vec![
            "expected 12-month total".to_owned(),
            clv.expected_12m_total
                .map(|total: MinorAmount| total.to_string())
                .unwrap_or_else(|| "-".to_owned()),
        ]);
        if let Some(reason) = &clv.reason {
            table.add_row(vec!["reason".to_owned(), reason.clone()]);
        }
        align_right_from(&mut table, 1);
        out.push_str(&format!("{table}\n\n"));

        let loyalty = &self.loyalty;
        let mut table = new_table(&["Loyalty", ""]);
        table.add_row(vec![
            "points issued".to_owned(),
            loyalty.points_issued.to_string(),
        ]);
        table.add_row(vec![
            "points redeemed".to_owned(),
            loyalty.points_redeemed.to_string(),
        ]);
        table.add_row(vec![
            "points expired".to_owned(),
            loyalty.points_expired.to_string(),
        ]);
        table.add_row(vec![
            "points outstanding".to_owned(),
            loyalty.points_outstanding.to_string(),
        ]);
        table.add_row(vec![
            "bronze members".to_owned(),
            loyalty.members_by_tier.bronze.to_string(),
        ]);
        table.add_row(vec![
            "silver members".to_owned(),
            loyalty.members_by_tier.silver.to_string(),
        ]);
        table.add_row(vec![
            "gold members".to_owned(),
            loyalty.members_by_tier.gold.to_string(),
        ]);
        align_right_from(&mut table, 1);
        out.push_str(&format!("{table}\n"));
        out
    }
}
