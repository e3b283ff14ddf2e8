//! Property tests: every valid value round-trips, and no input makes a
//! decoder panic (random bytes, and valid encodings with bytes flipped).

use proptest::prelude::*;
use tuber_proto::limits::*;
use tuber_proto::signal::{
    self, BadPiece, Capacity, IceCandidate, PieceRange, Provider, Signature, TransferReport,
    TrustProof,
};
use tuber_proto::wire::WireErrorCode;
use tuber_proto::*;

fn id32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}
fn peer() -> impl Strategy<Value = PeerId> {
    id32().prop_map(PeerId::from_bytes)
}
fn piece() -> impl Strategy<Value = PieceHash> {
    id32().prop_map(PieceHash::from_bytes)
}
fn hashes() -> impl Strategy<Value = Vec<PieceHash>> {
    prop::collection::vec(piece(), 0..20)
}
/// Printable text, including non-ASCII and JSON's special characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[ -~éü✓\"\\\\/]{{0,{max}}}")).expect("regex")
}
fn json_int() -> impl Strategy<Value = u64> {
    0..=MAX_JSON_INT
}
fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Browser), Just(Role::Permanent)]
}
fn sdp() -> impl Strategy<Value = String> {
    prop::string::string_regex("(v=0\r\n)?[a-z=0-9 .\r\n]{0,200}").expect("regex")
}
fn candidate() -> impl Strategy<Value = Option<IceCandidate>> {
    prop::option::of(
        (
            text(100),
            prop::option::of(text(8)),
            prop::option::of(any::<u16>()),
        )
            .prop_map(|(candidate, sdp_mid, sdp_mline_index)| IceCandidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
            }),
    )
}
fn code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadMessage),
        Just(ErrorCode::TooLarge),
        Just(ErrorCode::UnsupportedVersion),
        Just(ErrorCode::Unauthorized),
        Just(ErrorCode::InviteInvalid),
        Just(ErrorCode::Banned),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::UnknownPeer),
        Just(ErrorCode::Internal),
    ]
}
fn ranges() -> impl Strategy<Value = Vec<PieceRange>> {
    prop::collection::vec(
        (0..MAX_PIECES as u32 - 1, 1..1000u32).prop_map(|(start, n)| PieceRange {
            start,
            end: (start + n).min(MAX_PIECES as u32),
        }),
        0..10,
    )
}
fn resource() -> impl Strategy<Value = String> {
    text(60).prop_map(|t| format!("/{t}"))
}

fn client_to_hub() -> impl Strategy<Value = ClientToHub> {
    prop_oneof![
        (
            role(),
            prop::option::of((peer(), any::<[u8; 32]>(), any::<[u8; 32]>())),
            prop::option::of(text(40)),
            prop::option::of((json_int(), json_int())),
            text(40),
        )
            .prop_map(|(role, proof, invite, cap, agent)| ClientToHub::Hello {
                version: PROTOCOL_VERSION,
                role,
                proof: proof.map(|(public_key, a, b)| {
                    let mut sig = [0u8; 64];
                    sig[..32].copy_from_slice(&a);
                    sig[32..].copy_from_slice(&b);
                    TrustProof {
                        public_key,
                        origin: "https://video.example.org:8443".into(),
                        signature: Signature(sig),
                    }
                }),
                invite,
                capacity: cap.map(|(disk_bytes, upload_bps)| Capacity {
                    disk_bytes,
                    upload_bps
                }),
                agent,
            }),
        (peer(), any::<u32>(), sdp()).prop_map(|(to, conn, sdp)| ClientToHub::Offer {
            to,
            conn,
            sdp
        }),
        (peer(), any::<u32>(), sdp()).prop_map(|(to, conn, sdp)| ClientToHub::Answer {
            to,
            conn,
            sdp
        }),
        (peer(), any::<u32>(), candidate()).prop_map(|(to, conn, candidate)| {
            ClientToHub::Candidate {
                to,
                conn,
                candidate,
            }
        }),
        hashes().prop_map(|pieces| ClientToHub::Have { pieces }),
        hashes().prop_map(|pieces| ClientToHub::Lost { pieces }),
        (any::<u32>(), hashes()).prop_map(|(req, pieces)| ClientToHub::Want { req, pieces }),
        (
            prop::collection::vec((peer(), json_int(), json_int()), 0..8),
            prop::collection::vec((peer(), piece()), 0..8)
        )
            .prop_map(|(t, b)| ClientToHub::Report {
                transfers: t
                    .into_iter()
                    .map(|(peer, up, down)| TransferReport { peer, up, down })
                    .collect(),
                bad: b
                    .into_iter()
                    .map(|(peer, piece)| BadPiece { peer, piece })
                    .collect(),
            }),
        any::<u32>().prop_map(|nonce| ClientToHub::Ping { nonce }),
        any::<u32>().prop_map(|nonce| ClientToHub::Pong { nonce }),
        (code(), text(200)).prop_map(|(code, message)| ClientToHub::Error { code, message }),
    ]
}

fn hub_to_client() -> impl Strategy<Value = HubToClient> {
    prop_oneof![
        id32().prop_map(|n| HubToClient::Challenge {
            version: 2,
            nonce: Nonce::from_bytes(n)
        }),
        (
            peer(),
            role(),
            any::<bool>(),
            "[a-z0-9.-]{1,64}",
            any::<u32>()
        )
            .prop_map(|(peer_id, role, trusted, swarm_id, ping_interval_ms)| {
                HubToClient::Welcome {
                    peer_id,
                    role,
                    trusted,
                    swarm_id,
                    ping_interval_ms,
                    ice_servers: vec![],
                }
            }),
        (peer(), any::<u32>(), sdp()).prop_map(|(from, conn, sdp)| HubToClient::Offer {
            from,
            conn,
            sdp
        }),
        (peer(), any::<u32>(), sdp()).prop_map(|(from, conn, sdp)| HubToClient::Answer {
            from,
            conn,
            sdp
        }),
        (peer(), any::<u32>(), candidate()).prop_map(|(from, conn, candidate)| {
            HubToClient::Candidate {
                from,
                conn,
                candidate,
            }
        }),
        (
            any::<u32>(),
            prop::collection::vec(
                (
                    peer(),
                    role(),
                    any::<bool>(),
                    prop::collection::vec(0..MAX_HASHES_PER_MESSAGE as u32, 0..10)
                ),
                0..5
            )
        )
            .prop_map(|(req, p)| HubToClient::Providers {
                req,
                providers: p
                    .into_iter()
                    .map(|(peer, role, trusted, pieces)| Provider {
                        peer,
                        role,
                        trusted,
                        pieces
                    })
                    .collect(),
            }),
        (any::<u32>(), resource(), id32(), ranges()).prop_map(
            |(partition, resource, m, ranges)| {
                HubToClient::Assign {
                    partition,
                    resource,
                    manifest: ManifestId::from_bytes(m),
                    ranges,
                }
            }
        ),
        (any::<u32>(), resource(), id32(), ranges()).prop_map(
            |(partition, resource, m, ranges)| {
                HubToClient::Unassign {
                    partition,
                    resource,
                    manifest: ManifestId::from_bytes(m),
                    ranges,
                }
            }
        ),
        any::<u32>().prop_map(|nonce| HubToClient::Ping { nonce }),
        any::<u32>().prop_map(|nonce| HubToClient::Pong { nonce }),
        (code(), text(200)).prop_map(|(code, message)| HubToClient::Error { code, message }),
    ]
}

/// A valid frame, owning its variable tail.
#[derive(Debug, Clone)]
enum OwnedFrame {
    Fixed(Frame<'static>),
    Data {
        id: u32,
        offset: u32,
        bytes: Vec<u8>,
    },
    Error {
        code: u16,
        reason: String,
    },
}

impl OwnedFrame {
    fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Fixed(f) => f.clone(),
            OwnedFrame::Data { id, offset, bytes } => Frame::Data {
                id: *id,
                offset: *offset,
                bytes,
            },
            OwnedFrame::Error { code, reason } => Frame::Error {
                code: WireErrorCode::from_u16(*code),
                reason,
            },
        }
    }
}

fn frame() -> impl Strategy<Value = OwnedFrame> {
    prop_oneof![
        (any::<u16>(), DEFAULT_MAX_FRAME..=u32::MAX).prop_map(|(version, max_frame)| {
            OwnedFrame::Fixed(Frame::Hello { version, max_frame })
        }),
        (any::<u32>(), piece(), 0..MAX_PIECE_SIZE).prop_flat_map(|(id, piece, offset)| {
            (1..=MAX_PIECE_SIZE - offset).prop_map(move |length| {
                OwnedFrame::Fixed(Frame::Request {
                    id,
                    piece,
                    offset,
                    length,
                })
            })
        }),
        (
            any::<u32>(),
            0..MAX_PIECE_SIZE - 70_000,
            prop::collection::vec(any::<u8>(), 1..2000)
        )
            .prop_map(|(id, offset, bytes)| OwnedFrame::Data { id, offset, bytes }),
        any::<u32>().prop_map(|id| OwnedFrame::Fixed(Frame::Missing { id })),
        (any::<u32>(), any::<u32>())
            .prop_map(|(id, retry_after_ms)| OwnedFrame::Fixed(Frame::Busy { id, retry_after_ms })),
        any::<u32>().prop_map(|id| OwnedFrame::Fixed(Frame::Cancel { id })),
        (any::<u16>(), "[ -~é]{0,80}")
            .prop_map(|(code, reason)| OwnedFrame::Error { code, reason }),
    ]
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (resource(), text(40), text(40), 14u32..=22, 0u64..5_000_000).prop_flat_map(
        |(path, content_type, version, shift, length)| {
            let piece_size = 1u32 << shift;
            let n = Manifest::piece_count_for(length, piece_size) as usize;
            prop::collection::vec(piece(), n).prop_map(move |pieces| Manifest {
                path: path.clone(),
                length,
                content_type: content_type.clone(),
                version: version.clone(),
                piece_size,
                pieces,
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn client_to_hub_round_trips(m in client_to_hub()) {
        let text = signal::encode(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(text.len() <= MAX_SIGNAL_FRAME);
        let back: ClientToHub = signal::decode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, m);
    }

    #[test]
    fn hub_to_client_round_trips(m in hub_to_client()) {
        let text = signal::encode(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: HubToClient = signal::decode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, m);
    }

    #[test]
    fn frames_round_trip(f in frame()) {
        let frame = f.frame();
        let bytes = frame.encode();
        prop_assert_eq!(bytes.len(), frame.encoded_len());
        let back = Frame::decode(&bytes, LARGE_MAX_FRAME as usize)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, frame);
    }

    #[test]
    fn manifests_round_trip_with_a_stable_id(m in manifest()) {
        let bytes = m.encode();
        let back = Manifest::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.id(), m.id());
        prop_assert_eq!(back, m);
    }

    #[test]
    fn frame_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), max in 0usize..400) {
        let _ = Frame::decode(&bytes, max);
    }

    #[test]
    fn frame_decoder_survives_mutations(f in frame(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let mut bytes = f.frame().encode();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        if let Ok(frame) = Frame::decode(&bytes, LARGE_MAX_FRAME as usize) {
            // Whatever decodes must re-encode to the same bytes: no two
            // spellings of one frame.
            prop_assert_eq!(frame.encode(), bytes);
        }
    }

    #[test]
    fn json_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = signal::decode::<ClientToHub>(&text);
        let _ = signal::decode::<HubToClient>(&text);
        let _ = Manifest::decode(&bytes);
        let _ = SwarmDescriptor::decode(&bytes);
    }

    #[test]
    fn json_decoders_survive_mutations(m in client_to_hub(), at in any::<prop::sample::Index>(), c in "[\\x00-\\x7f\"{}\\[\\]:,0-9]") {
        let mut text = signal::encode(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut i = at.index(text.len());
        while !text.is_char_boundary(i) { i -= 1; }
        text.insert_str(i, &c);
        if let Ok(back) = signal::decode::<ClientToHub>(&text) {
            // What a receiver accepted, it can send on unchanged.
            prop_assert!(signal::encode(&back).is_ok());
        }
    }
}

#[test]
fn a_flood_of_hashes_is_refused_not_processed() {
    let pieces = vec![PieceHash::of(b"x"); MAX_HASHES_PER_MESSAGE + 1];
    let msg = ClientToHub::Have { pieces };
    assert!(signal::encode(&msg).is_err(), "the encoder refuses it too");
    let text = serde_json::to_string(&msg).expect("json");
    let err = signal::decode::<ClientToHub>(&text).expect_err("too many hashes");
    assert_eq!(err.code(), ErrorCode::BadMessage);
    assert!(err.to_string().contains("pieces"), "{err}");
}

#[test]
fn unknown_error_codes_from_newer_peers_are_kept_readable() {
    let m: ClientToHub =
        signal::decode(r#"{"type":"error","code":"quota_exceeded","message":"m"}"#)
            .expect("decodes");
    assert_eq!(
        m,
        ClientToHub::Error {
            code: ErrorCode::Unknown,
            message: "m".into()
        }
    );
}

#[test]
fn unknown_fields_in_known_messages_are_ignored() {
    let m: ClientToHub =
        signal::decode(r#"{"type":"ping","nonce":5,"future":true}"#).expect("decodes");
    assert_eq!(m, ClientToHub::Ping { nonce: 5 });
}

#[test]
fn the_encoder_refuses_a_frame_of_valid_fields_that_is_too_large() {
    // Every field within its limit, the whole over 64 KiB.
    let providers = (0..MAX_PROVIDERS as u8)
        .map(|i| Provider {
            peer: PeerId::from_bytes([i; 32]),
            role: Role::Permanent,
            trusted: true,
            pieces: (0..MAX_HASHES_PER_MESSAGE as u32).collect(),
        })
        .collect();
    let msg = HubToClient::Providers { req: 1, providers };
    assert!(msg.validate().is_ok());
    let err = signal::encode(&msg).expect_err("too large");
    assert_eq!(err.code(), ErrorCode::TooLarge);
}

#[test]
fn a_json_array_is_not_a_message() {
    let err = signal::decode::<ClientToHub>(r#"["ping",1]"#).expect_err("array");
    assert_eq!(err.code(), ErrorCode::BadMessage);
    assert!(Manifest::decode(b"[]").is_err());
}

#[test]
fn descriptor_of_a_newer_version_says_so_even_if_its_fields_changed() {
    let err = SwarmDescriptor::decode(br#"{"version":3,"everything":"else changed"}"#)
        .expect_err("newer version");
    assert!(
        matches!(err, DescriptorError::UnsupportedVersion(3)),
        "{err}"
    );
}
