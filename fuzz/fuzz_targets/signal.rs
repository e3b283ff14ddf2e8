//! Signaling decoders, both directions: never panic, and whatever decodes
//! re-encodes (the encoder accepts what the decoder accepted) and decodes
//! again to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tuber_proto::signal::{decode, encode};
use tuber_proto::{ClientToHub, HubToClient};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = decode::<ClientToHub>(text) {
        let again = encode(&m).expect("a decoded message re-encodes");
        assert_eq!(decode::<ClientToHub>(&again).ok(), Some(m));
    }
    if let Ok(m) = decode::<HubToClient>(text) {
        let again = encode(&m).expect("a decoded message re-encodes");
        assert_eq!(decode::<HubToClient>(&again).ok(), Some(m));
    }
});
