//! `rotate(deg)`: rotates counter-clockwise by a multiple of 90 degrees; other angles are ignored.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `rotate()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotate {
    pub degrees: i64,
}

pub const SPEC: Spec =
    Spec { name: "rotate", params: &[Param::Number], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Rotate(Rotate { degrees: args.int(0)? }))
}

impl Rotate {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
