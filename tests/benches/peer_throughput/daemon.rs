//! Figure 5, the idle `tuber-peer` daemon's memory (build it first:
//! `cargo build -p tuber-peer`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::hub::{child_log, ChildGuard};
use crate::mib;
use crate::sys::Mem;
use crate::{row, Row, Sizes};

/// Figure 5, the daemon joined to `url`, printed and added to `rows`.
pub async fn run(sizes: &Sizes, url: &str, rows: &mut Vec<Row>) {
    // ---- 5. the idle daemon
    println!();
    let daemon = daemon_binary();
    match daemon {
        Some(bin) => {
            let data = tempfile::tempdir().expect("daemon dir");
            let mut d = ChildGuard::spawn(
                tokio::process::Command::new(&bin)
                    .arg("--data")
                    .arg(data.path())
                    .arg("run")
                    .arg("--api")
                    .arg("127.0.0.1:0")
                    .arg("--join")
                    .arg(url)
                    .env("RUST_LOG", child_log())
                    .stderr(Stdio::inherit()),
            )
            .expect("spawn tuber-peer");
            let api = d
                .line_starting("tuber-peer api on", Duration::from_secs(30))
                .await;
            let start_mem = Mem::of(d.pid());
            tokio::time::sleep(sizes.idle).await;
            let idle_mem = Mem::of(d.pid());
            println!(
                "[5] Idle daemon ({}), joined to the hub, {} s idle",
                bin.display(),
                sizes.idle.as_secs()
            );
            println!("    {api}");
            println!("    at start: {start_mem}");
            println!("    idle:     {idle_mem}");
            rows.push(row(
                "5. idle daemon RSS",
                format!(
                    "{:.1} MB ({:.1} MiB)",
                    idle_mem.rss as f64 / 1e6,
                    mib(idle_mem.rss)
                ),
                "<= 25 MB",
                Some(idle_mem.rss <= 25_000_000),
            ));
            d.stop().await;
        }
        None => {
            println!(
                "[5] Idle daemon: target/debug/tuber-peer not found; build it first with \
                 `cargo build -p tuber-peer`"
            );
            rows.push(row(
                "5. idle daemon RSS",
                "not measured (build tuber-peer)".into(),
                "<= 25 MB",
                None,
            ));
        }
    }
}

/// `target/<profile>/tuber-peer` next to this bench (which runs from
/// `target/<profile>/deps`), if built.
fn daemon_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir: &Path = exe.parent()?.parent()?;
    let bin = profile_dir.join("tuber-peer");
    bin.is_file().then_some(bin)
}
