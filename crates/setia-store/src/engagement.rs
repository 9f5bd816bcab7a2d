//! The engagement side of the store (DESIGN §8): each merchant's engagement program.

use async_trait::async_trait;
use setia_core::engagement::EngagementProgram;
use setia_core::MerchantId;

use crate::StoreResult;

#[async_trait]
pub trait Engagement: Send + Sync {
    /// Replaces the merchant's program (kept as its TOML).
    async fn set_engagement_program(
        &self,
        merchant: &MerchantId,
        program: &EngagementProgram,
    ) -> StoreResult<()>;
    /// The program in force: the stored one, or the defaults when none was set.
    async fn engagement_program(&self, merchant: &MerchantId) -> StoreResult<EngagementProgram>;
}
