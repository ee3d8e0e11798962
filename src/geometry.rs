//! thumbor's size arithmetic as pure functions: target size, manual crop, focal points, auto-crop,
//! fit-in, flips. No pixels; every rounding follows Python's (`round` is half-to-even).
//!
//! The result is a [`Plan`]: the operations thumbor's transformer would apply to an image of the
//! given size, in order, with the numbers it would use (floats kept as floats, for `meta/`).

use crate::url::{Crop, Dim, FitIn, HAlign, VAlign};

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub const fn new(width: u32, height: u32) -> Self {
        Size { width, height }
    }

    /// Width and height swapped (an image rotated by 90 degrees).
    pub fn transposed(self) -> Self {
        Size::new(self.height, self.width)
    }

    pub fn pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// A rectangle `[left, right) x [top, bottom)`, as PIL's `crop` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

impl Rect {
    pub fn width(&self) -> u32 {
        self.right.saturating_sub(self.left)
    }

    pub fn height(&self) -> u32 {
        self.bottom.saturating_sub(self.top)
    }

    pub fn size(&self) -> Size {
        Size::new(self.width(), self.height())
    }
}

/// A number as Python held it: thumbor's `meta/` JSON prints `300.0` for floats and `300` for ints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNum {
    Int(i64),
    Float(f64),
}

impl PyNum {
    /// The pixel count PIL uses for this value (`int()` truncation).
    pub fn pixels(self) -> u32 {
        match self {
            PyNum::Int(i) => i.clamp(0, i64::from(u32::MAX)) as u32,
            PyNum::Float(f) => f.trunc().clamp(0.0, f64::from(u32::MAX)) as u32,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            PyNum::Int(i) => i as f64,
            PyNum::Float(f) => f,
        }
    }
}

/// Where a focal point came from (printed as thumbor prints it in `meta/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FocalOrigin {
    Alignment,
    Explicit,
    Detection(String),
}

impl FocalOrigin {
    pub fn as_str(&self) -> &str {
        match self {
            FocalOrigin::Alignment => "alignment",
            FocalOrigin::Explicit => "Explicit",
            FocalOrigin::Detection(name) => name,
        }
    }
}

/// thumbor's `FocalPoint`: a centre, a box size and a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct FocalPoint {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub weight: PyNum,
    pub origin: FocalOrigin,
}

impl FocalPoint {
    /// `FocalPoint.from_alignment`: the alignment fraction of the size, truncated.
    pub fn from_alignment(halign: HAlign, valign: VAlign, size: Size) -> Self {
        FocalPoint {
            x: (f64::from(size.width) * halign.fraction()) as i64,
            y: (f64::from(size.height) * valign.fraction()) as i64,
            width: 1,
            height: 1,
            weight: PyNum::Float(1.0),
            origin: FocalOrigin::Alignment,
        }
    }

    /// `FocalPoint.from_square`: the centre of a box, weighted by its area.
    pub fn from_square(left: i64, top: i64, width: i64, height: i64, origin: FocalOrigin) -> Self {
        FocalPoint {
            x: left + width.div_euclid(2),
            y: top + height.div_euclid(2),
            width,
            height,
            weight: PyNum::Int(width * height),
            origin,
        }
    }
}

/// One step of the plan, in the order thumbor applies them.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Crop(Rect),
    Resize { width: PyNum, height: PyNum },
    FlipHorizontally,
    FlipVertically,
}

/// What the transformer needs to know, taken from the request after pre- and after-load filters.
/// The default is the original size, centred, with nothing else asked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeometryRequest {
    pub width: Dim,
    pub height: Dim,
    pub crop: Crop,
    pub fit_in: FitIn,
    pub stretch: bool,
    pub debug: bool,
    pub halign: HAlign,
    pub valign: VAlign,
    pub flip_h: bool,
    pub flip_v: bool,
    /// Focal points (from `focal()` or detection) in the coordinates of the image being planned.
    pub focal_points: Vec<FocalPoint>,
}

/// The transformer's decisions for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// Focal points after the manual crop's adjustment (or the alignment point).
    pub focal_points: Vec<FocalPoint>,
    /// The size after all operations.
    pub output: Size,
    /// `request.width`/`height` after `fit-in` updated them (what `fill()` pads to, what
    /// `upscale()` grows to); `None` where the request kept `orig`.
    pub box_width: Option<u32>,
    pub box_height: Option<u32>,
}

/// Why a plan cannot be made (thumbor raises an exception: HTTP 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("`orig` on one side with a proportional other side")]
    OrigProportional,
    #[error("division by zero in the size arithmetic")]
    ZeroDivision,
    #[error("fit-in rounds a side to zero pixels")]
    ZeroSize,
}

impl From<GeometryError> for crate::error::Error {
    fn from(e: GeometryError) -> Self {
        crate::error::Error::new(crate::error::ErrorKind::ThumborFails, "geometry").with_source(e)
    }
}

/// Python's `round(x)` / `round(x, 0)`: half to even.
pub fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// Python's `round(x, 2)` as used for aspect ratios: correctly rounded, half to even on the exact
/// binary value (so `1.335`, stored as 1.33499..., gives 1.33).
pub fn py_round2(x: f64) -> f64 {
    let scaled = x * 100.0;
    // The exact product is `scaled + residual` (an error-free transformation with one fma).
    let residual = x.mul_add(100.0, -scaled);
    let floor = scaled.floor();
    let rounded = if scaled - floor == 0.5 {
        if residual > 0.0 {
            floor + 1.0
        } else if residual < 0.0 {
            floor
        } else {
            scaled.round_ties_even()
        }
    } else {
        scaled.round()
    };
    rounded / 100.0
}

/// `engine.get_proportional_width(new_height)`.
fn proportional_width(size: Size, new_height: f64) -> f64 {
    py_round(new_height * f64::from(size.width) / f64::from(size.height))
}

/// `engine.get_proportional_height(new_width)`.
fn proportional_height(size: Size, new_width: f64) -> f64 {
    py_round(new_width * f64::from(size.height) / f64::from(size.width))
}

/// `Transformer._calculate_target_dimensions` for an image of `size`.
pub fn target_dimensions(size: Size, width: Dim, height: Dim) -> Result<(f64, f64), GeometryError> {
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    if width.is_auto() && height.is_auto() {
        return Ok((sw, sh));
    }
    let tw = match width {
        Dim::Orig => sw,
        Dim::Px(0) => match height {
            Dim::Orig => return Err(GeometryError::OrigProportional),
            Dim::Px(h) => proportional_width(size, f64::from(h)),
        },
        Dim::Px(w) => f64::from(w),
    };
    let th = match height {
        Dim::Orig => sh,
        Dim::Px(0) => match width {
            Dim::Orig => return Err(GeometryError::OrigProportional),
            Dim::Px(w) => proportional_height(size, f64::from(w)),
        },
        Dim::Px(h) => f64::from(h),
    };
    Ok((tw, th))
}

/// `Transformer.manual_crop`: the crop clamped to the image, or `None` when it is empty.
pub fn clamp_manual_crop(size: Size, crop: Crop) -> Option<Rect> {
    if !crop.is_set() {
        return None;
    }
    let rect = Rect {
        left: crop.left.min(size.width),
        top: crop.top.min(size.height),
        right: crop.right.min(size.width),
        bottom: crop.bottom.min(size.height),
    };
    (rect.left < rect.right && rect.top < rect.bottom).then_some(rect)
}

/// `Transformer.get_center_of_mass`: weighted centre, floor-divided as Python's `//` on floats.
fn center_of_mass(points: &[FocalPoint]) -> (f64, f64) {
    let (mut total_weight, mut total_x, mut total_y) = (0.0f64, 0.0f64, 0.0f64);
    for p in points {
        let w = p.weight.as_f64();
        total_weight += w;
        total_x += p.x as f64 * w;
        total_y += p.y as f64 * w;
    }
    if total_weight == 0.0 {
        return (0.0, 0.0);
    }
    ((total_x / total_weight).floor(), (total_y / total_weight).floor())
}

/// `Transformer.auto_crop`: the rectangle of `size` with the target's aspect ratio around the
/// focal points, or `None` when the ratios already agree (to two decimals).
pub fn auto_crop(size: Size, target: (f64, f64), focal: &[FocalPoint]) -> Result<Option<Rect>, GeometryError> {
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    let (tw, th) = target;
    let th_or_1 = if th == 0.0 { 1.0 } else { th };
    let tw_or_1 = if tw == 0.0 { 1.0 } else { tw };
    if py_round2(sw / sh) == py_round2(tw_or_1 / th_or_1) {
        return Ok(None);
    }
    let (fx, fy) = center_of_mass(focal);
    let (crop_w, crop_h) = if tw / sw > th / sh {
        (sw, py_round(sw * th / tw_or_1))
    } else {
        if th_or_1 == 0.0 {
            return Err(GeometryError::ZeroDivision);
        }
        (py_round((tw * sh / th_or_1).ceil()), sh)
    };
    // A zero-sized crop would leave nothing to resize: keep at least one pixel.
    let (crop_w, crop_h) = (crop_w.max(1.0), crop_h.max(1.0));
    let left = py_round((fx - crop_w / 2.0).max(0.0).min(sw - crop_w)).max(0.0);
    let top = py_round((fy - crop_h / 2.0).max(0.0).min(sh - crop_h)).max(0.0);
    let right = (left + crop_w).min(sw);
    let bottom = (top + crop_h).min(sh);
    Ok(Some(Rect { left: left as u32, top: top as u32, right: right as u32, bottom: bottom as u32 }))
}

/// The box `fit-in` resizes into, after `adaptive-` swapped it to the image's orientation.
fn adaptive_swap(size: Size, target: (f64, f64), fit_in: FitIn) -> (f64, f64, bool) {
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    let (tw, th) = target;
    let swap = fit_in.adaptive && ((sw < sh && tw > th) || (sw > sh && tw < th));
    if swap {
        (th, tw, true)
    } else {
        (tw, th, false)
    }
}

/// What `fit_in_resize` decides: the resize, if any, and the request box it leaves behind.
struct FitInResult {
    resize: Option<(PyNum, PyNum)>,
    box_width: Option<u32>,
    box_height: Option<u32>,
}

/// `Transformer.fit_in_resize`: the resize (if any) and the updated request box.
fn fit_in(size: Size, target: (f64, f64), req: &GeometryRequest) -> Result<FitInResult, GeometryError> {
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    let (tw, th, swapped) = adaptive_swap(size, target, req.fit_in);
    let (req_w, req_h) = if swapped { (req.height, req.width) } else { (req.width, req.height) };
    let dim_box = |d: Dim| match d {
        Dim::Px(n) => Some(n),
        Dim::Orig => None,
    };
    if !req.fit_in.full && tw >= sw && th >= sh {
        return Ok(FitInResult { resize: None, box_width: dim_box(req_w), box_height: dim_box(req_h) });
    }
    if tw == 0.0 || th == 0.0 {
        return Err(GeometryError::ZeroDivision);
    }
    let sign = if req.fit_in.full { -1.0 } else { 1.0 };
    let (resize_w, resize_h) = if sw / tw * sign >= sh / th * sign {
        (PyNum::Float(tw), PyNum::Int(py_round(sh * tw / sw + 1e-5) as i64))
    } else {
        (PyNum::Int(py_round(sw * th / sh + 1e-5) as i64), PyNum::Float(th))
    };
    let requested = |d: Dim, source: f64| match d {
        Dim::Orig => source,
        Dim::Px(n) => f64::from(n),
    };
    // PIL refuses to resize to a zero side (thumbor: 500); plain resizes use `or 1` instead.
    if resize_w.pixels() == 0 || resize_h.pixels() == 0 {
        return Err(GeometryError::ZeroSize);
    }
    let box_w = requested(req_w, sw).max(resize_w.as_f64()) as u32;
    let box_h = requested(req_h, sh).max(resize_h.as_f64()) as u32;
    Ok(FitInResult { resize: Some((resize_w, resize_h)), box_width: Some(box_w), box_height: Some(box_h) })
}

/// Plan the transformer's work on an image of `size` (after orientation and trim).
pub fn plan(size: Size, req: &GeometryRequest) -> Result<Plan, GeometryError> {
    let mut ops = Vec::new();
    let mut current = size;

    let manual = clamp_manual_crop(size, req.crop);
    if let Some(rect) = manual {
        ops.push(Op::Crop(rect));
        current = rect.size();
    }

    let target = target_dimensions(current, req.width, req.height)?;

    let focal_points = adjust_focal_points(current, manual, req);

    let dim_box = |d: Dim| match d {
        Dim::Px(n) => Some(n),
        Dim::Orig => None,
    };
    let (mut box_width, mut box_height) = (dim_box(req.width), dim_box(req.height));

    if !req.debug {
        if req.fit_in.enabled {
            let fit = fit_in(current, target, req)?;
            box_width = fit.box_width;
            box_height = fit.box_height;
            if let Some((w, h)) = fit.resize {
                ops.push(Op::Resize { width: w, height: h });
                current = Size::new(w.pixels().max(1), h.pixels().max(1));
            }
        } else {
            if !req.stretch {
                if let Some(rect) = auto_crop(current, target, &focal_points)? {
                    ops.push(Op::Crop(rect));
                    current = rect.size();
                }
            }
            let (tw, th) = target;
            if !(tw == f64::from(current.width) && th == f64::from(current.height)) {
                let w = if tw == 0.0 { PyNum::Int(1) } else { PyNum::Float(tw) };
                let h = if th == 0.0 { PyNum::Int(1) } else { PyNum::Float(th) };
                ops.push(Op::Resize { width: w, height: h });
                current = Size::new(w.pixels().max(1), h.pixels().max(1));
            }
        }
        if req.flip_h {
            ops.push(Op::FlipHorizontally);
        }
        if req.flip_v {
            ops.push(Op::FlipVertically);
        }
    }

    Ok(Plan { ops, focal_points, output: current, box_width, box_height })
}

/// `Transformer.adjust_focal_points`: points outside the manual crop are dropped, the others
/// moved into its coordinates; without any, the alignment point of the (cropped) image.
fn adjust_focal_points(current: Size, manual: Option<Rect>, req: &GeometryRequest) -> Vec<FocalPoint> {
    let mut points: Vec<FocalPoint> = match manual {
        Some(crop) => req
            .focal_points
            .iter()
            .filter(|p| {
                p.x >= i64::from(crop.left)
                    && p.x <= i64::from(crop.right)
                    && p.y >= i64::from(crop.top)
                    && p.y <= i64::from(crop.bottom)
            })
            .map(|p| FocalPoint { x: p.x - i64::from(crop.left), y: p.y - i64::from(crop.top), ..p.clone() })
            .collect(),
        None => req.focal_points.clone(),
    };
    if points.is_empty() {
        points.push(FocalPoint::from_alignment(req.halign, req.valign, current));
    }
    points
}

/// thumbor's `MAX_WIDTH`/`MAX_HEIGHT` normalisation on load: the size the source is reduced to,
/// or `None` when it already fits (0 = no limit).
pub fn normalize_size(size: Size, max_width: u32, max_height: u32) -> Option<Size> {
    let (w, h) = (i64::from(size.width), i64::from(size.height));
    let (mw, mh) = (i64::from(max_width), i64::from(max_height));
    if !(w > mw || h > mh) {
        return None;
    }
    let width_diff = w - mw;
    let height_diff = h - mh;
    if max_width > 0 && width_diff > height_diff {
        let height = proportional_height(size, f64::from(max_width)) as u32;
        return Some(Size::new(max_width, height.max(1)));
    }
    if max_height > 0 && height_diff > width_diff {
        let width = proportional_width(size, f64::from(max_height)) as u32;
        return Some(Size::new(width.max(1), max_height));
    }
    None
}

/// `BaseHandler.normalize_crops` + `translate_crop_coordinates`: a manual crop given in the
/// original source's pixels, moved onto the normalised image.
pub fn translate_crop(crop: Crop, original: Size, normalized: Size, width: Dim, height: Dim) -> Crop {
    if !crop.is_set() {
        return crop;
    }
    let (mut actual_w, mut actual_h) = (f64::from(normalized.width), f64::from(normalized.height));
    if width.is_auto() && height.is_auto() {
        // The size as it is.
    } else if !width.is_auto() {
        actual_h = proportional_height(normalized, f64::from(normalized.width));
    } else {
        actual_w = proportional_width(normalized, f64::from(normalized.height));
    }
    if f64::from(original.width) == actual_w && f64::from(original.height) == actual_h {
        return crop;
    }
    let scale = |v: u32, actual: f64, orig: u32| ((f64::from(v) * actual) / f64::from(orig)).floor() as u32;
    Crop {
        left: scale(crop.left, actual_w, original.width),
        top: scale(crop.top, actual_h, original.height),
        right: scale(crop.right, actual_w, original.width),
        bottom: scale(crop.bottom, actual_h, original.height),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(width: Dim, height: Dim) -> GeometryRequest {
        GeometryRequest { width, height, ..Default::default() }
    }

    fn px(n: u32) -> Dim {
        Dim::Px(n)
    }

    #[test]
    fn python_rounding() {
        assert_eq!(py_round(2.5), 2.0);
        assert_eq!(py_round(3.5), 4.0);
        assert_eq!(py_round(33.5), 34.0);
        assert_eq!(py_round2(1.335), 1.33); // 1.335 is 1.33499999... in binary
        assert_eq!(py_round2(1.345), 1.34); // binary 1.34499999...
        assert_eq!(py_round2(1.5), 1.5);
        assert_eq!(py_round2(1.125), 1.12); // an exact tie goes to even
        assert_eq!(py_round2(1.375), 1.38);
        assert_eq!(py_round2(4.0 / 3.0), 1.33);
    }

    #[test]
    fn plain_resize_crops_to_ratio_around_the_centre() {
        // Recorded from thumbor 7.8: meta/300x200 of an 800x600 image.
        let p = plan(Size::new(800, 600), &req(px(300), px(200))).unwrap();
        assert_eq!(
            p.ops,
            vec![
                Op::Crop(Rect { left: 0, top: 34, right: 800, bottom: 567 }),
                Op::Resize { width: PyNum::Float(300.0), height: PyNum::Float(200.0) },
            ]
        );
        assert_eq!(p.output, Size::new(300, 200));
    }

    #[test]
    fn fit_in_keeps_the_ratio() {
        // Recorded: meta/fit-in/300x200 of 800x600 -> resize 267 x 200.0.
        let mut r = req(px(300), px(200));
        r.fit_in.enabled = true;
        let p = plan(Size::new(800, 600), &r).unwrap();
        assert_eq!(p.ops, vec![Op::Resize { width: PyNum::Int(267), height: PyNum::Float(200.0) }]);
        assert_eq!(p.output, Size::new(267, 200));
        assert_eq!((p.box_width, p.box_height), (Some(300), Some(200)));
    }

    #[test]
    fn fit_in_never_upscales() {
        let mut r = req(px(1000), px(1000));
        r.fit_in.enabled = true;
        let p = plan(Size::new(800, 600), &r).unwrap();
        assert!(p.ops.is_empty());
        assert_eq!(p.output, Size::new(800, 600));
    }

    #[test]
    fn full_fit_in_fits_the_smaller_side() {
        let mut r = req(px(300), px(300));
        r.fit_in = FitIn { enabled: true, adaptive: false, full: true };
        let p = plan(Size::new(1920, 1080), &r).unwrap();
        assert_eq!(p.output, Size::new(533, 300));
    }

    #[test]
    fn adaptive_fit_in_swaps_the_box() {
        let mut r = req(px(300), px(200));
        r.fit_in = FitIn { enabled: true, adaptive: true, full: false };
        let p = plan(Size::new(600, 800), &r).unwrap();
        assert_eq!(p.output, Size::new(200, 267));
    }

    #[test]
    fn proportional_sides_and_flips() {
        // Recorded: meta/-300x-0/left/top of 800x600 -> resize 300.0 x 225.0, both flips.
        let mut r = req(px(300), px(0));
        r.flip_h = true;
        r.flip_v = true;
        r.halign = HAlign::Left;
        r.valign = VAlign::Top;
        let p = plan(Size::new(800, 600), &r).unwrap();
        assert_eq!(
            p.ops,
            vec![
                Op::Resize { width: PyNum::Float(300.0), height: PyNum::Float(225.0) },
                Op::FlipHorizontally,
                Op::FlipVertically
            ]
        );
        assert_eq!(p.focal_points[0].x, 0);
    }

    #[test]
    fn manual_crop_then_auto_crop() {
        // Recorded: meta/10x10:500x500/300x0 of 400x300.
        let mut r = req(px(300), px(0));
        r.crop = Crop { left: 10, top: 10, right: 500, bottom: 500 };
        let p = plan(Size::new(400, 300), &r).unwrap();
        assert_eq!(
            p.ops,
            vec![
                Op::Crop(Rect { left: 10, top: 10, right: 400, bottom: 300 }),
                Op::Crop(Rect { left: 0, top: 0, right: 390, bottom: 290 }),
                Op::Resize { width: PyNum::Float(300.0), height: PyNum::Float(223.0) },
            ]
        );
        assert_eq!((p.focal_points[0].x, p.focal_points[0].y), (195, 145));
    }

    #[test]
    fn empty_manual_crop_is_ignored() {
        let mut r = req(px(0), px(0));
        r.crop = Crop { left: 50, top: 0, right: 40, bottom: 100 };
        let p = plan(Size::new(400, 300), &r).unwrap();
        assert!(p.ops.is_empty());
    }

    #[test]
    fn no_size_means_original() {
        let p = plan(Size::new(123, 45), &req(px(0), px(0))).unwrap();
        assert!(p.ops.is_empty());
        assert_eq!(p.output, Size::new(123, 45));
    }

    #[test]
    fn orig_takes_the_source_side() {
        let p = plan(Size::new(800, 600), &req(Dim::Orig, px(100))).unwrap();
        assert_eq!(p.output, Size::new(800, 100));
        assert_eq!(target_dimensions(Size::new(800, 600), Dim::Orig, px(0)), Err(GeometryError::OrigProportional));
    }

    #[test]
    fn focal_point_moves_the_crop() {
        let mut r = req(px(100), px(100));
        r.focal_points = vec![FocalPoint::from_square(700, 0, 20, 20, FocalOrigin::Explicit)];
        let p = plan(Size::new(800, 600), &r).unwrap();
        assert_eq!(p.ops[0], Op::Crop(Rect { left: 200, top: 0, right: 800, bottom: 600 }));
    }

    #[test]
    fn stretch_skips_the_crop() {
        let mut r = req(px(300), px(100));
        r.stretch = true;
        let p = plan(Size::new(800, 600), &r).unwrap();
        assert_eq!(p.ops.len(), 1);
        assert_eq!(p.output, Size::new(300, 100));
    }

    #[test]
    fn tiny_proportional_side_becomes_one_pixel() {
        let p = plan(Size::new(2000, 50), &req(px(10), px(0))).unwrap();
        assert_eq!(p.output, Size::new(10, 1));
    }

    #[test]
    fn fit_in_to_a_zero_side_fails_like_thumbor() {
        let mut r = req(px(10), px(10));
        r.fit_in.enabled = true;
        assert_eq!(plan(Size::new(2000, 50), &r), Err(GeometryError::ZeroSize));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_size(Size::new(800, 600), 0, 0), None);
        // thumbor compares the overshoot on both axes, an unset limit counting as 0: with only
        // MAX_WIDTH set, the height "overshoots" more and nothing is reduced.
        assert_eq!(normalize_size(Size::new(800, 600), 400, 0), None);
        assert_eq!(normalize_size(Size::new(800, 600), 400, 400), Some(Size::new(400, 300)));
        assert_eq!(normalize_size(Size::new(600, 800), 400, 400), Some(Size::new(300, 400)));
        assert_eq!(normalize_size(Size::new(300, 200), 400, 400), None);
    }
}
