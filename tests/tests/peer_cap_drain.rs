//! A remote cannot drain a donor's upload cap without receiving the bytes
//! (#14 item 5). The cap counts bytes sent: a request for a piece the donor
//! lacks costs nothing, and an answer cancelled before it went out is given
//! back, however large.
//!
//! Peer A (a real engine, capped at 1 MB/s) holds a 4 MiB resource. Over a
//! real WebRTC link, an attacker (a raw peer speaking the wire by hand)
//! floods A for the whole window: every piece of the resource requested and
//! cancelled at once, round after round, and requests for pieces A never
//! had. Meanwhile an honest raw requester on its own link fetches the
//! resource from A. Before, the cap was charged with each request's length
//! before the piece was looked up and never refunded: the honest requester
//! got `busy` nearly always. Now it gets the cap's rate, and A's upload over
//! the window stays within the cap.

use std::time::{Duration, Instant};

use tuber_peer::wire_session::Event;
use tuber_peer::Settings;
use tuber_proto::{PeerId, PieceHash};
use tuber_tests::swarm::{
    init_tracing, wait_provider, Hub, Origin, Peer, PeerOptions, RawPeer, RawWire,
};

const CAP: u64 = 1_000_000;
const R: &str = "/files/capped-4MiB.bin";
const LEN: usize = 4 * 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_cancelled_or_for_missing_pieces_do_not_spend_the_cap() {
    init_tracing();
    let origin = Origin::start(&[(R, LEN, 0xd7a1_0001)]).await;
    let hub = Hub::start(&origin.url(), |_| {}).await;
    let url = hub.url();
    let manifest = hub.manifest(R).await;
    let pieces: Vec<(PieceHash, u32)> = (0..manifest.pieces.len())
        .map(|i| {
            let (_, size) = manifest.piece_range(i).expect("piece in range");
            (manifest.pieces[i], size)
        })
        .collect();

    let a = Peer::start_with(PeerOptions {
        settings: Settings {
            upload_bps: CAP,
            ..Settings::default()
        },
        ..PeerOptions::default()
    })
    .await;
    a.join(&url, None).await;
    a.wait_joined(&url, WAIT).await;
    let s = a.fetch(&url, R, Duration::from_secs(60)).await;
    assert_eq!(s.failed, 0, "A seeds {R}: {s:?}");
    wait_provider(&url, &a.id(), &manifest.pieces, WAIT).await;
    let a_id: PeerId = a.id().parse().expect("peer id");

    let mut attacker = RawPeer::join(&url).await;
    let mut honest = RawPeer::join(&url).await;
    assert!(!attacker.want(manifest.pieces.clone()).await.is_empty());
    assert!(!honest.want(manifest.pieces.clone()).await.is_empty());
    let mut evil = RawWire::new(attacker.dial(a_id).await.expect("attacker's link"));
    let mut good = RawWire::new(honest.dial(a_id).await.expect("honest link"));
    // The caps' buckets refill while the links come up: start from a full one.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let up0 = a.engine().status().await.total.up;
    let start = Instant::now();
    let honest_pieces = pieces.clone();
    let flood = tokio::spawn(async move {
        let mut rounds = 0u64;
        let mut junk = 0u64;
        while start.elapsed() < WINDOW {
            let now = Instant::now();
            for &(piece, size) in &pieces {
                if let Ok(id) = evil.session().request(now, piece, 0, size, false) {
                    evil.session().cancel(now, id);
                }
            }
            for _ in 0..8 {
                junk += 1;
                let missing = PieceHash::of(&junk.to_be_bytes());
                let _ = evil.session().request(now, missing, 0, 1024 * 1024, false);
            }
            evil.pump(Duration::from_millis(10)).await;
            // Missing answers end those requests; keep the slots free.
            evil.take_events();
            rounds += 1;
        }
        let received = evil.data_bytes;
        evil.close().await;
        (rounds, junk, received)
    });

    let (mut served, mut busy, mut next) = (0u64, 0u64, 0usize);
    let mut open = 0usize;
    while start.elapsed() < WINDOW {
        while open < 4 {
            let (piece, size) = honest_pieces[next % honest_pieces.len()];
            next += 1;
            good.session()
                .request(Instant::now(), piece, 0, size, true)
                .expect("honest request");
            open += 1;
        }
        good.pump(Duration::from_millis(20)).await;
        for e in good.take_events() {
            match e {
                Event::Completed { bytes, .. } => {
                    served += bytes.len() as u64;
                    open -= 1;
                }
                Event::Busy { retry_after, .. } => {
                    busy += 1;
                    open -= 1;
                    let wait = retry_after.unwrap_or(Duration::from_millis(50));
                    good.pump(wait.min(Duration::from_millis(200))).await;
                }
                Event::Missing { .. } | Event::TimedOut { .. } | Event::Corrupt { .. } => {
                    panic!("honest request failed: {e:?}")
                }
                _ => {}
            }
        }
    }
    let elapsed = start.elapsed();
    let up1 = a.engine().status().await.total.up;
    let (rounds, junk, attacker_received) = tokio::time::timeout(WAIT, flood)
        .await
        .expect("the flood ends")
        .expect("flood task");
    let honest_rate = served as f64 / elapsed.as_secs_f64();
    let a_rate = (up1 - up0) as f64 / elapsed.as_secs_f64();
    println!(
        "over {elapsed:.2?}: the attacker sent {rounds} rounds ({} pieces requested and \
         cancelled each, {junk} requests for missing pieces in all) and received \
         {attacker_received} B; the honest requester got {served} B = {honest_rate:.0} B/s \
         ({:.2} of the {CAP} B/s cap) with {busy} busy answers; A sent {a_rate:.0} B/s",
        manifest.pieces.len(),
        honest_rate / CAP as f64
    );
    assert!(rounds >= 20, "the flood ran: {rounds} rounds");
    // The cap still holds: one bucket (1 s) plus the window at the rate,
    // plus what the frames' headers and one oversize answer may add.
    let ceiling = CAP as f64 * (elapsed.as_secs_f64() + 1.0) + 1.2 * 1024.0 * 1024.0;
    assert!(
        (up1 - up0) as f64 <= ceiling,
        "A sent {} B in {elapsed:.2?}, over the cap's {ceiling:.0}",
        up1 - up0
    );
    // What the attacker did not receive was not charged: the honest
    // requester gets (nearly) the rest of the cap.
    let fair = (CAP as f64 * elapsed.as_secs_f64() - attacker_received as f64).max(0.0);
    assert!(
        served as f64 >= 0.7 * fair,
        "the honest requester got {served} B of the {fair:.0} B the attacker left \
         ({busy} busy answers): the flood spent the cap without receiving the bytes"
    );
    good.close().await;
}
