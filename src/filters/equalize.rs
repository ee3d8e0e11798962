//! `equalize()`: histogram equalisation per channel.

use super::{Args, Filter, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `equalize()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Equalize {}

pub const SPEC: Spec = Spec { name: "equalize", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::Equalize(Equalize {}))
}

impl Equalize {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
