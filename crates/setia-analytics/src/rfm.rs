//! RFM quintile scores and the R/F segment grid.

pub use setia_core::segment::Segment;

/// Quintile scores 1–5 of `values` (one per customer, customers in ascending id order).
///
/// Customers are ranked by value with ties broken by position, i.e. by customer id (the
/// pandas recipe `qcut(values.rank(method="first"), 5)`): rank i (0-based) of n falls in
/// bin j = #{k in 1..=4 : i > k(n−1)/5}. `higher_is_better = false` reverses the scores
/// (recency: the most recent customers score 5).
pub(crate) fn quintile_scores<T: PartialOrd + Copy>(
    values: &[T],
    higher_is_better: bool,
) -> Vec<u8> {
    let count = values.len();
    let mut order: Vec<u32> = (0..count as u32).collect();
    // Stable sort: equal values keep ascending-id order.
    order.sort_by(|&left, &right| {
        values[left as usize]
            .partial_cmp(&values[right as usize])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut scores = vec![0_u8; count];
    let span = (count as u64).saturating_sub(1);
    for (rank, &customer) in order.iter().enumerate() {
        let rank = rank as u64;
        let bin = (1..=4_u64).filter(|k| 5 * rank > k * span).count() as u8;
        scores[customer as usize] = if higher_is_better { bin + 1 } else { 5 - bin };
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_every_cell_as_designed() {
        let expected = [
            // f = 1, 2, 3, 4, 5 for r = 1..=5
            [
                "hibernating",
                "hibernating",
                "at_risk",
                "at_risk",
                "cant_lose",
            ],
            [
                "hibernating",
                "hibernating",
                "at_risk",
                "at_risk",
                "cant_lose",
            ],
            [
                "about_to_sleep",
                "about_to_sleep",
                "need_attention",
                "loyal",
                "loyal",
            ],
            [
                "promising",
                "potential_loyalists",
                "potential_loyalists",
                "loyal",
                "loyal",
            ],
            [
                "new_customers",
                "potential_loyalists",
                "potential_loyalists",
                "champions",
                "champions",
            ],
        ];
        for r in 1..=5_u8 {
            for f in 1..=5_u8 {
                assert_eq!(
                    Segment::from_scores(r, f).as_str(),
                    expected[usize::from(r - 1)][usize::from(f - 1)],
                    "r={r} f={f}"
                );
            }
        }
    }

    #[test]
    fn quintiles_follow_pandas_qcut_of_first_rank() {
        // pandas: pd.qcut(pd.Series(range(7)).rank(method="first"), 5, labels=False) + 1
        //      -> [1, 1, 2, 3, 4, 5, 5]
        let values: Vec<i64> = (0..7).collect();
        assert_eq!(quintile_scores(&values, true), vec![1, 1, 2, 3, 4, 5, 5]);
        // Ties go by position (customer id): all equal still spreads over the quintiles.
        assert_eq!(quintile_scores(&[3, 3, 3, 3, 3], true), vec![1, 2, 3, 4, 5]);
        // Recency: smaller is better.
        assert_eq!(
            quintile_scores(&[10, 0, 5, 20, 1], false),
            vec![2, 5, 3, 1, 4]
        );
        assert_eq!(quintile_scores(&[7], true), vec![1]);
        assert_eq!(quintile_scores(&[7], false), vec![5]);
        assert!(quintile_scores::<i64>(&[], true).is_empty());
    }
}
