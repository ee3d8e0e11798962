//! `watermark(url,x,y,alpha[,w_ratio[,h_ratio]])`: composites another image; x/y in pixels, `-px` from the right/bottom, `Np` percent, `center` or `repeat`; alpha 0-100 (transparency); ratios scale the mark to a percentage of the image.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `watermark()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub url: String,
    pub x: String,
    pub y: String,
    pub alpha: i64,
    pub w_ratio: Option<String>,
    pub h_ratio: Option<String>,
}

pub const SPEC: Spec = Spec {
    name: "watermark",
    params: &[
        Param::String,
        Param::Custom(r"(?:-?\d+p?)|center|repeat"),
        Param::Custom(r"(?:-?\d+p?)|center|repeat"),
        Param::PositiveNumber,
        Param::Custom(r"(?:-?\d+)|none"),
        Param::Custom(r"(?:-?\d+)|none"),
    ],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Watermark(Watermark {
        url: args.string(0)?,
        x: args.raw(1)?.to_string(),
        y: args.raw(2)?.to_string(),
        alpha: args.int(3)?,
        w_ratio: args.raw(4).map(str::to_string),
        h_ratio: args.raw(5).map(str::to_string),
    }))
}

impl Watermark {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
