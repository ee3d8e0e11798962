//! `rgb(r,g,b)`: per-channel change in percent.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `rgb()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub red: i64,
    pub green: i64,
    pub blue: i64,
}

pub const SPEC: Spec = Spec {
    name: "rgb",
    params: &[Param::Number, Param::Number, Param::Number],
    required: 3,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Rgb(Rgb { red: args.int(0)?, green: args.int(1)?, blue: args.int(2)? }))
}

impl Rgb {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
