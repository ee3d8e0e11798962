//! `convolution(m;...,cols[,normalize])`: applies a custom kernel.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `convolution()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Convolution {
    pub matrix: Vec<f64>,
    pub columns: u32,
    pub normalize: bool,
}

pub const SPEC: Spec = Spec {
    name: "convolution",
    params: &[Param::Custom(r"-?\d+(?:\.\d*)?(?:;-?\d+(?:\.\d*)?)*"), Param::PositiveNonZeroNumber, Param::Boolean],
    required: 2,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Convolution(Convolution {
        matrix: args.raw(0)?.split(';').map(|v| v.parse().unwrap_or(0.0)).collect(),
        columns: args.int(1)?.clamp(1, i64::from(u32::MAX)) as u32,
        normalize: args.boolean(2).unwrap_or(true),
    }))
}

impl Convolution {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
