//! Figure 1, raw loopback UDP: the ceiling the other figures are ratios of.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{mbps, mib, row, Row, Sizes, DATAGRAM, MIB, SOCKET_BUFFER};

struct UdpResult {
    sent: u64,
    received: u64,
    elapsed: Duration,
    granted: (usize, usize),
}

impl UdpResult {
    fn rate(&self) -> f64 {
        mbps(self.received * DATAGRAM as u64, self.elapsed)
    }

    fn loss(&self) -> f64 {
        100.0 * (1.0 - self.received as f64 / self.sent.max(1) as f64)
    }
}

fn udp_socket() -> socket2::Socket {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("UDP socket");
    s.set_recv_buffer_size(SOCKET_BUFFER).expect("SO_RCVBUF");
    s.set_send_buffer_size(SOCKET_BUFFER).expect("SO_SNDBUF");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    s.bind(&any.into()).expect("bind 127.0.0.1");
    s
}

/// Sends `total` bytes (or for `limit`) of 1200-byte datagrams from one
/// thread to another; with `window`, the sender keeps at most that many
/// datagrams unreceived (a lossless, flow-controlled ceiling).
fn udp_run(total: u64, limit: Duration, window: Option<u64>) -> UdpResult {
    let rx = udp_socket();
    // Linux reports twice the usable size.
    let granted = (
        rx.recv_buffer_size().unwrap_or(0) / 2,
        rx.send_buffer_size().unwrap_or(0) / 2,
    );
    let rx: std::net::UdpSocket = rx.into();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let to = rx.local_addr().expect("receiver addr");
    let tx: std::net::UdpSocket = udp_socket().into();
    tx.connect(to).expect("connect");

    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let receiver = {
        let (received, done) = (Arc::clone(&received), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut last = start;
            loop {
                match rx.recv(&mut buf) {
                    Ok(_) => {
                        received.fetch_add(1, Ordering::Release);
                        last = Instant::now();
                    }
                    Err(_) if done.load(Ordering::Acquire) => break,
                    Err(_) => {}
                }
            }
            last
        })
    };
    let mut datagram = [0u8; DATAGRAM];
    let mut sent = 0u64;
    let packets = total / DATAGRAM as u64;
    while sent < packets {
        if sent.is_multiple_of(256) && start.elapsed() >= limit {
            break;
        }
        if let Some(w) = window {
            while sent - received.load(Ordering::Acquire) >= w {
                std::hint::spin_loop();
            }
        }
        datagram[..8].copy_from_slice(&sent.to_le_bytes());
        match tx.send(&datagram) {
            Ok(_) => sent += 1,
            // ENOBUFS / EAGAIN: the datagram was not sent; try again.
            Err(_) => std::thread::yield_now(),
        }
    }
    done.store(true, Ordering::Release);
    let last = receiver.join().expect("receiver thread");
    UdpResult {
        sent,
        received: received.load(Ordering::Acquire),
        elapsed: last.saturating_duration_since(start),
        granted,
    }
}

/// Figure 1, printed and added to `rows`: the UDP reference in MB/s.
pub async fn run(sizes: &Sizes, rows: &mut Vec<Row>) -> f64 {
    // ---- 1. raw UDP
    let udp_bytes = sizes.udp_bytes;
    let udp_time = sizes.udp_time;
    let (blast, windowed) = tokio::task::spawn_blocking(move || {
        let blast = udp_run(udp_bytes, udp_time, None);
        // At most 2 MiB unreceived: under the 4 MiB receive buffer.
        let windowed = udp_run(udp_bytes, udp_time, Some((2 * MIB / DATAGRAM) as u64));
        (blast, windowed)
    })
    .await
    .expect("UDP threads");
    // The reference: the better of the two received rates (the blast
    // loses datagrams once the receiver falls behind; the window does not).
    let udp = blast.rate().max(windowed.rate());
    println!();
    println!(
        "[1] Raw loopback UDP, {DATAGRAM}-byte datagrams, one sender thread -> one receiver \
         thread, SO_RCVBUF/SO_SNDBUF 4 MiB asked (granted {} / {} bytes)",
        blast.granted.0, blast.granted.1
    );
    println!(
        "    blast:    sent {:.1} MiB in {:.2} s, received {:.1} MiB: {:.1} MB/s received, \
         loss {:.2} %",
        mib(blast.sent * DATAGRAM as u64),
        blast.elapsed.as_secs_f64(),
        mib(blast.received * DATAGRAM as u64),
        blast.rate(),
        blast.loss()
    );
    println!(
        "    windowed (<= 2 MiB unreceived): {:.1} MB/s received, loss {:.2} %",
        windowed.rate(),
        windowed.loss()
    );
    println!("    UDP reference for the ratios below: the better of the two, {udp:.1} MB/s");
    rows.push(row(
        "1. UDP loopback, 1200 B datagrams",
        format!(
            "{udp:.0} MB/s (blast {:.0}, loss {:.1} %; windowed {:.0}, loss {:.1} %)",
            blast.rate(),
            blast.loss(),
            windowed.rate(),
            windowed.loss()
        ),
        "(reference)",
        None,
    ));
    udp
}
