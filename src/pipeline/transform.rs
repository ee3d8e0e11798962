//! Executes a geometry [`Plan`] on a canvas: crops are folded into one source rectangle and done
//! by the resampler, flips mirror the result; also picks the JPEG shrink-on-load factor.

use crate::codec::Canvas;
use crate::error::Result;
use crate::geometry::{Op, Plan, Size};
use crate::imaging::resize::{self, RectF};

/// The source rectangle (in plan pixels) and output size of the plan's first resize.
fn first_resize(plan: &Plan, base: Size) -> Option<(RectF, Size)> {
    let mut rect = RectF::full(base);
    for op in &plan.ops {
        match op {
            Op::Crop(r) => {
                rect = RectF {
                    left: rect.left + f64::from(r.left),
                    top: rect.top + f64::from(r.top),
                    width: f64::from(r.width()),
                    height: f64::from(r.height()),
                }
            }
            Op::Resize { width, height } => {
                return Some((rect, Size::new(width.pixels().max(1), height.pixels().max(1))))
            }
            _ => {}
        }
    }
    None
}

/// The largest JPEG DCT reduction (8, 4, 2, else 1) that still leaves the resampler `margin`
/// times the output's pixels on each axis (2: as libvips, quality matching a full decode; 1: as
/// Pillow's draft mode, faster). `stored_per_base` is how many stored pixels one plan pixel
/// covers (MAX_WIDTH reduction).
pub fn choose_shrink(plan: &Plan, base: Size, stored_per_base: (f64, f64), margin: f64) -> u32 {
    let Some((rect, out)) = first_resize(plan, base) else { return 1 };
    let stored_w = rect.width * stored_per_base.0;
    let stored_h = rect.height * stored_per_base.1;
    [8u32, 4, 2]
        .into_iter()
        .find(|&s| {
            stored_w / f64::from(s) >= margin * f64::from(out.width)
                && stored_h / f64::from(s) >= margin * f64::from(out.height)
        })
        .unwrap_or(1)
}

/// Apply `plan` (made for an image of `base` pixels) to `canvas`, whose frames may be larger or
/// smaller than `base` (shrink-on-load, MAX_WIDTH); the result has exactly `plan.output` pixels.
pub fn execute(canvas: &mut Canvas, plan: &Plan, base: Size) -> Result<()> {
    let mut pending = Pending::new(canvas.size(), base);
    for op in &plan.ops {
        match op {
            Op::Crop(r) => {
                pending.rect = RectF {
                    left: pending.rect.left + f64::from(r.left),
                    top: pending.rect.top + f64::from(r.top),
                    width: f64::from(r.width()),
                    height: f64::from(r.height()),
                };
            }
            Op::Resize { width, height } => {
                let out = Size::new(width.pixels().max(1), height.pixels().max(1));
                pending.resample(canvas, out)?;
            }
            Op::FlipHorizontally => {
                pending.materialize(canvas)?;
                canvas.map_frames(|mut b| {
                    b.flip_horizontal();
                    Ok(b)
                })?;
            }
            Op::FlipVertically => {
                pending.materialize(canvas)?;
                canvas.map_frames(|mut b| {
                    b.flip_vertical();
                    Ok(b)
                })?;
            }
        }
    }
    pending.materialize(canvas)?;
    debug_assert_eq!(canvas.size(), plan.output);
    Ok(())
}

/// Crops not yet applied, in plan pixels, and the canvas pixels per plan pixel.
struct Pending {
    rect: RectF,
    scale: (f64, f64),
}

impl Pending {
    fn new(canvas: Size, base: Size) -> Self {
        Pending {
            rect: RectF::full(base),
            scale: (f64::from(canvas.width) / f64::from(base.width), f64::from(canvas.height) / f64::from(base.height)),
        }
    }

    /// Resample the pending rectangle of every frame to `out`; afterwards the canvas is the plan.
    fn resample(&mut self, canvas: &mut Canvas, out: Size) -> Result<()> {
        let source = self.rect.scaled(self.scale.0, self.scale.1, canvas.size());
        canvas.map_frames(|b| resize::resize(&b, source, out))?;
        self.rect = RectF::full(out);
        self.scale = (1.0, 1.0);
        Ok(())
    }

    /// Make the canvas equal to the pending rectangle (a copy when it is whole pixels at scale 1).
    fn materialize(&mut self, canvas: &mut Canvas) -> Result<()> {
        let logical = Size::new(self.rect.width.round() as u32, self.rect.height.round() as u32);
        let identity = self.scale == (1.0, 1.0) && self.rect == RectF::full(canvas.size());
        if identity {
            return Ok(());
        }
        self.resample(canvas, Size::new(logical.width.max(1), logical.height.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Bitmap, Channels, Frame};
    use crate::geometry::{plan, GeometryRequest};
    use crate::url::{Crop, Dim};

    fn request(w: u32, h: u32) -> GeometryRequest {
        GeometryRequest { width: Dim::Px(w), height: Dim::Px(h), ..Default::default() }
    }

    fn canvas(w: u32, h: u32) -> Canvas {
        Canvas {
            frames: vec![Frame { bitmap: Bitmap::filled(w, h, Channels::Rgb, &[1, 2, 3]), delay_ms: 0 }],
            loop_count: 0,
            icc: None,
        }
    }

    #[test]
    fn shrink_keeps_twice_the_output() {
        let p = plan(Size::new(4000, 3000), &request(300, 200)).unwrap();
        // Crop 4000x2667 -> 300x200: 1/8 gives 500x333 >= 600x400? No. 1/4 gives 1000x667: yes.
        assert_eq!(choose_shrink(&p, Size::new(4000, 3000), (1.0, 1.0), 2.0), 4);
        assert_eq!(choose_shrink(&p, Size::new(4000, 3000), (1.0, 1.0), 1.0), 8, "draft-like margin");
        let p = plan(Size::new(400, 300), &request(300, 200)).unwrap();
        assert_eq!(choose_shrink(&p, Size::new(400, 300), (1.0, 1.0), 2.0), 1);
        let p = plan(Size::new(400, 300), &request(0, 0)).unwrap();
        assert_eq!(choose_shrink(&p, Size::new(400, 300), (1.0, 1.0), 2.0), 1);
    }

    #[test]
    fn output_has_the_planned_size_from_a_shrunk_canvas() {
        let base = Size::new(4000, 3000);
        let p = plan(base, &request(300, 200)).unwrap();
        let mut c = canvas(1000, 750); // decoded at 1/4
        execute(&mut c, &p, base).unwrap();
        assert_eq!(c.size(), Size::new(300, 200));
    }

    #[test]
    fn crop_only_plans_copy_exact_pixels() {
        let base = Size::new(40, 30);
        let mut r = request(0, 0);
        r.crop = Crop { left: 5, top: 5, right: 25, bottom: 15 };
        r.flip_h = true;
        let p = plan(base, &r).unwrap();
        let mut c = canvas(40, 30);
        execute(&mut c, &p, base).unwrap();
        assert_eq!(c.size(), Size::new(20, 10));
    }
}
