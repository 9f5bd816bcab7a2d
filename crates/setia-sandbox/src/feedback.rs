//! How simulated customers answer a feedback request: about two in five answer, most of
//! them happy, a few not, and some leave a comment in the words a shopper would use.

use rand::seq::IndexedRandom;
use rand::Rng;
use setia_core::engagement::FeedbackKind;

/// Share of requests a simulated customer answers.
pub const RESPONSE_RATE: f64 = 0.4;

/// A simulated answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAnswer {
    pub score: u8,
    pub comment: Option<&'static str>,
}

const HAPPY: &[&str] = &[
    "Pengiriman cepat, barang sesuai foto. Terima kasih!",
    "Sudah langganan, selalu puas.",
    "Kemasan rapi dan aman.",
    "Admin ramah dan fast response.",
];
const MIXED: &[&str] = &[
    "Barang oke, tapi pengiriman agak lama.",
    "Lumayan, ukurannya sedikit berbeda.",
];
const UNHAPPY: &[&str] = &[
    "Paket datang terlambat seminggu dan kemasannya penyok.",
    "Barang yang dikirim salah warna, sudah chat admin belum dibalas.",
    "Produk rusak saat diterima.",
];

/// Whether and how one customer answers, on `kind`'s scale: `None` for no answer. CSAT
/// answers are about 45% fives, 30% fours, 12% threes, 8% twos and 5% ones; NPS answers map
/// the same moods onto 0–10.
pub fn answer(rng: &mut impl Rng, kind: FeedbackKind) -> Option<SimAnswer> {
    if !rng.random_bool(RESPONSE_RATE) {
        return None;
    }
    let mood = rng.random_range(0..100u8);
    let (score, comments) = match (kind, mood) {
        (FeedbackKind::Csat, 0..45) => (5, HAPPY),
        (FeedbackKind::Csat, 45..75) => (4, HAPPY),
        (FeedbackKind::Csat, 75..87) => (3, MIXED),
        (FeedbackKind::Csat, 87..95) => (2, UNHAPPY),
        (FeedbackKind::Csat, _) => (1, UNHAPPY),
        (FeedbackKind::Nps, 0..45) => (rng.random_range(9..=10), HAPPY),
        (FeedbackKind::Nps, 45..75) => (rng.random_range(7..=8), HAPPY),
        (FeedbackKind::Nps, 75..87) => (rng.random_range(5..=6), MIXED),
        (FeedbackKind::Nps, _) => (rng.random_range(0..=4), UNHAPPY),
    };
    // Unhappy customers say why more often.
    let says = if score <= 2 || (kind == FeedbackKind::Nps && score <= 4) {
        0.8
    } else {
        0.3
    };
    let comment = if rng.random_bool(says) {
        comments.choose(rng).copied()
    } else {
        None
    };
    Some(SimAnswer { score, comment })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_realistic_mix_with_a_few_detractors() {
        let mut rng = StdRng::seed_from_u64(7);
        let answers: Vec<SimAnswer> = (0..10_000)
            .filter_map(|_| answer(&mut rng, FeedbackKind::Csat))
            .collect();
        let share = |keep: &dyn Fn(u8) -> bool| {
            answers.iter().filter(|a| keep(a.score)).count() as f64 / answers.len() as f64
        };
        let rate = answers.len() as f64 / 10_000.0;
        assert!((rate - RESPONSE_RATE).abs() < 0.02, "{rate}");
        assert!((share(&|s| s >= 4) - 0.75).abs() < 0.03);
        assert!((share(&|s| s <= 2) - 0.13).abs() < 0.02);
        assert!(answers.iter().all(|a| (1..=5).contains(&a.score)));
        let nps: Vec<SimAnswer> = (0..2_000)
            .filter_map(|_| answer(&mut rng, FeedbackKind::Nps))
            .collect();
        assert!(nps.iter().all(|a| a.score <= 10));
        assert!(nps.iter().any(|a| a.score <= 6) && nps.iter().any(|a| a.score >= 9));
    }
}
