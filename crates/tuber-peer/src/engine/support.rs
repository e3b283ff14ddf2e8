//! The engine's plumbing: the once-a-second ticker, saving the meter,
//! status of one swarm, URL spelling, and small fetch helpers.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tuber_proto::Manifest;

use super::fetch;
use super::persist;
use super::shared::{lock, Shared, SwarmShared};
use super::types::{EngineEvent, SwarmStatus};
use super::{EngineError, SAVE_METER_EVERY};
use crate::meter::Meter;

pub(super) fn wanted_all(m: &Manifest) -> Vec<fetch::Wanted> {
    (0..m.pieces.len())
        .filter_map(|i| {
            let (_, size) = m.piece_range(i)?;
            Some(fetch::Wanted {
                index: i as u32,
                hash: m.pieces[i],
                size,
            })
        })
        .collect()
}

pub(super) async fn wait_descriptor(
    shared: &SwarmShared,
) -> Result<Arc<tuber_proto::SwarmDescriptor>, EngineError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(d) = lock(&shared.view).descriptor.clone() {
            return Ok(d);
        }
        if Instant::now() > deadline {
            return Err(EngineError::NotJoined(shared.url.clone()));
        }
        // The descriptor comes with `welcome`, a few ms after `join`.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(super) fn swarm_status(s: &SwarmShared, meter: &Meter, now: Instant) -> SwarmStatus {
    let view = lock(&s.view);
    let traffic = meter.swarm(now, &s.url).unwrap_or_default();
    let (assigned_pieces, assigned_held) = lock(&s.assigned)
        .values()
        .fold((0, 0), |(a, h), x| (a + x.pieces.len() as u64, h + x.held));
    SwarmStatus {
        url: s.url.clone(),
        swarm_id: view.descriptor.as_ref().map(|d| d.swarm_id.clone()),
        name: view.descriptor.as_ref().map(|d| d.name.clone()),
        phase: view.phase.clone(),
        peers: view.peers.len(),
        assigned_pieces,
        assigned_held,
        rate: traffic.rate,
        bytes: traffic.bytes,
    }
}

/// One spelling per swarm: trimmed, with a trailing `/` on a bare origin.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    match url.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{url}/"),
        _ => url.to_string(),
    }
}

pub(super) fn save_meter(shared: &Shared) {
    let snap = {
        let mut m = lock(&shared.meter);
        m.handle_timeout(Instant::now());
        m.snapshot()
    };
    if let Err(e) = persist::save(&shared.paths.meter, &snap) {
        tracing::warn!(error = %e, "history not saved");
    }
}

/// Once a second: advance the meter, push the rates; every 30 s save it.
pub(super) async fn tick(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_save = Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = every.tick() => {}
        }
        let now = Instant::now();
        let total = {
            let mut m = lock(&shared.meter);
            m.handle_timeout(now);
            m.total(now)
        };
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        shared.emit(EngineEvent::Rates {
            at,
            rate: total.rate,
            total: total.bytes,
        });
        if last_save.elapsed() >= SAVE_METER_EVERY {
            last_save = now;
            let s = Arc::clone(&shared);
            let _ = tokio::task::spawn_blocking(move || save_meter(&s)).await;
        }
    }
}
