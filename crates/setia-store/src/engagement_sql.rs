// The engagement queries both backends run, included by `sqlite.rs` and `postgres.rs`.

use setia_core::engagement::EngagementProgram;

use crate::engagement::Engagement;

#[async_trait]
impl Engagement for ThisStore {
    async fn set_engagement_program(
        &self,
        merchant: &MerchantId,
        program: &EngagementProgram,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE merchants SET engagement_program = $1 WHERE id = $2")
            .bind(program.to_toml())
            .bind(merchant.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn engagement_program(&self, merchant: &MerchantId) -> StoreResult<EngagementProgram> {
        let stored: Option<Option<String>> =
            sqlx::query_scalar("SELECT engagement_program FROM merchants WHERE id = $1")
                .bind(merchant.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match stored.flatten() {
            None => Ok(EngagementProgram::standard()),
            Some(text) => EngagementProgram::from_toml(&text)
                .map_err(|e| StoreError::Corrupt(format!("merchant {merchant}: {e}"))),
        }
    }
}
