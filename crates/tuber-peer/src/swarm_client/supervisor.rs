//! The task behind a [`SwarmClient`](super::SwarmClient): attempt, back off,
//! attempt again, for as long as the handle lives or until the hub refuses
//! for good.

use std::time::Duration;

use super::backoff;
use super::session::{self, Ctx, Ended};
use super::SwarmState;

/// A session that lasted this long was a success: the next failure starts
/// the backoff from the bottom. Shorter ones count as failures, so a hub
/// that welcomes and then drops the peer at once is not hammered.
pub const STABLE_SESSION: Duration = Duration::from_secs(10);

pub(super) async fn run(mut ctx: Ctx) {
    let mut failures: u32 = 0;
    loop {
        ctx.state.send_replace(SwarmState::Connecting);
        let (error, immediate) = match session::attempt(&mut ctx).await {
            Ended::Cancelled => return,
            Ended::Refused { code, message } => {
                tracing::warn!(?code, %message, "the swarm refused this peer; not retrying");
                ctx.state
                    .send_replace(SwarmState::Refused { code, message });
                return;
            }
            Ended::Stopped { code, message } => {
                tracing::warn!(code, %message, "not joining this swarm");
                ctx.state
                    .send_replace(SwarmState::Stopped { code, message });
                return;
            }
            Ended::Retry {
                error,
                joined_for,
                immediate,
            } => {
                if joined_for.is_some_and(|d| d >= STABLE_SESSION) {
                    failures = 0;
                }
                (error, immediate)
            }
        };
        let delay = if immediate {
            Duration::ZERO
        } else {
            let d = backoff::random_delay(failures);
            failures = failures.saturating_add(1);
            d
        };
        tracing::info!(%error, ?delay, failures, "swarm connection lost; retrying");
        ctx.state.send_replace(SwarmState::Backoff {
            until: std::time::Instant::now() + delay,
            failures,
            last_error: error,
        });
        if !wait(&mut ctx, delay).await {
            return;
        }
    }
}

/// Sleeps for `delay`, dropping what the engine sends meanwhile (it is for
/// a session that is gone). False when the handle is leaving.
async fn wait(ctx: &mut Ctx, delay: Duration) -> bool {
    let until = tokio::time::Instant::now() + delay;
    loop {
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return false,
            () = tokio::time::sleep_until(until) => return true,
            out = ctx.outbound.recv() => {
                if out.is_none() {
                    return false;
                }
            }
        }
    }
}
