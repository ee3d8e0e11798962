//! Probe, limits and decode of any bytes, every format (the first byte picks a format whose
//! magic bytes are written before the rest, so that each decoder gets its share of the inputs):
//! an image within the limits or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thumbora::fuzzing::decode(data);
});
