//! `curve(a,r,g,b)`: tone curves per channel, each a list of `(x,y)` control points.

use super::{Args, Filter, Param, Phase, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::Result;

/// The arguments of one `curve()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub alpha: Vec<(i64, i64)>,
    pub red: Vec<(i64, i64)>,
    pub green: Vec<(i64, i64)>,
    pub blue: Vec<(i64, i64)>,
}

pub const SPEC: Spec = Spec {
    name: "curve",
    params: &[Param::Custom(CURVE), Param::Custom(CURVE), Param::Custom(CURVE), Param::Custom(CURVE)],
    required: 4,
    phase: Phase::PostTransform,
    build,
};

/// thumbor's curve argument pattern.
pub const CURVE: &str = r"\[(?:\(\d+,\d+\),?)*\]";

/// `[(0,0),(255,255)]` -> points.
fn points(text: &str) -> Vec<(i64, i64)> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(')')
        .filter_map(|p| {
            let p = p.trim_start_matches(',').trim_start_matches('(');
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Curve(Curve {
        alpha: points(args.raw(0)?),
        red: points(args.raw(1)?),
        green: points(args.raw(2)?),
        blue: points(args.raw(3)?),
    }))
}

impl Curve {
    /// Apply to one frame. Not implemented yet: the image is returned unchanged.
    pub fn apply(&self, bitmap: Bitmap, _ctx: &PostContext) -> Result<Bitmap> {
        Ok(bitmap)
    }
}
