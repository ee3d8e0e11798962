//! Header probing of any bytes: a probe or a typed error, never a panic or a large allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thumbora::fuzzing::probe(data);
});
