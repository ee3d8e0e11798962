//! `background_color(color)`: flattens transparency onto a colour (a name or hex).

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `background_color()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundColor {
    pub color: String,
}

pub const SPEC: Spec = Spec {
    name: "background_color",
    params: &[Param::Custom(r"[\w]+")],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::BackgroundColor(BackgroundColor { color: args.raw(0)?.to_string() }))
}

impl BackgroundColor {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
