//! What the planner assigns to trusted peers follows the manifest index
//! (`manifests/index`): the manifests it publishes (the most wanted that the
//! trusted peers' disks can hold) are made known to the planner, and those
//! it unpublishes or forgets are removed, so their donors unpin them (an
//! expired signed URL's pieces are also withdrawn: nobody is introduced as
//! their holder). One task drives the index: every second it reads what the
//! trusted peers can hold, lets signed URLs expire and old entries age out,
//! ranks when demand changed, and every [`FLUSH_EVERY`] writes the ask times
//! that changed (one batch, never a write per request). Every message to the
//! planner about content goes out under one lock, in the order the index
//! decided, so the planner never keeps what the index dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tuber_proto::{Manifest, ManifestId};

use crate::db::DbError;
use crate::manifests::PlannerWork;
use crate::server::HubState;

/// How often the index is swept and the capacity read.
pub const TICK: Duration = Duration::from_secs(1);
/// How often changed ask times are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

impl HubState {
    /// `m` was asked for (`pushed`: the hub itself wants it distributed,
    /// the admin API or a live segment): the planner assigns it now if the
    /// trusted peers can hold it, else when it ranks high enough.
    pub(crate) async fn publish(&self, m: &Arc<Manifest>, pushed: bool) {
        let _order = self.publication.lock().await;
        // What was decided before this goes first.
        self.send_planner_work().await;
        if pushed {
            self.manifests.pushed(&m.path);
        }
        if self.manifests.offer(m) {
            self.swarm.content(Arc::clone(m)).await;
        }
    }

    /// The hub stops distributing manifest `id` (a retired live segment):
    /// forgotten, and unassigned.
    pub(crate) async fn retire(&self, id: ManifestId) {
        let manifests = self.manifests.clone();
        blocking("retire a manifest", move || manifests.forget_blocking(&id)).await;
        let _order = self.publication.lock().await;
        self.send_planner_work().await;
    }

    /// Sends the queued planner work. Called with `publication` held.
    async fn send_planner_work(&self) {
        for work in self.manifests.take_planner_work() {
            match work {
                PlannerWork::Publish { path, version } => {
                    if let Some(m) = self.manifests.load_kept(&path, &version).await {
                        self.swarm.content(m).await;
                    }
                }
                PlannerWork::Unpublish { id, withdrawn } => {
                    self.swarm.content_removed(id, withdrawn).await;
                }
            }
        }
    }
}

/// Drives the index until `cancel`; then writes the ask times once more.
pub(crate) async fn run(state: Arc<HubState>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flushed = Instant::now();
    loop {
        tokio::select! {
            // Shutdown first; then work the index queued (a forgotten
            // manifest's donors unpin it at once); then the clock.
            biased;
            () = cancel.cancelled() => break,
            () = state.manifests.planner_work_queued() => {}
            _ = tick.tick() => {
                let capacity = state.swarm.gauges().await.donor_capacity;
                state.manifests.set_capacity(capacity);
                let manifests = state.manifests.clone();
                blocking("sweep the manifest index", move || manifests.sweep_blocking()).await;
                if flushed.elapsed() >= FLUSH_EVERY {
                    flushed = Instant::now();
                    let manifests = state.manifests.clone();
                    blocking("write ask times", move || manifests.flush_asks_blocking()).await;
                }
            }
        }
        let _order = state.publication.lock().await;
        state.send_planner_work().await;
    }
    let manifests = state.manifests.clone();
    blocking("write ask times", move || manifests.flush_asks_blocking()).await;
}

/// Runs database work off the async workers; a failure is logged (the
/// index is reconciled with the database at the next start).
async fn blocking(what: &'static str, f: impl FnOnce() -> Result<(), DbError> + Send + 'static) {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot {what}"),
        Err(e) => tracing::error!(error = %e, "cannot {what}"),
    }
}
