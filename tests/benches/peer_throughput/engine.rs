//! Figure 2, engine A -> engine B through a real hub, and figure 3, a
//! fresh engine's time from `join()` to its first piece.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tuber_peer::engine::SwarmPhase;
use tuber_peer::EngineEvent;
use tuber_tests::swarm::Peer;

use crate::hub::{bounded, AbortOnDrop};
use crate::link::Ceilings;
use crate::sys::{cpu_secs, thread_cpu, thread_split};
use crate::{mbps, median, mib, ms, opt_ms, row, Row, BIG, WAIT, WARM};

/// A fresh engine joins `url` and fetches the one-piece `path`: the time
/// from `join()` to the piece stored, and when (from `join()`) the engine
/// reported the hub joined and the link open.
async fn connect_sample(url: &str, path: &str) -> (Duration, Option<Duration>, Option<Duration>) {
    let mut peer = Peer::start().await;
    let mut events = peer.engine().subscribe();
    let marks: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let recorder = {
        let marks = Arc::clone(&marks);
        AbortOnDrop(tokio::spawn(async move {
            while let Ok(ev) = events.recv().await {
                let now = Instant::now();
                let mut m = marks.lock().expect("marks");
                match ev {
                    EngineEvent::Swarm {
                        status: Some(s), ..
                    } if matches!(s.phase, SwarmPhase::Joined { .. }) => {
                        m.0.get_or_insert(now);
                    }
                    EngineEvent::Peer {
                        connected: true, ..
                    } => {
                        m.1.get_or_insert(now);
                    }
                    _ => {}
                }
            }
        }))
    };
    let t0 = Instant::now();
    peer.join(url, None).await;
    let got = bounded(
        "C fetches its first piece",
        WAIT,
        peer.engine().fetch_resource(url, path),
    )
    .await
    .expect("C's fetch");
    let total = t0.elapsed();
    drop(recorder);
    assert_eq!(got.from_peers, 1, "C's piece comes from a peer: {got:?}");
    let (joined, linked) = *marks.lock().expect("marks");
    peer.shutdown().await;
    (total, joined.map(|t| t - t0), linked.map(|t| t - t0))
}

/// Figures 2 and 3 on `url`, printed and added to `rows`; A and B are shut
/// down after. `udp` and `ceilings` are the references of figures 1-1c.
pub async fn run(
    peer_a: Peer,
    peer_b: Peer,
    url: &str,
    firsts: &[String],
    udp: f64,
    ceilings: &Ceilings,
    rows: &mut Vec<Row>,
) {
    let Ceilings {
        bare_raw,
        bare_wire,
    } = *ceilings;
    // ---- 2. engine A -> engine B
    // B's link to A is opened by a one-piece fetch first, so the figure is
    // the transfer itself; the connect is figure 3.
    let t = Instant::now();
    let s = peer_b.fetch(url, WARM, WAIT).await;
    assert_eq!(s.from_peers, 1, "B's warm-up piece comes from A: {s:?}");
    let b_warm = t.elapsed();
    let (cpu0, threads0, start) = (cpu_secs("self"), thread_cpu("self"), Instant::now());
    let got = peer_b.fetch(url, BIG, WAIT).await;
    let elapsed = start.elapsed();
    let cpu = cpu_secs("self") - cpu0;
    let threads = thread_split(&threads0, &thread_cpu("self"));
    assert_eq!(got.failed, 0, "{got:?}");
    assert_eq!(got.from_peers, got.pieces, "every piece from A: {got:?}");
    let engine_rate = mbps(got.bytes_from_peers, elapsed);
    println!();
    println!(
        "[2] Engine A -> engine B, verified pieces out of A's store ({} pieces, {:.0} MiB, hub \
         in this process, B's link to A already open)",
        got.pieces,
        mib(got.bytes_from_peers)
    );
    println!(
        "    {engine_rate:.1} MB/s ({:.2} s) = {:.2} x UDP, {:.2} x bare link, {:.2} x bare wire; \
         CPU {cpu:.2} s ({:.1} ms/MiB, both engines)",
        elapsed.as_secs_f64(),
        engine_rate / udp,
        engine_rate / bare_raw,
        engine_rate / bare_wire,
        cpu * 1e3 / mib(got.bytes_from_peers)
    );
    println!("    CPU by thread (A and B together): {threads}");
    println!("    summary: {got:?}");
    rows.push(row(
        &format!(
            "2. engine A -> B, {:.0} MiB verified",
            mib(got.bytes_from_peers)
        ),
        format!("{engine_rate:.0} MB/s = {:.2} x UDP", engine_rate / udp),
        ">= 0.6 x UDP",
        Some(engine_rate >= 0.6 * udp),
    ));

    // ---- 3. connect time: fresh engines, join -> first piece
    println!();
    println!(
        "[3] Fresh engine C: join() -> first piece (a one-piece resource of 256 KiB held by \
         A), {} samples, each a new engine on a new data dir",
        firsts.len()
    );
    let mut totals = Vec::new();
    for (i, f) in firsts.iter().enumerate() {
        let (total, joined, linked) = connect_sample(url, f).await;
        println!(
            "    C{i}: total {:.0} ms: joined the hub at {}, link to A open at {}, piece \
             stored at {:.0} ms",
            ms(total),
            opt_ms(joined),
            opt_ms(linked),
            ms(total)
        );
        totals.push(ms(total));
    }
    let best = totals.iter().copied().fold(f64::INFINITY, f64::min);
    let worst = totals.iter().copied().fold(0.0, f64::max);
    let med = median(&mut totals);
    println!(
        "    median {med:.0} ms, min {best:.0} ms, max {worst:.0} ms; B (already joined) want -> \
         link -> one piece: {:.0} ms; the transport's own breakdown is in [1b] and [4]",
        ms(b_warm)
    );
    rows.push(row(
        "3. join -> first piece (fresh engine)",
        format!("median {med:.0} ms (min {best:.0}, max {worst:.0})"),
        "< 150 ms",
        Some(med < 150.0),
    ));
    for p in [peer_a, peer_b] {
        let mut p = p;
        p.shutdown().await;
    }
}
