//! `blur(radius[,sigma])`: gaussian blur; radius capped at 150.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `blur()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Blur {
    pub radius: u32,
    pub sigma: f64,
}

pub const SPEC: Spec = Spec {
    name: "blur",
    params: &[Param::PositiveNonZeroNumber, Param::DecimalNumber],
    required: 1,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Blur(Blur {
        radius: args.int(0)?.clamp(1, i64::from(u32::MAX)) as u32,
        sigma: args.float(1).unwrap_or(0.0),
    }))
}

impl Blur {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
