//! Merchants by id, cached briefly: every webhook needs its merchant's secret, and merchants
//! change rarely. A new merchant is found at once (misses are not cached).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use setia_core::MerchantId;
use setia_store::{Merchant, Store, StoreResult};

/// Beyond this many entries the cache starts over, so made-up ids cannot grow it.
const MAX_ENTRIES: usize = 10_000;

pub struct MerchantCache {
    store: Arc<dyn Store>,
    ttl: Duration,
    entries: RwLock<HashMap<MerchantId, (Arc<Merchant>, Instant)>>,
}

impl MerchantCache {
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> MerchantCache {
        MerchantCache {
            store,
            ttl,
            entries: RwLock::default(),
        }
    }

    pub async fn get(&self, id: &MerchantId) -> StoreResult<Option<Arc<Merchant>>> {
        if let Some((merchant, fetched)) = self.entries.read().expect("cache lock").get(id) {
            if fetched.elapsed() < self.ttl {
                return Ok(Some(merchant.clone()));
            }
        }
        let Some(merchant) = self.store.merchant(id).await?.map(Arc::new) else {
            return Ok(None);
        };
        let mut entries = self.entries.write().expect("cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(id.clone(), (merchant.clone(), Instant::now()));
        Ok(Some(merchant))
    }
}
