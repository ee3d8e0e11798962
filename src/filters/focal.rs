//! `focal(LxT:RxB)`: a focal point (the centre of the box, weighted by its area) that the
//! auto-crop keeps in view.

use std::sync::LazyLock;

use regex::Regex;

use super::{Args, Filter, Param, Phase, Spec};
use crate::geometry::{FocalOrigin, FocalPoint};

/// The box of a `focal()` item, in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Focal {
    pub left: i64,
    pub top: i64,
    pub right: i64,
    pub bottom: i64,
}

impl Focal {
    /// thumbor's `FocalPoint.from_square`; `None` for a box with no width or height.
    pub fn point(&self) -> Option<FocalPoint> {
        let width = self.right - self.left;
        let height = self.bottom - self.top;
        (width != 0 && height != 0)
            .then(|| FocalPoint::from_square(self.left, self.top, width, height, FocalOrigin::Explicit))
    }
}

pub const SPEC: Spec = Spec { name: "focal", params: &[Param::String], required: 1, phase: Phase::PreLoad, build };

static BOX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d+)x(\d+):(\d+)x(\d+)").expect("focal pattern"));

fn build(args: &Args) -> Option<Filter> {
    let text = args.string(0)?;
    let caps = BOX.captures(&text)?;
    let n = |i: usize| caps[i].parse::<i64>().unwrap_or(i64::from(u32::MAX)).min(i64::from(u32::MAX));
    Some(Filter::Focal(Focal { left: n(1), top: n(2), right: n(3), bottom: n(4) }))
}

#[cfg(test)]
mod tests {
    use super::super::parse_one;
    use super::*;
    use crate::url::FilterCall;

    #[test]
    fn box_centre_and_weight() {
        let f = parse_one(&FilterCall { name: "focal".into(), raw: "focal(10x10:20x20)".into() }).unwrap();
        let Filter::Focal(focal) = f else { panic!("{f:?}") };
        let p = focal.point().unwrap();
        // Recorded from thumbor 7.8: {"x": 15, "y": 15, "z": 100, "height": 10, "width": 10}.
        assert_eq!((p.x, p.y, p.width, p.height), (15, 15, 10, 10));
        assert_eq!(p.weight, crate::geometry::PyNum::Int(100));
        assert!(parse_one(&FilterCall { name: "focal".into(), raw: "focal(nope)".into() }).is_err());
    }
}
