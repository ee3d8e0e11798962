//! `sharpen(amount,radius,luminance_only)`: unsharp mask; all three arguments are required.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `sharpen()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharpen {
    pub amount: f64,
    pub radius: f64,
    pub luminance_only: bool,
}

pub const SPEC: Spec = Spec {
    name: "sharpen",
    params: &[Param::DecimalNumber, Param::DecimalNumber, Param::Boolean],
    required: 3,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Sharpen(Sharpen { amount: args.float(0)?, radius: args.float(1)?, luminance_only: args.boolean(2)? }))
}

impl Sharpen {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
