//! `watermark(url,x,y,alpha[,w_ratio[,h_ratio]])`: composites another image; x/y in pixels, `-px` from the right/bottom, `Np` percent, `center` or `repeat`; alpha 0-100 (transparency); ratios scale the mark to a percentage of the image.

use super::background_color::composite;
use super::{Args, Filter, Param, Phase, PixelFilter, Pixels, PostContext, Spec};
use crate::codec::Bitmap;
use crate::error::{Error, ErrorKind, Fetched, Result};
use crate::geometry::{py_round, Size};
use crate::imaging::resize::{self, RectF};

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
    Some(Filter::Pixels(Pixels::new(Watermark {
        url: args.string(0)?,
        x: args.raw(1)?.to_string(),
        y: args.raw(2)?.to_string(),
        alpha: args.int(3)?,
        w_ratio: args.raw(4).map(str::to_string),
        h_ratio: args.raw(5).map(str::to_string),
    })))
}

/// thumbor answers 500 where Python raises inside the filter (PIL's ValueError on a zero-sized
/// mark, OverflowError on coordinates the C code cannot take).
fn thumbor_500(what: String) -> Error {
    Error::new(ErrorKind::ThumborFails, format!("watermark(): {what}"))
}

impl PixelFilter for Watermark {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// thumbor's `on_image_ready`: the mark made RGBA, its alpha lowered by `alpha` percent,
    /// resized by the ratios, then merged (`_composite.c`) once, or tiled with `repeat`.
    fn apply(&self, bitmap: Bitmap, ctx: &PostContext) -> Result<Bitmap> {
        let mut mark = load_mark(&self.url, ctx)?.to_rgba();
        fade(&mut mark, self.alpha)?;
        let image = bitmap.size();
        let (w_ratio, h_ratio) = (ratio(self.w_ratio.as_deref()), ratio(self.h_ratio.as_deref()));
        if w_ratio.is_some() || h_ratio.is_some() {
            let size = mark_size(image, mark.size(), w_ratio, h_ratio)?;
            crate::limits::check_output(size, ctx.image)?;
            mark = resize::resize(&mark, RectF::full(mark.size()), size)?;
        }
        let mut out = bitmap;
        for (x, y) in placements(image, mark.size(), &self.x, &self.y)? {
            composite(&mut out, &mark, x, y);
        }
        Ok(out)
    }

    fn asset_url(&self) -> Option<&str> {
        Some(&self.url)
    }
}

/// The mark's pixels, with thumbor's statuses for its failures: a missing image (origin 404,
/// or any origin error status when thumbor's statuses are configured) is 400, bytes that are
/// not an image are 500. Refused sources (400), timeouts (504) and other origin failures keep
/// the loader's status, as for the main image.
fn load_mark(url: &str, ctx: &PostContext) -> Result<std::sync::Arc<Bitmap>> {
    if let Err(e) = ctx.assets.bytes(url) {
        return Err(e.fetch_failure(Fetched::Watermark, ctx.assets.thumbor_statuses));
    }
    ctx.asset_bitmap(url).map_err(|e| match e.kind() {
        ErrorKind::UndecodableImage => thumbor_500(format!("{url} is not an image: {}", e.context())),
        _ => e,
    })
}

/// `_alpha.c`: every alpha value lowered by `255 * alpha / 100` (C int arithmetic), clamped.
/// thumbor passes `alpha` as a C int: larger values are an OverflowError (500).
fn fade(mark: &mut Bitmap, alpha: i64) -> Result<()> {
    let alpha = i32::try_from(alpha).map_err(|_| thumbor_500(format!("alpha {alpha} out of range")))?;
    // C's `255 * delta` overflows for huge deltas; x86 wraps, and so does this.
    let delta = -(255i32.wrapping_mul(alpha) / 100);
    if delta != 0 {
        for p in mark.pixels.chunks_exact_mut(4) {
            p[3] = (i32::from(p[3]) + delta).clamp(0, 255) as u8;
        }
    }
    Ok(())
}

/// `float(r) / 100.0 if r and r != "none" else False`: `None` for absent, `none` and zero.
fn ratio(text: Option<&str>) -> Option<f64> {
    let r = text.filter(|t| *t != "none")?.parse::<f64>().ok()? / 100.0;
    (r != 0.0).then_some(r)
}

/// thumbor's `calc_watermark_size`: the mark scaled to fit `w_ratio` of the image's width and/or
/// `h_ratio` of its height, keeping its aspect ratio; Python's `round` (half to even). A side
/// that is not positive (negative ratios, tiny marks) is PIL's ValueError: 500.
pub fn mark_size(image: Size, mark: Size, w_ratio: Option<f64>, h_ratio: Option<f64>) -> Result<Size> {
    let (iw, ih) = (f64::from(image.width), f64::from(image.height));
    let (mw, mh) = (f64::from(mark.width), f64::from(mark.height));
    let mut max_w = w_ratio.map(|r| iw * r).unwrap_or(0.0);
    let mut max_h = h_ratio.map(|r| ih * r).unwrap_or(0.0);
    if max_w == 0.0 {
        max_w = mw * max_h / mh;
    }
    if max_h == 0.0 {
        max_h = mh * max_w / mw;
    }
    let (w, h) = if mw / max_w >= mh / max_h {
        (py_round(max_w), py_round(mh * max_w / mw))
    } else {
        (py_round(mw * max_h / mh), py_round(max_h))
    };
    let side = |v: f64| (v.is_finite() && v >= 1.0 && v <= f64::from(u32::MAX)).then_some(v as u32);
    match (side(w), side(h)) {
        (Some(w), Some(h)) => Ok(Size::new(w, h)),
        _ => Err(thumbor_500(format!("mark size {w}x{h}"))),
    }
}

/// One axis of the position, as thumbor reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    /// From the left/top (`10`), or from the right/bottom when written with a minus (`-10`, `-0`).
    At {
        offset: i64,
        from_end: bool,
    },
    Center,
    Repeat,
}

/// `detect_and_get_ratio_position` and the parsing after it: `Np` is `round(length * N / 100 +
/// 1e-5)` pixels, keeping the sign; numbers beyond what the C code takes are thumbor's 500.
fn parse_axis(text: &str, length: u32) -> Result<Axis> {
    match text {
        "center" => return Ok(Axis::Center),
        "repeat" => return Ok(Axis::Repeat),
        _ => {}
    }
    let from_end = text.starts_with('-');
    let digits = text.trim_start_matches('-');
    let offset = match digits.strip_suffix('p') {
        Some(percent) => {
            let n = percent.parse::<f64>().map_err(|_| thumbor_500(format!("position {text}")))?;
            let px = py_round(f64::from(length) * n / 100.0 + 1e-5);
            if !px.is_finite() || px > 9.0e15 {
                return Err(thumbor_500(format!("position {text}")));
            }
            px as i64
        }
        None => digits.parse::<i64>().map_err(|_| thumbor_500(format!("position {text}")))?,
    };
    Ok(Axis::At { offset: if from_end { -offset } else { offset }, from_end })
}

/// Where the mark goes on one axis: the start offsets, one per copy.
fn axis_positions(axis: Axis, image: i64, mark: i64) -> Vec<i64> {
    match axis {
        Axis::At { offset, from_end: false } => vec![offset],
        Axis::At { offset, from_end: true } => vec![image - mark + offset],
        // `int((image - mark) / 2)`: float division truncated toward zero.
        Axis::Center => vec![((image - mark) as f64 / 2.0) as i64],
        Axis::Repeat => unreachable!("repeat is laid out by placements()"),
    }
}

/// thumbor's `repeat` on one axis: `divmod(image, mark)`, or `(ceil(image / mark), 10)` when
/// fewer than two marks fit.
fn repeat(image: i64, mark: i64) -> (i64, i64) {
    if (image as f64) / (mark as f64) < 2.0 {
        (((image as f64) / (mark as f64)).ceil() as i64, 10)
    } else {
        (image.div_euclid(mark), image.rem_euclid(mark))
    }
}

/// Tile starts: copy i at `i * space + i * mark`, `space = leftover // (max(count, 2) - 1)`.
fn tiles(count: i64, leftover: i64, mark: i64) -> Vec<i64> {
    let space = leftover.div_euclid(count.max(2) - 1);
    (0..count).map(|i| i * space + i * mark).collect()
}

/// Every (x, y) thumbor pastes the mark at, for an image and a mark of these sizes. Copies are
/// bounded by the image: `repeat` places about image/mark copies per axis, and at most 6x6
/// when both axes repeat past 100 copies.
fn placements(image: Size, mark: Size, x: &str, y: &str) -> Result<Vec<(i64, i64)>> {
    let (iw, ih) = (i64::from(image.width), i64::from(image.height));
    let (mw, mh) = (i64::from(mark.width), i64::from(mark.height));
    let (ax, ay) = (parse_axis(x, image.width)?, parse_axis(y, image.height)?);
    let (xs, ys) = match (ax, ay) {
        (Axis::Repeat, Axis::Repeat) => {
            let (mut rx, mut ry) = (repeat(iw, mw), repeat(ih, mh));
            if rx.0 * ry.0 > 100 {
                let (tx, ty) = (rx.0.min(6), ry.0.min(6));
                rx = (tx, iw - tx * mw);
                ry = (ty, ih - ty * mh);
            }
            (tiles(rx.0, rx.1, mw), tiles(ry.0, ry.1, mh))
        }
        (Axis::Repeat, other) => {
            let (count, leftover) = repeat(iw, mw);
            (tiles(count, leftover, mw), axis_positions(other, ih, mh))
        }
        (other, Axis::Repeat) => {
            let (count, leftover) = repeat(ih, mh);
            (axis_positions(other, iw, mw), tiles(count, leftover, mh))
        }
        (ox, oy) => (axis_positions(ox, iw, mw), axis_positions(oy, ih, mh)),
    };
    // `_composite.apply` takes the position as C ints.
    let c_int = |v: i64| i32::try_from(v).map(i64::from).map_err(|_| thumbor_500(format!("position {v}")));
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for &px in &xs {
        for &py in &ys {
            out.push((c_int(px)?, c_int(py)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;
    use crate::config::ImageConfig;
    use crate::filters::Assets;

    fn size(w: u32, h: u32) -> Size {
        Size::new(w, h)
    }

    fn places(image: (u32, u32), mark: (u32, u32), x: &str, y: &str) -> Vec<(i64, i64)> {
        placements(size(image.0, image.1), size(mark.0, mark.1), x, y).unwrap()
    }

    #[test]
    fn positions_like_thumbor() {
        // Values from thumbor 7.8's watermark filter (the pastes it makes), 300x200 image, 60x40 mark.
        assert_eq!(places((300, 200), (60, 40), "10", "10"), [(10, 10)]);
        assert_eq!(places((300, 200), (60, 40), "-10", "-10"), [(230, 150)]);
        assert_eq!(places((300, 200), (60, 40), "-0", "0"), [(240, 0)]);
        assert_eq!(places((300, 200), (60, 40), "center", "center"), [(120, 80)]);
        assert_eq!(places((300, 200), (61, 41), "center", "center"), [(119, 79)]);
        assert_eq!(places((50, 30), (61, 41), "center", "center"), [(-5, -5)]);
        assert_eq!(places((300, 200), (60, 40), "10p", "-20p"), [(30, 120)]);
        assert_eq!(places((300, 200), (60, 40), "50p", "100p"), [(150, 200)]);
        assert_eq!(places((301, 201), (60, 40), "50p", "-50p"), [(151, 60)]);
    }

    #[test]
    fn repeat_tiles_like_thumbor() {
        let xs = |v: Vec<(i64, i64)>| v.into_iter().map(|p| p.0).collect::<Vec<_>>();
        let ys = |v: Vec<(i64, i64)>| v.into_iter().map(|p| p.1).collect::<Vec<_>>();
        assert_eq!(xs(places((300, 200), (60, 40), "repeat", "0")), [0, 60, 120, 180, 240]);
        assert_eq!(xs(places((250, 200), (100, 40), "repeat", "0")), [0, 150]);
        assert_eq!(xs(places((330, 200), (100, 40), "repeat", "0")), [0, 115, 230]);
        // Fewer than two fit: ceil(image / mark) copies, 10 px apart.
        assert_eq!(xs(places((150, 200), (100, 40), "repeat", "0")), [0, 110]);
        assert_eq!(xs(places((80, 200), (100, 40), "repeat", "0")), [0]);
        assert_eq!(ys(places((300, 200), (60, 40), "-10", "repeat")), [0, 40, 80, 120, 160]);
        assert_eq!(places((300, 200), (60, 40), "-10", "repeat")[0].0, 230);
        // Both axes: 5 x 5 copies.
        let both = places((300, 200), (60, 40), "repeat", "repeat");
        assert_eq!(both.len(), 25);
        assert_eq!(both[6], (60, 40));
        // Past 100 copies: at most 6 x 6, spread over the image.
        let many = places((1000, 1000), (10, 10), "repeat", "repeat");
        assert_eq!(many.len(), 36);
        assert_eq!(many[7], (198, 198));
        assert_eq!(many[35], (990, 990));
    }

    #[test]
    fn repeat_stays_bounded_by_the_image() {
        // One-pixel marks on one axis: one copy per pixel column, never more.
        assert_eq!(places((16_383, 10), (1, 1), "repeat", "0").len(), 16_383);
        assert_eq!(places((16_383, 16_383), (1, 1), "repeat", "repeat").len(), 36);
    }

    #[test]
    fn ratio_sizes_like_thumbor() {
        let s = |image: (u32, u32), mark: (u32, u32), w: Option<f64>, h: Option<f64>| {
            mark_size(size(image.0, image.1), size(mark.0, mark.1), w, h).map(|s| (s.width, s.height))
        };
        assert_eq!(s((300, 200), (60, 40), Some(0.3), Some(0.3)).unwrap(), (90, 60));
        assert_eq!(s((300, 200), (60, 40), Some(0.5), None).unwrap(), (150, 100));
        assert_eq!(s((300, 200), (60, 40), None, Some(0.1)).unwrap(), (30, 20));
        assert_eq!(s((300, 200), (60, 40), Some(0.5), Some(0.1)).unwrap(), (30, 20));
        // round() is half to even: 45 * 0.5 = 22.5 -> 22.
        assert_eq!(s((45, 100), (10, 10), Some(0.5), None).unwrap(), (22, 22));
        for (w, h) in [(Some(-0.1), None), (Some(0.001), None), (Some(f64::INFINITY), None)] {
            assert_eq!(s((300, 200), (60, 40), w, h).unwrap_err().status(), 500, "{w:?} {h:?}");
        }
        assert_eq!(ratio(Some("none")), None);
        assert_eq!(ratio(Some("0")), None);
        assert_eq!(ratio(Some("-0")), None);
        assert_eq!(ratio(Some("30")), Some(0.3));
        assert_eq!(ratio(None), None);
    }

    #[test]
    fn alpha_like_the_c_extension() {
        // `_alpha.apply('RGBA', n, ...)` on alphas 255, 128, 10.
        let mark = || Bitmap {
            width: 3,
            height: 1,
            channels: Channels::Rgba,
            pixels: vec![1, 2, 3, 255, 4, 5, 6, 128, 7, 8, 9, 10],
        };
        let alphas = |n: i64| {
            let mut m = mark();
            fade(&mut m, n).unwrap();
            m.pixels.chunks(4).map(|p| p[3]).collect::<Vec<_>>()
        };
        assert_eq!(alphas(0), [255, 128, 10]);
        assert_eq!(alphas(50), [128, 1, 0]);
        assert_eq!(alphas(33), [171, 44, 0]);
        assert_eq!(alphas(100), [0, 0, 0]);
        assert_eq!(alphas(200), [0, 0, 0]);
        let mut m = mark();
        assert_eq!(fade(&mut m, 1 << 31).unwrap_err().status(), 500);
    }

    #[test]
    fn positions_beyond_c_ints_are_thumbors_500() {
        let err = placements(size(300, 200), size(60, 40), "99999999999", "0").unwrap_err();
        assert_eq!(err.status(), 500);
        let err = placements(size(300, 200), size(60, 40), "0", "999999999999999999999999").unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(placements(size(300, 200), size(60, 40), "2147483647", "-2147483648").is_ok());
    }

    fn png(bitmap: &Bitmap) -> bytes::Bytes {
        let options = crate::codec::encode::EncodeOptions::new(crate::codec::Format::Png, 80);
        let frame = crate::codec::Frame { bitmap: bitmap.clone(), delay_ms: 0 };
        crate::codec::encode::encode(&[frame], &options).unwrap().into()
    }

    fn with_asset(result: Result<bytes::Bytes>, f: impl FnOnce(&PostContext)) {
        with_asset_statuses(result, false, f)
    }

    fn with_asset_statuses(result: Result<bytes::Bytes>, thumbor_statuses: bool, f: impl FnOnce(&PostContext)) {
        let mut assets = Assets { thumbor_statuses, ..Assets::default() };
        assets.insert("h/wm.png".into(), result.map(crate::fetched::Source::unbudgeted));
        let image = ImageConfig::default();
        f(&PostContext { box_width: None, box_height: None, assets: &assets, image: &image });
    }

    fn mark_filter(x: &str, y: &str, alpha: i64, w: Option<&str>) -> Watermark {
        Watermark {
            url: "h/wm.png".into(),
            x: x.into(),
            y: y.into(),
            alpha,
            w_ratio: w.map(str::to_string),
            h_ratio: None,
        }
    }

    #[test]
    fn composites_the_mark() {
        // A 2x2 half-transparent red mark at -1,-1 on a 4x3 grey image: thumbor 7.8's filter
        // pastes it at (1, 0) and `_composite.c` gives (159, 31, 31) under it.
        let mark = Bitmap::filled(2, 2, Channels::Rgba, &[255, 0, 0, 128]);
        let img = Bitmap::filled(4, 3, Channels::Rgb, &[64, 64, 64]);
        with_asset(Ok(png(&mark)), |ctx| {
            let out = mark_filter("-1", "-1", 0, None).apply(img.clone(), ctx).unwrap();
            assert_eq!(out.channels, Channels::Rgba);
            let (g, m) = ([64, 64, 64, 255], [159, 31, 31, 255]);
            let expected: Vec<u8> = [g, m, m, g, g, m, m, g, g, g, g, g].concat();
            assert_eq!(out.pixels, expected);
            // alpha 100: the mark is invisible; w_ratio 50 makes it 2x2 on a 4-wide image too.
            let out = mark_filter("0", "0", 100, Some("50")).apply(img.clone(), ctx).unwrap();
            assert!(out.pixels.chunks(4).all(|p| p == [64, 64, 64, 255]));
        });
    }

    #[test]
    fn failures_like_thumbor() {
        let img = || Bitmap::filled(4, 3, Channels::Rgb, &[64, 64, 64]);
        let fetch_error = |kind: ErrorKind| Err(Error::new(kind, "h/wm.png"));
        // Missing mark: 400; origin unreachable: 502 (thumbor statuses: 500); not an image: 500.
        with_asset(fetch_error(ErrorKind::SourceNotFound), |ctx| {
            assert_eq!(mark_filter("0", "0", 0, None).apply(img(), ctx).unwrap_err().status(), 400);
        });
        with_asset(fetch_error(ErrorKind::UpstreamUnreachable), |ctx| {
            assert_eq!(mark_filter("0", "0", 0, None).apply(img(), ctx).unwrap_err().status(), 502);
        });
        with_asset_statuses(fetch_error(ErrorKind::UpstreamUnreachable), true, |ctx| {
            assert_eq!(mark_filter("0", "0", 0, None).apply(img(), ctx).unwrap_err().status(), 500);
        });
        with_asset(Ok(bytes::Bytes::from_static(b"not an image at all")), |ctx| {
            assert_eq!(mark_filter("0", "0", 0, None).apply(img(), ctx).unwrap_err().status(), 500);
        });
        with_asset(fetch_error(ErrorKind::SourceNotAllowed), |ctx| {
            assert_eq!(mark_filter("0", "0", 0, None).apply(img(), ctx).unwrap_err().status(), 400);
        });
        // A ratio that makes the mark larger than the output caps is refused before resizing.
        let mark = Bitmap::filled(2, 2, Channels::Rgba, &[255, 0, 0, 128]);
        with_asset(Ok(png(&mark)), |ctx| {
            let err = mark_filter("0", "0", 0, Some("99999999")).apply(img(), ctx).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TooLarge);
        });
    }
}
