//! A real STUN server on 127.0.0.1 answers a binding request with the
//! client's address, and keeps answering after garbage.

use std::time::Duration;

use tokio::net::UdpSocket;
use tuber_hub::stun;

fn request(tid: [u8; 12]) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00];
    m.extend_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
    m.extend_from_slice(&tid);
    m
}

#[tokio::test]
async fn binding_request_is_answered_with_the_clients_address() {
    let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind server");
    let server_addr = server.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(stun::serve(server, async {
        let _ = stop_rx.await;
    }));

    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    let me = client.local_addr().expect("addr");
    // Garbage first: it must be dropped without an answer and without
    // stopping the server.
    for junk in [&b"hello"[..], &[0u8; 20][..], &[0xffu8; 1400][..]] {
        client.send_to(junk, server_addr).await.expect("send junk");
    }
    let mut buf = [0u8; 1500];
    for round in 0..3u8 {
        let tid = [round; 12];
        client
            .send_to(&request(tid), server_addr)
            .await
            .expect("send");
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("answered within 5 s")
            .expect("recv");
        assert_eq!(from, server_addr);
        assert_eq!(stun::parse_binding_success(&buf[..n]), Some((tid, me)));
    }

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops on shutdown")
        .expect("server task");
}
