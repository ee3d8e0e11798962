//! `noise(amount[,seed])`: adds random noise (seeded, so the same URL gives the same image).

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `noise()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    pub amount: i64,
    pub seed: i64,
}

pub const SPEC: Spec = Spec {
    name: "noise",
    params: &[Param::PositiveNumber, Param::PositiveNumber],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Noise(Noise { amount: args.int(0)?, seed: args.int(1).unwrap_or(0) }))
}

impl Noise {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
