//! How simulated customers answer a win-back episode: some come back within 30 days
//! anyway, and the emails bring back a known share more. The demo seeds its past episodes
//! with this, so the win-back result has a true uplift to find.

use rand::Rng;

/// Share of held-out customers who buy again within 30 days of entering.
pub const BASE_RETURN: f64 = 0.12;
/// The extra share of treated customers the emails bring back: the true uplift.
pub const DEMO_UPLIFT: f64 = 0.18;

/// Whether a customer in an episode buys again within 30 days, and how many days after
/// entry: with `BASE_RETURN`, plus `uplift` when they were mailed.
pub fn comes_back(rng: &mut impl Rng, treated: bool, uplift: f64) -> Option<u32> {
    let share = BASE_RETURN + if treated { uplift } else { 0.0 };
    rng.random_bool(share.clamp(0.0, 1.0))
        .then(|| rng.random_range(1..30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn the_treated_come_back_more_by_the_uplift() {
        let mut rng = StdRng::seed_from_u64(7);
        let share = |rng: &mut StdRng, treated| {
            (0..20_000)
                .filter(|_| comes_back(rng, treated, DEMO_UPLIFT).is_some())
                .count() as f64
                / 20_000.0
        };
        let held_out = share(&mut rng, false);
        let treated = share(&mut rng, true);
        assert!((held_out - BASE_RETURN).abs() < 0.01, "{held_out}");
        assert!(
            (treated - held_out - DEMO_UPLIFT).abs() < 0.015,
            "{treated}"
        );
        assert!((0..1_000)
            .all(|_| comes_back(&mut rng, true, 0.0).is_none_or(|d| (1..30).contains(&d))));
    }
}
