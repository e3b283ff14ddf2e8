//! Signaling decoders, both directions: never panic, and whatever decodes
//! re-encodes within the frame limit and decodes again to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tuber_proto::limits::MAX_SIGNAL_FRAME;
use tuber_proto::signal::{decode, encode};
use tuber_proto::{ClientToHub, HubToClient};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = decode::<ClientToHub>(text) {
        let again = encode(&m);
        assert!(again.len() <= MAX_SIGNAL_FRAME + 1024);
        assert_eq!(decode::<ClientToHub>(&again).ok(), Some(m));
    }
    if let Ok(m) = decode::<HubToClient>(text) {
        let again = encode(&m);
        assert_eq!(decode::<HubToClient>(&again).ok(), Some(m));
    }
});
