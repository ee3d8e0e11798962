//! `round_corner(a[|b],r,g,b[,transparent])`: rounds the corners with an elliptical radius, painting them a colour or making them transparent.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `round_corner()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundCorner {
    pub radius: String,
    pub red: i64,
    pub green: i64,
    pub blue: i64,
    pub transparent: bool,
}

pub const SPEC: Spec = Spec {
    name: "round_corner",
    params: &[
        Param::Custom(r"[\d]+(?:\|[\d]+)?"),
        Param::PositiveNumber,
        Param::PositiveNumber,
        Param::PositiveNumber,
        Param::Boolean,
    ],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::RoundCorner(RoundCorner {
        radius: args.raw(0)?.to_string(),
        red: args.int(1)?,
        green: args.int(2)?,
        blue: args.int(3)?,
        transparent: args.boolean(4).unwrap_or(false),
    }))
}

impl RoundCorner {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
