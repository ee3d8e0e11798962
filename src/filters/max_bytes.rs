//! `max_bytes(n)`: JPEG and WebP re-encode with quality x0.75 until the result fits in n bytes (floor 10).

use super::{Args, Filter, Param, Phase, Spec};

/// The arguments of one `max_bytes()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxBytes {
    pub bytes: u64,
}

pub const SPEC: Spec =
    Spec { name: "max_bytes", params: &[Param::PositiveNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::MaxBytes(MaxBytes { bytes: u64::try_from(args.int(0)?).unwrap_or(u64::MAX) }))
}
