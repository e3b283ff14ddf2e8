//! Figure 4, one peer (the `peer-process` binary, its own process for its RSS)
//! serving light requesters at once: aggregate rate, CPU and its memory.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tuber_peer::transport::{ConnectTimings, Link};
use tuber_proto::{Manifest, PeerId, PieceHash};
use tuber_tests::swarm::RawPeer;

use crate::hub::{bounded, child_log, close_links, ChildGuard};
use crate::sys::{cpu_secs, thread_cpu, thread_split, Mem};
use crate::wire::fetch_over;
use crate::{
    mbps, median, mib, ms, row, Row, Sizes, MIB, PIECE, REQUESTER_IN_FLIGHT, SERVED, WAIT,
};

/// One light requester: its own identity and signaling client, one link to
/// the serving peer, no engine (it never announces, so nobody asks it).
struct Requester {
    link: Link,
    connect: Duration,
    peer: RawPeer,
}

/// Asks the planner for `pieces` (the hub relays an offer only to a peer
/// the planner named), then offers a link to `server` through the hub, as
/// the engine's swarm actor does; the peer's hub errors with the failure.
async fn connect_light(
    mut peer: RawPeer,
    server: PeerId,
    pieces: Vec<PieceHash>,
) -> Result<Requester, String> {
    let providers = peer.want(pieces).await;
    if !providers.iter().any(|p| p.peer == server) {
        return Err(format!(
            "the planner did not name the server: {providers:?}"
        ));
    }
    let start = Instant::now();
    match peer.dial(server).await {
        Ok(link) => Ok(Requester {
            link,
            connect: start.elapsed(),
            peer,
        }),
        Err(e) => Err(format!("{e} (hub errors: {:?})", peer.hub_errors())),
    }
}

fn wanted_of(manifest: &Manifest, first: usize, count: usize) -> Vec<(PieceHash, u32)> {
    let n = manifest.pieces.len();
    (0..count)
        .map(|k| {
            let i = (first + k) % n;
            let (_, size) = manifest.piece_range(i).expect("piece in range");
            (manifest.pieces[i], size)
        })
        .collect()
}

/// Figure 4 on `url`, serving `served`, printed and added to `rows`.
pub async fn run(sizes: &Sizes, url: &str, served: &Manifest, rows: &mut Vec<Row>) {
    // ---- 4. one peer process serving N light requesters
    let n = sizes.requesters;
    let dir = tempfile::tempdir().expect("server dir");
    let mut server = ChildGuard::spawn(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_peer-process"))
            .arg(dir.path())
            .arg(url)
            .arg(SERVED)
            .env("RUST_LOG", child_log())
            .stderr(Stdio::inherit()),
    )
    .expect("spawn peer-process");
    let ready = server
        .line_starting("ready ", Duration::from_secs(120))
        .await;
    let server_id: PeerId = ready["ready ".len()..]
        .trim()
        .parse()
        .expect("peer-process prints its peer id");
    let pid = server.pid();
    let mem_seeded = Mem::of(pid);

    let mut joins = Vec::new();
    for _ in 0..n {
        let u = url.to_owned();
        joins.push(tokio::spawn(async move { RawPeer::join(&u).await }));
    }
    let mut joined = Vec::new();
    for j in joins {
        joined.push(
            bounded("requesters join", WAIT, j)
                .await
                .expect("join task"),
        );
    }
    // The requesters are all on 127.0.0.1, one network to the hub, which
    // relays at most OFFERS_PER_GROUP_TARGET offers per OFFER_WINDOW from one
    // network to one peer: they connect in waves, and the figure is the
    // connect time of each, not of the whole crowd.
    let connect_start = Instant::now();
    let mut requesters = Vec::new();
    let mut failed = Vec::new();
    let wave = tuber_hub::planner::OFFERS_PER_GROUP_TARGET;
    let mut joined = joined.into_iter().peekable();
    while joined.peek().is_some() {
        let wave_start = Instant::now();
        let mut connects = Vec::new();
        for j in joined.by_ref().take(wave) {
            let pieces = served.pieces.iter().take(4).copied().collect();
            connects.push(tokio::spawn(connect_light(j, server_id, pieces)));
        }
        for c in connects {
            match bounded("requesters connect", WAIT, c)
                .await
                .expect("connect task")
            {
                Ok(r) => requesters.push(r),
                Err(e) => failed.push(e),
            }
        }
        if joined.peek().is_some() {
            let window = tuber_hub::planner::OFFER_WINDOW + Duration::from_millis(100);
            tokio::time::sleep(window.saturating_sub(wave_start.elapsed())).await;
        }
    }
    let connect_all = connect_start.elapsed();
    let mem_linked = Mem::of(pid);
    let mut connect_ms: Vec<f64> = requesters.iter().map(|r| ms(r.connect)).collect();
    let connect_med = median(&mut connect_ms);
    let connect_max = connect_ms.last().copied().unwrap_or(0.0);
    let stage = |f: fn(ConnectTimings) -> Option<Duration>| {
        let mut v: Vec<f64> = requesters
            .iter()
            .filter_map(|r| f(r.link.connect_timings()).map(ms))
            .collect();
        median(&mut v)
    };
    let (ice_med, dtls_med, open_med) = (
        stage(|t| t.ice_connected),
        stage(|t| t.connected),
        stage(|t| Some(t.open)),
    );
    assert!(
        failed.is_empty(),
        "{} of {n} requesters could not connect: {:?}",
        failed.len(),
        failed.first(),
    );

    let per = sizes.per_requester / PIECE;
    let (cpu0, own_cpu0, start) = (cpu_secs(&pid.to_string()), cpu_secs("self"), Instant::now());
    let (server_threads0, own_threads0) = (thread_cpu(&pid.to_string()), thread_cpu("self"));
    let mut tasks = Vec::new();
    for (i, r) in requesters.into_iter().enumerate() {
        let wanted = wanted_of(served, i * per, per);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let res = fetch_over(&r.link, &wanted, REQUESTER_IN_FLIGHT).await;
            (r, res, t.elapsed())
        }));
    }
    let mut total = 0u64;
    let mut rates = Vec::new();
    let mut kept = Vec::new();
    for t in tasks {
        let (r, res, took) = bounded("the requesters' transfers", WAIT * 2, t)
            .await
            .expect("transfer task");
        let bytes = res.expect("a requester's transfer");
        total += bytes;
        rates.push(mbps(bytes, took));
        kept.push(r);
    }
    let elapsed = start.elapsed();
    let server_cpu = cpu_secs(&pid.to_string()) - cpu0;
    let requesters_cpu = cpu_secs("self") - own_cpu0;
    let server_threads = thread_split(&server_threads0, &thread_cpu(&pid.to_string()));
    let own_threads = thread_split(&own_threads0, &thread_cpu("self"));
    let mem_after = Mem::of(pid);
    let aggregate = mbps(total, elapsed);
    let rate_med = median(&mut rates);
    println!();
    println!(
        "[4] One serving peer (peer-process, pid {pid}) -> {n} light requesters, {} MiB each, \
         {REQUESTER_IN_FLIGHT} pieces in flight each, verified; {:.0} MiB resource",
        sizes.per_requester / MIB,
        mib(served.length)
    );
    println!(
        "    connect: all {n} in {:.0} ms, in waves of {wave} (one network to the hub); each: \
         median {connect_med:.0} ms, max {connect_max:.0} ms; transport breakdown (medians, \
         signals relayed by the hub): ICE {ice_med:.0} ms, DTLS {dtls_med:.0} ms, channel open \
         {open_med:.0} ms",
        ms(connect_all)
    );
    println!(
        "    transfer: {:.0} MiB in {:.2} s = {aggregate:.1} MB/s aggregate (per requester: \
         median {rate_med:.1} MB/s, min {:.1}, max {:.1})",
        mib(total),
        elapsed.as_secs_f64(),
        rates.first().copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0),
    );
    println!(
        "    CPU during the transfer: server {server_cpu:.2} s ({:.1} ms/MiB), the {n} \
         requesters (this process) {requesters_cpu:.2} s ({:.1} ms/MiB); {:.0} % of the \
         machine's {:.1} CPU-s",
        server_cpu * 1e3 / mib(total),
        requesters_cpu * 1e3 / mib(total),
        100.0 * (server_cpu + requesters_cpu)
            / (elapsed.as_secs_f64()
                * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64),
        elapsed.as_secs_f64() * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
    );
    println!("    server CPU by thread: {server_threads}");
    println!("    requesters' CPU by thread: {own_threads}");
    println!("    server memory, seeded and idle:  {mem_seeded}");
    println!("    server memory, {n} links open:    {mem_linked}");
    println!("    server memory, after transfer:   {mem_after}");
    println!(
        "    per link: {:.2} MB RSS when connected, {:.2} MB after the transfer",
        (mem_linked.rss as f64 - mem_seeded.rss as f64) / 1e6 / n as f64,
        (mem_after.rss as f64 - mem_seeded.rss as f64) / 1e6 / n as f64
    );
    let hub_errors: Vec<String> = kept.iter().flat_map(|r| r.peer.hub_errors()).collect();
    if !hub_errors.is_empty() {
        println!("    hub errors seen by requesters: {hub_errors:?}");
    }
    rows.push(row(
        &format!("4. one peer -> {n} peers, aggregate"),
        format!("{aggregate:.0} MB/s"),
        ">= 150 MB/s",
        Some(aggregate >= 150.0),
    ));
    rows.push(row(
        "4. serving peer RSS after (HWM)",
        format!(
            "{:.0} MB ({:.0} MB)",
            mem_after.rss as f64 / 1e6,
            mem_after.hwm as f64 / 1e6
        ),
        "-",
        None,
    ));
    close_links(&kept.iter().map(|r| &r.link).collect::<Vec<_>>()).await;
    drop(kept);
    server.stop().await;
}
