//! Peer wire decoder: any bytes, any limit; whatever decodes re-encodes to
//! the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tuber_proto::limits::{DEFAULT_MAX_FRAME, LARGE_MAX_FRAME};
use tuber_proto::Frame;

fuzz_target!(|data: &[u8]| {
    for max in [DEFAULT_MAX_FRAME as usize, LARGE_MAX_FRAME as usize, 16] {
        if let Ok(frame) = Frame::decode(data, max) {
            assert_eq!(frame.encode(), data);
        }
    }
});
