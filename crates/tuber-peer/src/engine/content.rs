//! What the store holds, per resource, and evicting a resource: the
//! dashboard's cache view.

use std::sync::Arc;

use super::shared::{lock, SwarmShared};
use super::types::CachedResource;
use super::{normalize_url, Engine, EngineError};

impl Engine {
    /// The resources held, per swarm.
    pub async fn cached(&self) -> Result<Vec<CachedResource>, EngineError> {
        let urls: Vec<(String, Arc<SwarmShared>)> = self
            .swarms
            .lock()
            .await
            .iter()
            .map(|(u, e)| (u.clone(), Arc::clone(&e.shared)))
            .collect();
        let mut out = Vec::new();
        for (url, shared) in urls {
            for (resource, _) in self.shared.store.list_manifests(url.clone()).await? {
                let pieces = self
                    .shared
                    .store
                    .list_by_resource(url.clone(), resource.clone())
                    .await?;
                let mut r = CachedResource {
                    swarm: url.clone(),
                    resource: resource.clone(),
                    pieces: 0,
                    bytes: 0,
                    hits: 0,
                    bytes_served: 0,
                    assigned: lock(&shared.assigned).contains_key(&resource),
                };
                for p in pieces {
                    if let Ok(Some(m)) = self.shared.store.meta(p).await {
                        r.pieces += 1;
                        r.bytes += m.size;
                        r.hits += m.hits;
                        r.bytes_served += m.bytes_served;
                    }
                }
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Deletes a resource's pieces (those no other resource owns) and its
    /// manifest.
    pub async fn evict(&self, url: &str, resource: &str) -> Result<u64, EngineError> {
        let url = normalize_url(url);
        let store = &self.shared.store;
        let mut n = 0;
        for p in store.list_by_resource(url.clone(), resource).await? {
            let shared_elsewhere = store.meta(p).await?.is_some_and(|m| {
                m.owners
                    .iter()
                    .any(|o| o.swarm != url || o.resource != resource)
            });
            if !shared_elsewhere && store.delete(p).await? {
                n += 1;
            }
        }
        store.delete_manifest(url.clone(), resource).await?;
        if let Some(e) = self.swarms.lock().await.get(&url) {
            lock(&e.shared.assigned).remove(resource);
        }
        Ok(n)
    }
}
