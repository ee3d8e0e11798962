//! `colorize(r,g,b,fill)`: blends each channel toward a fill colour by a percentage.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `colorize()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Colorize {
    pub red: i64,
    pub green: i64,
    pub blue: i64,
    pub fill: String,
}

pub const SPEC: Spec = Spec {
    name: "colorize",
    params: &[Param::PositiveNumber, Param::PositiveNumber, Param::PositiveNumber, Param::String],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Colorize(Colorize {
        red: args.int(0)?,
        green: args.int(1)?,
        blue: args.int(2)?,
        fill: args.string(3)?,
    }))
}

impl Colorize {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
