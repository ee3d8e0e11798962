//! `frame(url)`: draws a nine-patch frame image around the result.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `frame()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub url: String,
}

pub const SPEC: Spec =
    Spec { name: "frame", params: &[Param::String], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Frame(Frame { url: args.string(0)? }))
}

impl Frame {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
