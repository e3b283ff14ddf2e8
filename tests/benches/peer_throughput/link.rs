//! Figures 1b to 1e: the engine taken apart layer by layer, both ends in this
//! process: a bare `Link`, the peer wire over it, the per-piece costs, and
//! the wire between two stores.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tuber_peer::transport::{self, ConnectTimings, Link, LinkEvent, Signal};
use tuber_proto::PieceHash;
use tuber_tests::Rng;

use crate::hub::{bounded, close_links};
use crate::sys::{cpu_secs, thread_cpu, thread_split};
use crate::wire::{
    fetch_into, fetch_over, loopback_rtc, serve_from_memory, serve_from_store, Sending,
};
use crate::{mbps, mib, ms, opt_ms, row, Row, Sizes, BARE_WIRE_IN_FLIGHT, PIECE, WAIT};

/// Two links in this process, signaled through channels (no hub).
async fn bare_pair() -> (Arc<Link>, Arc<Link>, Duration) {
    let cfg = loopback_rtc();
    let (off_out, mut off_out_rx) = mpsc::channel::<Signal>(64);
    let (off_in_tx, off_in) = mpsc::channel::<Signal>(64);
    let (ans_out, mut ans_out_rx) = mpsc::channel::<Signal>(64);
    let (ans_in_tx, ans_in) = mpsc::channel::<Signal>(64);
    let start = Instant::now();
    let c = cfg.clone();
    let offer =
        tokio::spawn(async move { transport::connect_offer(&c, off_out, off_in, WAIT).await });
    let sdp = match bounded("the offer", WAIT, off_out_rx.recv()).await {
        Some(Signal::Description(sdp)) => sdp,
        other => panic!("expected the offer first, got {other:?}"),
    };
    let answer =
        tokio::spawn(
            async move { transport::connect_answer(&cfg, sdp, ans_out, ans_in, WAIT).await },
        );
    tokio::spawn(async move {
        while let Some(s) = off_out_rx.recv().await {
            if ans_in_tx.send(s).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(s) = ans_out_rx.recv().await {
            if off_in_tx.send(s).await.is_err() {
                break;
            }
        }
    });
    let a = bounded("the offerer connects", WAIT, offer)
        .await
        .expect("offer task")
        .expect("offerer connects");
    let b = bounded("the answerer connects", WAIT, answer)
        .await
        .expect("answer task")
        .expect("answerer connects");
    (Arc::new(a), Arc::new(b), start.elapsed())
}

fn timings(t: ConnectTimings) -> String {
    format!(
        "ICE {}, DTLS {}, channel open {:.0} ms",
        opt_ms(t.ice_connected),
        opt_ms(t.connected),
        ms(t.open)
    )
}

/// 256 KiB messages from `tx` to `rx`: bytes, elapsed, CPU seconds.
async fn raw_transfer(tx: Arc<Link>, rx: Arc<Link>, total: usize) -> (u64, Duration, f64) {
    let msg = Bytes::from(vec![
        0x5a;
        tx.remote_max_message_size().min(PIECE as u32) as usize
    ]);
    let (cpu0, start) = (cpu_secs("self"), Instant::now());
    let sender = tokio::spawn(async move {
        let mut sent = 0;
        while sent < total {
            tx.send(msg.clone()).await.expect("send on the bare link");
            sent += msg.len();
        }
        tx
    });
    let got = bounded("the bare transfer", WAIT, async {
        let mut got = 0u64;
        while got < total as u64 {
            match rx.recv().await {
                Some(LinkEvent::Message(m)) => got += m.len() as u64,
                other => panic!("bare link: {other:?} after {got} bytes"),
            }
        }
        got
    })
    .await;
    let elapsed = start.elapsed();
    let _ = bounded("the sender ends", WAIT, sender).await;
    (got, elapsed, cpu_secs("self") - cpu0)
}

/// The bare-link rates the engine's figure is compared with, in MB/s.
pub struct Ceilings {
    /// Figure 1b, raw messages, `Link` to `Link`.
    pub bare_raw: f64,
    /// Figure 1c, the peer wire over a bare link, `send()`.
    pub bare_wire: f64,
}

/// Figures 1b to 1e, printed and added to `rows`; `udp` is figure 1.
pub async fn run(sizes: &Sizes, udp: f64, rows: &mut Vec<Row>) -> Ceilings {
    // ---- 1b/1c. the library's ceiling: bare links in this process
    let (a, b, wall) = bounded("a bare link pair", WAIT, bare_pair()).await;
    println!();
    println!(
        "[1b] Bare Link -> Link (webrtc 0.21.1, both ends in this process, signaling by \
         channels), {:.0} MiB of {} KiB messages",
        mib(sizes.bare_bytes as u64),
        a.remote_max_message_size() / 1024
    );
    println!(
        "    connect: {:.0} ms wall; offerer {}; answerer {}",
        ms(wall),
        timings(a.connect_timings()),
        timings(b.connect_timings())
    );
    let (got, elapsed, cpu) = raw_transfer(Arc::clone(&a), Arc::clone(&b), sizes.bare_bytes).await;
    let bare_raw = mbps(got, elapsed);
    println!(
        "    raw messages: {bare_raw:.1} MB/s ({:.2} s), CPU {cpu:.2} s ({:.1} ms/MiB)",
        elapsed.as_secs_f64(),
        cpu * 1e3 / mib(got)
    );
    rows.push(row(
        "1b. bare Link->Link (library ceiling)",
        format!("{bare_raw:.0} MB/s = {:.2} x UDP", bare_raw / udp),
        "(reference)",
        None,
    ));

    // 1c: the peer wire over a bare link, pieces in memory.
    let data = Rng::new(0xb0b).bytes(sizes.bare_bytes);
    let data = Bytes::from(data);
    let mut pieces = HashMap::new();
    let mut wanted = Vec::new();
    for off in (0..data.len()).step_by(PIECE) {
        let p = data.slice(off..(off + PIECE).min(data.len()));
        let h = PieceHash::of(&p);
        wanted.push((h, p.len() as u32));
        pieces.insert(h, p);
    }
    let pieces = Arc::new(pieces);
    close_links(&[&a, &b]).await;
    drop((a, b, data));
    let mut bare_wire = 0.0;
    let mut bare_wire_engine_style = 0.0;
    for mode in [Sending::EngineStyle, Sending::Await] {
        // A fresh pair each: a peer wire says hello once per channel.
        let (a, b, _) = bounded("a bare link pair", WAIT, bare_pair()).await;
        let server = tokio::spawn(serve_from_memory(Arc::clone(&b), Arc::clone(&pieces), mode));
        let (cpu0, threads0, start) = (cpu_secs("self"), thread_cpu("self"), Instant::now());
        let got = bounded(
            "the bare wire transfer",
            WAIT,
            fetch_over(&a, &wanted, BARE_WIRE_IN_FLIGHT),
        )
        .await
        .expect("bare wire transfer");
        let elapsed = start.elapsed();
        let cpu = cpu_secs("self") - cpu0;
        let threads = thread_split(&threads0, &thread_cpu("self"));
        let rate = mbps(got, elapsed);
        close_links(&[&a, &b]).await;
        let (sent, refused) = bounded("the bare server ends", WAIT, server)
            .await
            .expect("server task");
        let how = match mode {
            Sending::EngineStyle => {
                bare_wire_engine_style = rate;
                "engine-style sending (writable, then try_send(frame.clone()))"
            }
            Sending::Await => {
                bare_wire = rate;
                "writable, then send(frame) (no clone)"
            }
        };
        println!(
            "[1c] Bare Link + WireSession, {how}: {} pieces of 256 KiB, verified, \
             {BARE_WIRE_IN_FLIGHT} in flight, served from memory: {rate:.1} MB/s ({:.2} s), \
             CPU {cpu:.2} s ({:.1} ms/MiB); server sent {sent} frames, try_send refused \
             {refused} times",
            wanted.len(),
            elapsed.as_secs_f64(),
            cpu * 1e3 / mib(got)
        );
        println!("     CPU by thread: {threads}");
    }
    rows.push(row(
        "1c. bare Link + WireSession, send()",
        format!("{bare_wire:.0} MB/s = {:.2} x UDP", bare_wire / udp),
        "(reference)",
        None,
    ));
    rows.push(row(
        "1c. same, engine-style try_send(clone)",
        format!(
            "{bare_wire_engine_style:.0} MB/s = {:.2} x UDP",
            bare_wire_engine_style / udp
        ),
        "(reference)",
        None,
    ));

    // 1d: what the engine adds per piece: SHA-256 and the store, alone.
    let start = Instant::now();
    for (hash, size) in &wanted {
        let p = &pieces[hash];
        assert_eq!(PieceHash::of(p), *hash);
        assert_eq!(p.len(), *size as usize);
    }
    let hashed = sizes.bare_bytes as u64;
    let sha_wall = start.elapsed();
    let sha = mbps(hashed, sha_wall);
    let store_dir = tempfile::tempdir().expect("store dir");
    let store = tuber_store::Store::open(
        store_dir.path().join("store"),
        tuber_store::Config::new(4 * hashed),
    )
    .await
    .expect("open a store");
    let owner = tuber_store::Owner::new("http://127.0.0.1/", "/bench");
    let (cpu0, start) = (cpu_secs("self"), Instant::now());
    for (hash, _) in &wanted {
        bounded(
            "a store put",
            WAIT,
            store.put(*hash, pieces[hash].to_vec(), owner.clone(), false),
        )
        .await
        .expect("store put");
    }
    let (put, put_cpu) = (mbps(hashed, start.elapsed()), cpu_secs("self") - cpu0);
    let (cpu0, start) = (cpu_secs("self"), Instant::now());
    for (hash, _) in &wanted {
        let got = bounded("a store get", WAIT, store.get(*hash))
            .await
            .expect("store get");
        assert!(got.is_some(), "the piece is stored");
    }
    let (get, get_cpu) = (mbps(hashed, start.elapsed()), cpu_secs("self") - cpu0);
    let per_mib = |cpu: f64| cpu * 1e3 / mib(hashed);
    // One thread: its wall time is its CPU time (finer than /proc's ticks).
    let sha_cpu = sha_wall.as_secs_f64();
    println!(
        "[1d] Per-piece costs alone, {} pieces of 256 KiB: SHA-256 {sha:.0} MB/s ({:.1} ms/MiB); \
         store put (verifies, sled write) {put:.0} MB/s ({:.1} ms/MiB); store get (verifies, \
         sled read + metadata write) {get:.0} MB/s ({:.1} ms/MiB)",
        wanted.len(),
        per_mib(sha_cpu),
        per_mib(put_cpu),
        per_mib(get_cpu)
    );
    rows.push(row(
        "1d. store put / get alone",
        format!("{put:.0} / {get:.0} MB/s"),
        "(reference)",
        None,
    ));
    drop(pieces);

    // 1e: the engine's shape without the engine: a bare link, the server
    // reading each piece from a store, the client storing each verified
    // piece into another.
    let mut store_rates = Vec::new();
    for inline in [true, false] {
        let (a, b, _) = bounded("a bare link pair", WAIT, bare_pair()).await;
        let sink_dir = tempfile::tempdir().expect("sink dir");
        let sink = tuber_store::Store::open(
            sink_dir.path().join("store"),
            tuber_store::Config::new(4 * hashed),
        )
        .await
        .expect("open the sink store");
        let server = tokio::spawn(serve_from_store(Arc::clone(&b), store.clone(), inline));
        let (cpu0, threads0, start) = (cpu_secs("self"), thread_cpu("self"), Instant::now());
        let got = bounded(
            "the store-to-store transfer",
            WAIT,
            fetch_into(&a, &wanted, BARE_WIRE_IN_FLIGHT, Some(&sink)),
        )
        .await
        .expect("store-to-store transfer");
        let elapsed = start.elapsed();
        let cpu = cpu_secs("self") - cpu0;
        let threads = thread_split(&threads0, &thread_cpu("self"));
        let rate = mbps(got, elapsed);
        close_links(&[&a, &b]).await;
        let _ = bounded("the store server ends", WAIT, server).await;
        let _ = bounded("the sink closes", WAIT, sink.shutdown()).await;
        let how = if inline {
            "reads awaited inline in the driver loop (as the engine's link task does)"
        } else {
            "reads as tasks, the driver keeps sending meanwhile"
        };
        println!(
            "[1e] Bare Link + WireSession + stores ({how}), send(): {rate:.1} MB/s ({:.2} s), \
             CPU {cpu:.2} s ({:.1} ms/MiB)",
            elapsed.as_secs_f64(),
            cpu * 1e3 / mib(got)
        );
        println!("     CPU by thread: {threads}");
        store_rates.push(rate);
    }
    let _ = bounded("the store closes", WAIT, store.shutdown()).await;
    drop(store_dir);
    rows.push(row(
        "1e. bare link + stores, inline / tasks",
        format!("{:.0} / {:.0} MB/s", store_rates[0], store_rates[1]),
        "(reference)",
        None,
    ));
    Ceilings {
        bare_raw,
        bare_wire,
    }
}
