//! The `filters:` segment: any text splits into calls and parses (or is ignored/refused) without
//! a panic, in linear time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thumbora::fuzzing::filters(data);
});
