//! The peer benchmark: a command that prints figures, not a timed test.
//!
//! `cargo bench --profile dev -p tuber-tests --bench peer_throughput`
//! (`TUBER_BENCH_QUICK=1` shrinks every size for a smoke run of seconds).
//!
//! Everything on 127.0.0.1, from one run:
//! 1. raw loopback UDP with 1200-byte datagrams and 4 MiB socket buffers
//!    (the ceiling), then rows that take the engine apart layer by layer:
//!    1b a bare `Link`→`Link` transfer (the library's ceiling); 1c the peer
//!    wire (`WireSession`) over a bare link, pieces from memory, sent the
//!    engine's way (`writable` + `try_send(frame.clone())`) and with plain
//!    `send(frame)`; 1d SHA-256 and the piece store alone; 1e the wire over
//!    a bare link between two stores, reads awaited inline (the engine's
//!    way) and as tasks;
//! 2. engine A → engine B: a 64 MiB resource out of A's store, verified,
//!    through a real hub (`tuber_hub::server::run`) in this process;
//! 3. a fresh engine C: from `join()` to its first piece from A;
//! 4. one peer (the `peer-process` binary, its own process for its RSS)
//!    serving 50 light requesters at once: aggregate rate and its RSS;
//! 5. the idle `tuber-peer` daemon's RSS (build it first:
//!    `cargo build -p tuber-peer`).
//!
//! Every child process is killed on every path
//! ([`ChildGuard`](hub::ChildGuard)); every wait is bounded
//! ([`bounded`](hub::bounded)).

mod daemon;
mod engine;
mod fanout;
mod hub;
mod link;
mod sys;
mod udp;
mod wire;

use std::time::Duration;

const MIB: usize = 1024 * 1024;
/// Every socket buffer this benchmark asks for (FIELD-NOTES: 4 MiB).
const SOCKET_BUFFER: usize = 4 * MIB;
/// One UDP datagram's payload, as in FIELD-NOTES.
const DATAGRAM: usize = 1200;
/// A piece, as the hub cuts them by default.
const PIECE: usize = 256 * 1024;
/// Requests each of the 50 light requesters keeps in flight.
const REQUESTER_IN_FLIGHT: usize = 4;
/// Requests in flight on the bare wire row: what the engine's fetcher
/// reaches (48 at once, capped by the session's 32).
const BARE_WIRE_IN_FLIGHT: usize = 32;
/// Bound on any single wait of this benchmark.
const WAIT: Duration = Duration::from_secs(60);

const BIG: &str = "/bench/big.bin";
const WARM: &str = "/bench/warm.bin";
/// One-piece resources for the connect samples (`{FIRST}-{i}.bin`).
const FIRST: &str = "/bench/first";
const SERVED: &str = "/bench/served.bin";

// ---------------------------------------------------------------- sizes

struct Sizes {
    quick: bool,
    udp_bytes: u64,
    udp_time: Duration,
    bare_bytes: usize,
    big: usize,
    served: usize,
    requesters: usize,
    per_requester: usize,
    idle: Duration,
    /// Fresh engines timed from join to first piece.
    connect_samples: usize,
}

impl Sizes {
    fn from_env() -> Self {
        let quick = std::env::var("TUBER_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Self {
                quick,
                udp_bytes: 32 * MIB as u64,
                udp_time: Duration::from_secs(1),
                bare_bytes: 8 * MIB,
                big: 8 * MIB,
                served: 8 * MIB,
                requesters: 5,
                per_requester: 2 * MIB,
                idle: Duration::from_secs(1),
                connect_samples: 2,
            }
        } else {
            Self {
                quick,
                udp_bytes: 256 * MIB as u64,
                udp_time: Duration::from_secs(3),
                bare_bytes: 64 * MIB,
                big: 64 * MIB,
                served: 32 * MIB,
                requesters: 50,
                per_requester: 8 * MIB,
                idle: Duration::from_secs(10),
                connect_samples: 5,
            }
        }
    }
}

// ---------------------------------------------------------------- units

/// MB (10^6 bytes) per second.
fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.0} ms", ms(d)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------- summary

struct Row {
    figure: String,
    value: String,
    target: String,
    met: Option<bool>,
}

fn row(figure: &str, value: String, target: &str, met: Option<bool>) -> Row {
    Row {
        figure: figure.into(),
        value,
        target: target.into(),
        met,
    }
}

fn print_summary(rows: &[Row]) {
    let w0 = rows
        .iter()
        .map(|r| r.figure.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
    let w2 = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!();
    println!("Summary");
    println!(
        "{:<w0$} | {:<w1$} | {:<w2$} | met",
        "figure", "value", "target"
    );
    println!("{:-<w0$}-+-{:-<w1$}-+-{:-<w2$}-+-----", "", "", "");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!(
            "{:<w0$} | {:<w1$} | {:<w2$} | {met}",
            r.figure, r.value, r.target
        );
    }
}

// ---------------------------------------------------------------- main

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let sizes = Sizes::from_env();
    let mut rows = Vec::new();

    println!(
        "Tuber peer benchmark ({}): MB = 10^6 bytes, MiB = 2^20 bytes; everything on 127.0.0.1",
        if sizes.quick {
            "QUICK: TUBER_BENCH_QUICK=1, shrunk sizes"
        } else {
            "full"
        }
    );
    println!(
        "host: {} CPUs, load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let udp = udp::run(&sizes, &mut rows).await;
    let ceilings = link::run(&sizes, udp, &mut rows).await;
    let hub::Swarm {
        origin,
        hub,
        url,
        firsts,
        served,
        peer_a,
        peer_b,
    } = hub::Swarm::start(&sizes).await;
    engine::run(peer_a, peer_b, &url, &firsts, udp, &ceilings, &mut rows).await;
    fanout::run(&sizes, &url, &served, &mut rows).await;
    daemon::run(&sizes, &url, &mut rows).await;

    print_summary(&rows);
    drop(hub);
    drop(origin);
}
