//! `fill(color[,fill_transparent])`: pads the image to the requested box with a colour, `auto` (the median colour), `blur` (a blurred copy) or `transparent`.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `fill()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    pub color: String,
    pub fill_transparent: bool,
}

pub const SPEC: Spec = Spec {
    name: "fill",
    params: &[Param::Custom(r"[\w]+"), Param::Boolean],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Fill(Fill { color: args.raw(0)?.to_string(), fill_transparent: args.boolean(1).unwrap_or(false) }))
}

impl Fill {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
