//! The holdout draw of DESIGN §8: every automated flow that claims an effect keeps a random
//! share of its customers out, drawn per customer and episode with a seeded hash so that the
//! same episode always lands in the same group and the draw can be recorded before the first
//! send. Win-back's episodes and campaigns each draw with a domain of their own.

use sha2::{Digest, Sha256};

use crate::{CustomerId, MerchantId};

/// Whether `customer`'s `episode` (its bytes: an episode number, a campaign key) of the flow
/// named by `domain` is held out, `holdout_percent` of them in all.
pub fn held_out(
    domain: &str,
    merchant: &MerchantId,
    customer: CustomerId,
    episode: &[u8],
    holdout_percent: u32,
) -> bool {
    let digest = Sha256::new()
        .chain_update(domain.as_bytes())
        .chain_update(b"\0")
        .chain_update(merchant.as_str())
        .chain_update(b"\0")
        .chain_update(customer.key().to_le_bytes())
        .chain_update(episode)
        .finalize();
    let draw = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    // Ten thousand buckets, so a percentage splits them evenly.
    draw % 10_000 < u64::from(holdout_percent) * 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_draw_apart_and_percentages_hold() {
        let merchant = MerchantId::from_random_bytes([3; 20]);
        let draw = |domain: &str, percent| -> Vec<bool> {
            (1..=20_000)
                .map(|c| held_out(domain, &merchant, CustomerId::from_key(c), b"1", percent))
                .collect()
        };
        let a = draw("a", 10);
        assert_eq!(a, draw("a", 10));
        assert_ne!(a, draw("b", 10), "each flow draws its own holdout");
        let share = a.iter().filter(|h| **h).count() as f64 / a.len() as f64;
        assert!((0.09..0.11).contains(&share), "{share}");
        assert!(draw("a", 0).iter().all(|h| !h));
        assert!(draw("a", 100).iter().all(|h| *h));
    }
}
