//! The thumbor URL grammar: any path parses or is refused, and what parses composes back to a
//! path that parses to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thumbora::fuzzing::url(data);
});
