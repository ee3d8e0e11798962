//! `brightness(n)`: adds n percent of 255 to every channel.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `brightness()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Brightness {
    pub value: i64,
}

pub const SPEC: Spec =
    Spec { name: "brightness", params: &[Param::Number], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Brightness(Brightness { value: args.int(0)? }))
}

impl Brightness {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
