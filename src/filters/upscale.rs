//! `upscale()`: after `fit-in`, enlarge an image smaller than the requested box until it fits
//! the box (thumbor's post-transform resize, integer-truncated like thumbor's).

use super::{Args, Filter, Phase, Spec};
use crate::geometry::Size;

pub const SPEC: Spec = Spec { name: "upscale", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_: &Args) -> Option<Filter> {
    Some(Filter::Upscale)
}

/// The size `upscale()` resizes `current` to inside the box, or `None` to leave it.
pub fn target(current: Size, box_width: u32, box_height: u32) -> Option<Size> {
    let (sw, sh) = (u64::from(current.width), u64::from(current.height));
    let (tw, th) = (u64::from(box_width), u64::from(box_height));
    if sw >= tw || sh >= th {
        return None;
    }
    let (w, h) = if sw as f64 / tw as f64 >= sh as f64 / th as f64 { (tw, sh * tw / sw) } else { (sw * th / sh, th) };
    Some(Size::new(w.max(1) as u32, h.max(1) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_into_the_box() {
        assert_eq!(target(Size::new(100, 50), 400, 400), Some(Size::new(400, 200)));
        assert_eq!(target(Size::new(50, 100), 400, 300), Some(Size::new(150, 300)));
        assert_eq!(target(Size::new(500, 50), 400, 400), None);
    }
}
