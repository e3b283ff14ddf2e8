//! A permanent peer in a process of its own, to be killed: starts an engine
//! on DATA_DIR, joins the swarm at URL, fetches the resource PATH to seed
//! itself, prints `ready PEER_ID`, then serves until killed.
//!
//! Usage: `peer-process DATA_DIR URL PATH`. Logs go to stderr (`RUST_LOG`).

use std::time::Duration;

use anyhow::{bail, Context};
use tuber_peer::Engine;
use tuber_tests::swarm::engine_config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, url, path] = args.as_slice() else {
        bail!("usage: peer-process DATA_DIR URL PATH");
    };
    let engine = Engine::start(engine_config(dir.as_ref()))
        .await
        .context("start the engine")?;
    engine.join(url, None).await.context("join")?;
    let summary = tokio::time::timeout(Duration::from_secs(120), engine.fetch_resource(url, path))
        .await
        .context("seeding took over 120 s")?
        .context("seed")?;
    if summary.failed > 0 {
        bail!("seeding failed for {} pieces: {summary:?}", summary.failed);
    }
    eprintln!("peer-process seeded {path}: {summary:?}");
    println!("ready {}", engine.peer_id());
    std::future::pending::<()>().await;
    Ok(())
}
