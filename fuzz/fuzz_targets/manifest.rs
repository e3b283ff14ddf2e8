//! Manifest and descriptor decoders: never panic; a decoded manifest's
//! canonical form decodes to the same manifest and id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tuber_proto::{Manifest, SwarmDescriptor};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::decode(data) {
        let canonical = m.encode();
        let again = Manifest::decode(&canonical).expect("canonical form decodes");
        assert_eq!(again.id(), m.id());
    }
    let _ = SwarmDescriptor::decode(data);
});
