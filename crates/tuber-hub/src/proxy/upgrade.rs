//! WebSocket pass-through for the upstream app: after the upstream agreed
//! (101), both connections are taken over from hyper and bytes are copied
//! both ways until one side closes. The proxy never looks inside the frames.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Starts the tunnel once both upgrades complete. The task is tracked by the
/// proxy and ends when either side closes or the proxy is dropped.
pub(crate) fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) {
    tasks.spawn(async move {
        // The client's side completes only after the 101 has been written
        // to it, which happens once the handler returned the response.
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!("websocket upgrade did not complete: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            // Shutdown first: a closing hub must not wait on idle sockets.
            biased;
            () = cancel.cancelled() => tracing::debug!("websocket tunnel closed: proxy dropped"),
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match copied {
                Ok((up, down)) => tracing::debug!(up, down, "websocket tunnel closed"),
                Err(e) => tracing::debug!("websocket tunnel ended: {e}"),
            },
        }
    });
}
