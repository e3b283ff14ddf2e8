//! The cases of the shared vector file, as Rust values. `vectors.rs` turns
//! them into `docs/protocol-vectors.json` and checks the file against them.

use tuber_proto::limits::*;
use tuber_proto::signal::{
    self, BadPiece, Capacity, IceCandidate, PieceRange, Provider, Signature, TransferReport,
    TrustProof,
};
use tuber_proto::wire::WireErrorCode;
use tuber_proto::*;

pub fn id(byte: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *x = byte.wrapping_add(i as u8);
    }
    b
}

pub fn valid_frames() -> Vec<(&'static str, Vec<u8>)> {
    let payload: Vec<u8> = (0..32u8).collect();
    let frames = [
        (
            "hello default",
            Frame::Hello {
                version: 2,
                max_frame: DEFAULT_MAX_FRAME,
            },
        ),
        (
            "hello large",
            Frame::Hello {
                version: 2,
                max_frame: LARGE_MAX_FRAME,
            },
        ),
        (
            "request whole piece",
            Frame::Request {
                id: 1,
                piece: PieceHash::from_bytes(id(0x10)),
                offset: 0,
                length: 262_144,
            },
        ),
        (
            "request tail of largest piece",
            Frame::Request {
                id: u32::MAX,
                piece: PieceHash::of(b"tuber"),
                offset: MAX_PIECE_SIZE - 1,
                length: 1,
            },
        ),
        (
            "data",
            Frame::Data {
                id: 1,
                offset: 65_527,
                bytes: &payload,
            },
        ),
        ("missing", Frame::Missing { id: 42 }),
        (
            "busy",
            Frame::Busy {
                id: 42,
                retry_after_ms: 1500,
            },
        ),
        ("cancel", Frame::Cancel { id: 0 }),
        (
            "error",
            Frame::Error {
                code: WireErrorCode::Protocol,
                reason: "data for no request",
            },
        ),
        (
            "error unknown code, utf-8",
            Frame::Error {
                code: WireErrorCode::Other(999),
                reason: "é✓",
            },
        ),
        (
            "error reason keeps a leading byte-order mark",
            Frame::Error {
                code: WireErrorCode::Malformed,
                reason: "\u{feff}bom",
            },
        ),
        (
            "error empty reason",
            Frame::Error {
                code: WireErrorCode::Malformed,
                reason: "",
            },
        ),
    ];
    frames.iter().map(|(n, f)| (*n, f.encode())).collect()
}

pub fn invalid_frames() -> Vec<(&'static str, String, usize)> {
    let hash = "ab".repeat(32);
    vec![
        ("empty", String::new(), 65_536),
        ("unknown type 0x07", "07".into(), 65_536),
        ("extension type 0x80", "80000000".into(), 65_536),
        ("hello short", "000001".into(), 65_536),
        (
            "hello max_frame below 64 KiB",
            "00000100008000".into(),
            65_536,
        ),
        ("request short", format!("0100000001{hash}000000"), 65_536),
        (
            "request trailing byte",
            format!("0100000001{hash}000000000000000100"),
            65_536,
        ),
        (
            "request zero length",
            format!("0100000001{hash}0000000000000000"),
            65_536,
        ),
        (
            "request past 4 MiB",
            format!("0100000001{hash}003ffff000000011"),
            65_536,
        ),
        ("data without payload", "020000000100000000".into(), 65_536),
        ("data past 4 MiB", "0200000001003fffff0102".into(), 65_536),
        ("missing long", "030000000100".into(), 65_536),
        ("busy short", "0400000001".into(), 65_536),
        ("cancel short", "05000001".into(), 65_536),
        ("error short", "0600".into(), 65_536),
        ("error bad utf-8", "060001ff".into(), 65_536),
        ("frame over the limit", format!("05{}", "00".repeat(16)), 16),
    ]
}

pub fn signal_vectors() -> Vec<(&'static str, &'static str, String)> {
    let a = PeerId::from_bytes(id(0xa0));
    let b = PeerId::from_bytes(id(0xb0));
    let p1 = PieceHash::of(b"piece one");
    let p2 = PieceHash::of(b"piece two");
    let m = ManifestId::from_bytes(id(0x33));
    let c2h = |n, m: ClientToHub| (n, "client_to_hub", signal::encode(&m).expect(n));
    let h2c = |n, m: HubToClient| (n, "hub_to_client", signal::encode(&m).expect(n));
    vec![
        c2h(
            "hello browser",
            ClientToHub::Hello {
                version: 2,
                role: Role::Browser,
                proof: None,
                invite: None,
                capacity: None,
                agent: "tuber-web/0.1".into(),
            },
        ),
        c2h(
            "hello permanent with invite",
            ClientToHub::Hello {
                version: 2,
                role: Role::Permanent,
                proof: Some(TrustProof {
                    public_key: a,
                    origin: "https://video.example.org".into(),
                    signature: Signature([0x5a; 64]),
                }),
                invite: Some("inv_3kT9".into()),
                capacity: Some(Capacity {
                    disk_bytes: 50_000_000_000,
                    upload_bps: 2_000_000,
                }),
                agent: "tuber-peer/0.1".into(),
            },
        ),
        c2h(
            "offer",
            ClientToHub::Offer {
                to: b,
                conn: 7,
                sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(),
            },
        ),
        c2h(
            "answer",
            ClientToHub::Answer {
                to: b,
                conn: 7,
                sdp: "v=0\r\n".into(),
            },
        ),
        c2h(
            "candidate",
            ClientToHub::Candidate {
                to: b,
                conn: 7,
                candidate: Some(IceCandidate {
                    candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                }),
            },
        ),
        c2h(
            "end of candidates",
            ClientToHub::Candidate {
                to: b,
                conn: 7,
                candidate: None,
            },
        ),
        c2h(
            "have",
            ClientToHub::Have {
                pieces: vec![p1, p2],
            },
        ),
        c2h("lost", ClientToHub::Lost { pieces: vec![p2] }),
        c2h(
            "want",
            ClientToHub::Want {
                req: 3,
                pieces: vec![p1, p2],
            },
        ),
        c2h(
            "report",
            ClientToHub::Report {
                transfers: vec![TransferReport {
                    peer: b,
                    up: 0,
                    down: 9_007_199_254_740_991,
                }],
                bad: vec![BadPiece { peer: b, piece: p1 }],
            },
        ),
        c2h("ping", ClientToHub::Ping { nonce: 1 }),
        c2h(
            "pong",
            ClientToHub::Pong {
                nonce: 4_294_967_295,
            },
        ),
        c2h(
            "error",
            ClientToHub::Error {
                code: ErrorCode::BadMessage,
                message: "unknown \"type\" ✓".into(),
            },
        ),
        h2c(
            "challenge",
            HubToClient::Challenge {
                version: 2,
                nonce: Nonce::from_bytes(id(0x77)),
            },
        ),
        h2c(
            "welcome",
            HubToClient::Welcome {
                peer_id: a,
                role: Role::Permanent,
                trusted: true,
                swarm_id: "video.example.org".into(),
                ping_interval_ms: 15_000,
                ice_servers: vec![],
            },
        ),
        h2c(
            "welcome with TURN credentials",
            HubToClient::Welcome {
                peer_id: a,
                role: Role::Browser,
                trusted: false,
                swarm_id: "video.example.org".into(),
                ping_interval_ms: 15_000,
                ice_servers: vec![IceServer {
                    urls: vec![
                        "turn:turn.example.org:3478?transport=udp".into(),
                        "turn:turn.example.org:443?transport=tcp".into(),
                    ],
                    username: Some("1767229200:video.example.org".into()),
                    credential: Some("I6d/36oR0uaff635vsUibHt7+ss=".into()),
                }],
            },
        ),
        h2c(
            "relayed offer",
            HubToClient::Offer {
                from: a,
                conn: 7,
                sdp: "v=0\r\n".into(),
            },
        ),
        h2c(
            "relayed answer",
            HubToClient::Answer {
                from: a,
                conn: 7,
                sdp: "v=0\r\n".into(),
            },
        ),
        h2c(
            "relayed candidate",
            HubToClient::Candidate {
                from: a,
                conn: 7,
                candidate: None,
            },
        ),
        h2c(
            "providers",
            HubToClient::Providers {
                req: 3,
                providers: vec![
                    Provider {
                        peer: a,
                        role: Role::Permanent,
                        trusted: true,
                        pieces: vec![0, 1],
                    },
                    Provider {
                        peer: b,
                        role: Role::Browser,
                        trusted: false,
                        pieces: vec![1],
                    },
                ],
            },
        ),
        h2c(
            "assign",
            HubToClient::Assign {
                partition: 12,
                resource: "/media/intro.mp4".into(),
                manifest: m,
                ranges: vec![
                    PieceRange { start: 0, end: 16 },
                    PieceRange { start: 40, end: 41 },
                ],
            },
        ),
        h2c(
            "unassign",
            HubToClient::Unassign {
                partition: 12,
                resource: "/media/intro.mp4".into(),
                manifest: m,
                ranges: vec![PieceRange { start: 0, end: 16 }],
            },
        ),
        h2c("ping", HubToClient::Ping { nonce: 99 }),
        h2c("pong", HubToClient::Pong { nonce: 99 }),
        h2c(
            "error",
            HubToClient::Error {
                code: ErrorCode::Banned,
                message: "banned for bad pieces".into(),
            },
        ),
    ]
}

/// Invalid signaling texts: (name, direction, text, pad_to, expected code).
/// `pad_to` > 0 means: append spaces to the text until it is that many bytes.
pub fn invalid_signals() -> Vec<(&'static str, &'static str, String, usize, &'static str)> {
    let h = "ab".repeat(32);
    let c = "client_to_hub";
    vec![
        ("not json", c, "{".into(), 0, "bad_message"),
        ("not an object", c, "[]".into(), 0, "bad_message"),
        (
            "array in place of an object",
            c,
            r#"["ping",1]"#.into(),
            0,
            "bad_message",
        ),
        (
            "agent of 65 characters but 130 bytes",
            c,
            format!(
                r#"{{"type":"hello","version":1,"role":"browser","agent":"{}"}}"#,
                "é".repeat(65)
            ),
            0,
            "bad_message",
        ),
        (
            "proof without origin",
            c,
            format!(
                r#"{{"type":"hello","version":2,"role":"permanent","proof":{{"public_key":"{h}","signature":"{}"}}}}"#,
                "5a".repeat(64)
            ),
            0,
            "bad_message",
        ),
        (
            "proof origin not serialised (trailing slash, default port)",
            c,
            format!(
                r#"{{"type":"hello","version":2,"role":"permanent","proof":{{"public_key":"{h}","origin":"https://video.example.org:443/","signature":"{}"}}}}"#,
                "5a".repeat(64)
            ),
            0,
            "bad_message",
        ),
        (
            "unknown type",
            c,
            r#"{"type":"teleport"}"#.into(),
            0,
            "bad_message",
        ),
        (
            "missing field",
            c,
            r#"{"type":"want","req":1}"#.into(),
            0,
            "bad_message",
        ),
        (
            "uppercase hash",
            c,
            format!(r#"{{"type":"have","pieces":["{}"]}}"#, h.to_uppercase()),
            0,
            "bad_message",
        ),
        (
            "short hash",
            c,
            r#"{"type":"have","pieces":["abcd"]}"#.into(),
            0,
            "bad_message",
        ),
        (
            "negative nonce",
            c,
            r#"{"type":"ping","nonce":-1}"#.into(),
            0,
            "bad_message",
        ),
        (
            "nonce over u32",
            c,
            r#"{"type":"ping","nonce":4294967296}"#.into(),
            0,
            "bad_message",
        ),
        (
            "report bytes beyond 2^53-1",
            c,
            format!(
                r#"{{"type":"report","transfers":[{{"peer":"{h}","up":9007199254740992,"down":0}}],"bad":[]}}"#
            ),
            0,
            "bad_message",
        ),
        (
            "agent too long",
            c,
            format!(
                r#"{{"type":"hello","version":1,"role":"browser","agent":"{}"}}"#,
                "a".repeat(MAX_AGENT_LEN + 1)
            ),
            0,
            "bad_message",
        ),
        (
            "unknown role",
            c,
            r#"{"type":"hello","version":1,"role":"robot","agent":""}"#.into(),
            0,
            "bad_message",
        ),
        (
            "control character in sdp",
            c,
            format!(r#"{{"type":"offer","to":"{h}","conn":1,"sdp":"v=0\u0000"}}"#),
            0,
            "bad_message",
        ),
        (
            "frame over 64 KiB",
            c,
            r#"{"type":"ping","nonce":1}"#.into(),
            MAX_SIGNAL_FRAME + 1,
            "too_large",
        ),
        (
            "empty piece range",
            "hub_to_client",
            format!(
                r#"{{"type":"assign","partition":1,"resource":"/a","manifest":"{h}","ranges":[{{"start":5,"end":5}}]}}"#
            ),
            0,
            "bad_message",
        ),
        (
            "relative resource",
            "hub_to_client",
            format!(
                r#"{{"type":"unassign","partition":1,"resource":"a","manifest":"{h}","ranges":[]}}"#
            ),
            0,
            "bad_message",
        ),
        (
            "welcome with an http ICE server",
            "hub_to_client",
            format!(
                r#"{{"type":"welcome","peer_id":"{h}","role":"browser","trusted":false,"swarm_id":"s","ping_interval_ms":1000,"ice_servers":[{{"urls":["http://turn.example.org"]}}]}}"#
            ),
            0,
            "bad_message",
        ),
        (
            "welcome with an ICE server without URLs",
            "hub_to_client",
            format!(
                r#"{{"type":"welcome","peer_id":"{h}","role":"browser","trusted":false,"swarm_id":"s","ping_interval_ms":1000,"ice_servers":[{{"urls":[]}}]}}"#
            ),
            0,
            "bad_message",
        ),
    ]
}

pub fn manifests() -> Vec<(&'static str, Manifest)> {
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        (
            "three pieces, short tail",
            Manifest::build(
                "/media/clip.webm?v=2",
                "video/webm",
                "\"5f3a-1c2\"",
                16_384,
                &data,
            ),
        ),
        (
            "empty resource",
            Manifest::build(
                "/empty.bin",
                "application/octet-stream",
                "sha256:e3b0",
                262_144,
                &[],
            ),
        ),
        (
            "non-ascii path",
            Manifest::build("/vidéos/été.mp4", "video/mp4", "W/\"x\"", 262_144, b"tiny"),
        ),
    ]
}

pub fn descriptor() -> SwarmDescriptor {
    SwarmDescriptor {
        version: 2,
        swarm_id: "video.example.org".into(),
        name: "Example Video".into(),
        origin: "https://video.example.org/".into(),
        signaling: "wss://video.example.org/.tuber/ws".into(),
        ice_servers: vec![IceServer {
            urls: vec!["stun:video.example.org:3478".into()],
            username: None,
            credential: None,
        }],
        piece_size: 262_144,
        manifest: "https://video.example.org/.tuber/manifest".into(),
        pieces: "https://video.example.org/.tuber/piece/".into(),
        register: "https://video.example.org/.tuber/register".into(),
    }
}

/// Invalid manifests: (name, text, error kind).
pub fn invalid_manifests() -> Vec<(&'static str, String, &'static str)> {
    let h = PieceHash::of(b"x").to_hex();
    let m = |body: &str| {
        format!(r#"{{"path":"/a","length":10,"content_type":"a/b","version":"1",{body}}}"#)
    };
    vec![
        ("array", "[]".into(), "not_an_object"),
        ("not json", "{".into(), "malformed"),
        ("uppercase hash", m(&format!(r#""piece_size":16384,"pieces":["{}"]"#, h.to_uppercase())), "malformed"),
        ("unknown field", m(&format!(r#""piece_size":16384,"pieces":["{h}"],"extra":1"#)), "malformed"),
        ("missing pieces", m(r#""piece_size":16384"#), "malformed"),
        ("piece count does not match length", m(&format!(r#""piece_size":16384,"pieces":["{h}","{h}"]"#)), "invalid"),
        ("piece size not a power of two", m(&format!(r#""piece_size":20000,"pieces":["{h}"]"#)), "invalid"),
        ("piece size below 16 KiB", m(&format!(r#""piece_size":8192,"pieces":["{h}"]"#)), "invalid"),
        (
            "relative path",
            r#"{"path":"a","length":0,"content_type":"a/b","version":"1","piece_size":16384,"pieces":[]}"#.into(),
            "invalid",
        ),
    ]
}

/// Invalid descriptors: (name, text, error kind).
pub fn invalid_descriptors() -> Vec<(&'static str, String, &'static str)> {
    let good = String::from_utf8(descriptor().encode()).expect("utf-8");
    vec![
        ("array", "[1]".into(), "not_an_object"),
        (
            "newer version with other fields",
            r#"{"version":3,"swarm":"x"}"#.into(),
            "unsupported_version",
        ),
        (
            "missing signaling",
            good.replace(r#""signaling":"wss://video.example.org/.tuber/ws","#, ""),
            "malformed",
        ),
        (
            "signaling over http",
            good.replace(
                "wss://video.example.org/.tuber/ws",
                "http://video.example.org/ws",
            ),
            "invalid",
        ),
        (
            "swarm id with a slash",
            good.replace(r#""swarm_id":"video.example.org""#, r#""swarm_id":"a/b""#),
            "invalid",
        ),
        (
            "piece size not a power of two",
            good.replace("262144", "300000"),
            "invalid",
        ),
    ]
}
