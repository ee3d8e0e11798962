//! The render pipeline: source bytes + a [`RenderJob`] -> encoded image (or `meta/` JSON).
//!
//! Two calls, in thumbor's order. [`prepare`] reads only the header: probe and source limits,
//! the request options that pre-load and after-load filters set ([`RequestOptions`]), the
//! geometry plan on the header's size, the decode scale and the memory the render will need
//! (the render pool admits on that estimate). [`render_prepared`] then runs on a render thread:
//! decode (JPEG shrink-on-load when the plan allows) -> orientation -> trim -> smart detection
//! -> manual crop, auto-crop or fit-in, resize, flips (`transform`) -> post-transform filters
//! in URL order, output format and encode (`output`). Each step lives in its own module; this
//! file holds what the steps share and sequences them.

pub mod debug;
pub mod meta;
pub mod output;
pub mod smart;
pub mod transform;
pub mod trim;

use crate::codec::decode::{self, DecodeOptions};
use crate::codec::probe::{self, Probe};
use crate::codec::{Canvas, Format, FormatChoice};
use crate::config::ImageConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::filters::{self, Assets, Filter};
use crate::geometry::{self, FocalPoint, GeometryRequest, Plan, Size};
use crate::imaging::{orient, resize};
use crate::job::{RenderJob, Rendered};
use crate::limits;
use crate::metrics::{Stage, StageClock};
use crate::url::{Crop, Dim};

/// The settings a render reads.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub image: ImageConfig,
    /// Default `max_age` when no `max_age()` filter is given.
    pub max_age: u64,
}

/// Options the request-changing filters set, folded in URL order (the last one wins).
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    pub quality: Option<u8>,
    pub format: Option<FormatChoice>,
    pub max_age: Option<u64>,
    pub stretch: bool,
    pub no_upscale: bool,
    pub focal_points: Vec<FocalPoint>,
    /// `max_bytes()`: re-encode with lower quality until the result fits.
    pub max_bytes: Option<u64>,
    /// `strip_icc()`: no ICC profile in the result.
    pub strip_icc: bool,
    /// `strip_exif()`: no EXIF in the result (with `image.preserve_exif`).
    pub strip_exif: bool,
    /// `autojpg([bool])`: thumbor's per-request override of AUTO_PNG_TO_JPG.
    pub autojpg: Option<bool>,
    /// The formats `Accept` may choose for this render ([`output::automatic_formats`]).
    pub automatic: Automatic,
}

/// Automatic WebP and AVIF (thumbor's AUTO_WEBP, AUTO_AVIF), as far as this render allows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Automatic {
    pub webp: bool,
    pub avif: bool,
}

impl RequestOptions {
    /// Fold the filters in URL order; `post_transform: false` leaves out the post-transform
    /// ones (thumbor skips them for GIF sources).
    pub fn from_filters(filters: &[Filter], post_transform: bool) -> Self {
        let mut o = RequestOptions::default();
        for f in filters.iter().filter(|f| post_transform || f.phase() != crate::filters::Phase::PostTransform) {
            match f {
                Filter::Quality(q) => o.quality = Some(*q),
                Filter::Format(f) => o.format = f.0,
                Filter::MaxAge(s) => o.max_age = Some(*s),
                Filter::Stretch => o.stretch = true,
                Filter::NoUpscale => o.no_upscale = true,
                Filter::Focal(f) => o.focal_points.extend(f.point()),
                Filter::MaxBytes(m) => o.max_bytes = Some(m.bytes),
                Filter::StripIcc(_) => o.strip_icc = true,
                Filter::StripExif(_) => o.strip_exif = true,
                Filter::Autojpg(a) => o.autojpg = Some(a.enabled),
                _ => {}
            }
        }
        o
    }
}

/// `MAX_WIDTH`/`MAX_HEIGHT` also clamp the requested sides.
fn clamp_side(d: Dim, max: u32) -> Dim {
    match d {
        Dim::Px(n) if max > 0 && n > max => Dim::Px(max),
        other => other,
    }
}

/// thumbor runs no post-transform filter on GIF sources (unless `image.gif_filters`).
pub fn post_filters_apply(probe: &Probe, cfg: &ImageConfig) -> bool {
    probe.format != Format::Gif || cfg.gif_filters
}

/// Everything decided from the header, before any pixel is decoded: the sizes, the plan on the
/// header's dimensions and the decode scale. Made once per render (cheap: no pixels), it gives
/// the memory estimate on the async side and is then rendered on a render thread.
pub struct Prepared {
    probe: Probe,
    opts: RequestOptions,
    /// The size the transformer works on (oriented, normalised).
    base: Size,
    geometry: GeometryRequest,
    /// First frame only (`cover()` on a GIF, or an output format without animation).
    first_frame_only: bool,
    /// The plan on the header's size (before trim and smart detection).
    header_plan: Plan,
    /// JPEG shrink-on-load factor (1, 2, 4 or 8).
    shrink: u32,
}

/// Read the header of `source`, refuse over-limit sources and outputs, and decide the sizes, the
/// plan and the decode scale for `job`.
pub fn prepare(job: &RenderJob, source: &[u8], settings: &RenderSettings) -> Result<Prepared> {
    let cfg = &settings.image;
    let mut probe = probe::probe_with(source, cfg.max_frames, cfg.legacy_formats)?;
    if !cfg.animated_gifs && probe.format == Format::Gif {
        // thumbor's `ALLOW_ANIMATED_GIFS = False`: the GIF is read as its first frame alone.
        probe.frames = 1;
    }
    limits::check_source(&probe, cfg)?;
    let (mut opts, base, norm_scale, geometry, first_frame_only) = decide(job, &probe, cfg);
    if opts.no_upscale && (job.request.width == Dim::Orig || job.request.height == Dim::Orig) {
        // thumbor's no_upscale() runs `min('orig', width)`: a TypeError, 500.
        return Err(Error::new(ErrorKind::ThumborFails, "no_upscale() with an `orig` size"));
    }
    let header_plan = planned(base, &geometry)?;
    limits::check_output(header_plan.output, cfg)?;
    let frames = if first_frame_only { 1 } else { u64::from(probe.frames.max(1)) };
    let filtered = filtered_size(&header_plan, job).pixels();
    if post_filters_apply(&probe, cfg) {
        filters::check_cost(&job.filters, filtered, frames, cfg)?;
    }
    opts.automatic = output::automatic_formats(job, cfg, filtered);
    output::check_encode_cost(&opts, &probe, cfg, filtered)?;
    // trim needs every pixel; only libjpeg-turbo decodes at a reduced scale.
    let shrink = if job.request.trim.is_some() || !probe.is_jpeg() {
        1
    } else {
        transform::choose_shrink(&header_plan, base, norm_scale, cfg.jpeg_shrink_margin)
    };
    Ok(Prepared { probe, opts, base, geometry, first_frame_only, header_plan, shrink })
}

impl Prepared {
    /// How the source is decoded.
    fn decode_options(&self, cfg: &ImageConfig) -> DecodeOptions {
        DecodeOptions {
            shrink: self.shrink,
            all_frames: !self.first_frame_only,
            max_frames: cfg.max_frames,
            max_scans: cfg.max_jpeg_scans,
        }
    }

    /// Bytes the render may hold at its peak: the decoder's peak (the decoded frames included),
    /// one oriented or trimmed copy of a frame, the resampled frames, the filters' scratch and the
    /// images they load, and the encoder's buffers. The source bytes are not in it: they are held
    /// by the fetch's own budget. Refuses a box that filters would grow past the caps.
    pub fn memory_estimate(&self, job: &RenderJob, assets: &Assets, cfg: &ImageConfig) -> Result<u64> {
        let decode = decode::peak_bytes(&self.probe, self.decode_options(cfg));
        let decoded_frame = u64::from(decode::shrunk_dimension(self.probe.size.width, self.shrink))
            * u64::from(decode::shrunk_dimension(self.probe.size.height, self.shrink))
            * 4;
        let frames = if self.first_frame_only { 1 } else { u64::from(self.probe.frames.max(1)) };
        // Filters that grow the image to the requested box (upscale, fill) need the box's pixels.
        let grows = job.filters.iter().any(Filter::grows_output);
        if let (true, Some(w), Some(h)) = (grows, self.header_plan.box_width, self.header_plan.box_height) {
            limits::check_output(Size::new(w, h), cfg)?;
        }
        let output = filtered_size(&self.header_plan, job).pixels() * 4;
        let scratch = output / 4 * filters::scratch_bytes_per_pixel(&job.filters);
        // The encoder's working copy (planes, rows) and the bytes it writes.
        let encode = output / 4 * output::encoder_bytes_per_pixel(&self.opts, &self.probe, cfg);
        Ok(decode + decoded_frame + frames * output + scratch + assets.decoded_bytes(cfg) + encode)
    }
}

/// The largest size post-transform filters run on: the output, or the box that `fill()` and
/// `upscale()` grow it to.
fn filtered_size(plan: &Plan, job: &RenderJob) -> Size {
    let grows = job.filters.iter().any(Filter::grows_output);
    match (grows, plan.box_width, plan.box_height) {
        (true, Some(w), Some(h)) => Size::new(w.max(plan.output.width), h.max(plan.output.height)),
        _ => plan.output,
    }
}

/// Request options, working size, geometry request and frame policy for `job` on `probe`.
fn decide(
    job: &RenderJob,
    probe: &Probe,
    cfg: &ImageConfig,
) -> (RequestOptions, Size, (f64, f64), GeometryRequest, bool) {
    let req = &job.request;
    let opts = RequestOptions::from_filters(&job.filters, post_filters_apply(probe, cfg));
    let oriented = probe.oriented_size(cfg.respect_orientation);
    let normalized = geometry::normalize_size(oriented, cfg.max_width, cfg.max_height);
    let base = normalized.unwrap_or(oriented);
    let norm_scale =
        (f64::from(oriented.width) / f64::from(base.width), f64::from(oriented.height) / f64::from(base.height));
    let mut width = clamp_side(req.width, cfg.max_width);
    let mut height = clamp_side(req.height, cfg.max_height);
    let crop = match normalized {
        Some(n) => geometry::translate_crop(req.crop, oriented, n, width, height),
        None => req.crop,
    };
    if opts.no_upscale {
        // `min(request.width, image_size)`; 0 (proportional) stays 0.
        if let Dim::Px(w) = width {
            width = Dim::Px(w.min(base.width));
        }
        if let Dim::Px(h) = height {
            height = Dim::Px(h.min(base.height));
        }
    }
    let cover = probe.is_animated() && req.filters_raw.as_deref().is_some_and(|f| f.contains("cover()"));
    let geometry = GeometryRequest {
        width,
        height,
        crop,
        fit_in: req.fit_in,
        stretch: opts.stretch,
        debug: req.debug,
        halign: req.halign,
        valign: req.valign,
        flip_h: req.flip_h,
        flip_v: req.flip_v,
        focal_points: opts.focal_points.clone(),
    };
    // Animations keep their frames when the output format can carry them (thumbor keeps those of
    // GIFs only; Thumbora also those of animated WebP, see `output::animated_format`).
    let first_frame_only =
        cover || !probe.is_animated() || output::animated_format(probe.format, opts.format, cfg).is_none();
    (opts, base, norm_scale, geometry, first_frame_only)
}

fn planned(size: Size, req: &GeometryRequest) -> Result<Plan> {
    Ok(geometry::plan(size, req)?)
}

/// Render `source` for `job`; `assets` holds the images its filters load.
pub fn render(job: &RenderJob, source: &[u8], assets: &Assets, settings: &RenderSettings) -> Result<Rendered> {
    render_prepared(prepare(job, source, settings)?, job, source, assets, settings)
}

/// Render what [`prepare`] decided.
pub fn render_prepared(
    prep: Prepared,
    job: &RenderJob,
    source: &[u8],
    assets: &Assets,
    settings: &RenderSettings,
) -> Result<Rendered> {
    let cfg = &settings.image;
    let probe = &prep.probe;
    let req = &job.request;
    let mut clock = StageClock::start();

    let decoded = decode::decode(source, probe, prep.decode_options(cfg))?;
    let truncated = decoded.truncated;
    let orientation = if cfg.respect_orientation { probe.orientation } else { 1 };
    let mut canvas = decoded.canvas;
    if orientation != 1 {
        canvas.map_frames(|b| Ok(orient::apply(b, orientation)))?;
    }
    clock.lap(Stage::Decode);

    // Coordinates: the plan speaks in `base` pixels; the canvas may be larger or smaller.
    let mut base = prep.base;
    let mut geometry_req = prep.geometry.clone();
    let mut pre_ops = Vec::new();
    if let Some(trim) = &req.trim {
        if canvas.size() != base {
            let full = resize::RectF::full(canvas.size());
            canvas.map_frames(|b| resize::resize(&b, full, base))?;
        }
        if let Some(rect) = trim::bounding_box(&canvas.frames[0].bitmap, trim) {
            canvas.map_frames(|b| Ok(b.crop(rect.left, rect.top, rect.width(), rect.height())))?;
            pre_ops.push(geometry::Op::Crop(rect));
            base = rect.size();
            geometry_req.crop = shift_crop(geometry_req.crop, rect.left, rect.top);
        }
    }

    if req.smart && cfg.smart_detection {
        geometry_req.focal_points.extend(smart_focal_point(&canvas, base, &geometry_req));
    }

    let plan = planned(base, &geometry_req)?;
    limits::check_output(plan.output, cfg)?;
    transform::execute(&mut canvas, &plan, base)?;
    if req.debug {
        let points = &geometry_req.focal_points;
        if !points.is_empty() {
            canvas.map_frames(|mut b| {
                debug::draw_focal_points(&mut b, points);
                Ok(b)
            })?;
        }
    }
    clock.lap(Stage::Transform);

    if post_filters_apply(probe, cfg) {
        output::apply_post_filters(&mut canvas, job, &plan, assets, cfg)?;
    }
    clock.lap(Stage::Filters);

    if req.meta {
        let info = meta::MetaInfo {
            url: &req.image,
            final_size: canvas.size(),
            // thumbor counts frames of GIFs only.
            frame_count: if probe.format == Format::Gif { probe.frames } else { 1 },
            pre_ops: &pre_ops,
            plan: &plan,
        };
        let callback = job.meta_callback.as_deref();
        return Ok(Rendered {
            body: meta::render(&info, callback).into_bytes(),
            content_type: if callback.is_some() { "text/javascript" } else { "application/json" },
            max_age: prep.opts.max_age.unwrap_or(settings.max_age),
            vary_accept: false,
            source_truncated: truncated,
        });
    }

    let mut rendered = output::encode(canvas, &prep.opts, probe, settings)?;
    clock.lap(Stage::Encode);
    rendered.source_truncated = truncated;
    Ok(rendered)
}

/// `smart/`: detect where the subject is, as a focal point in `base` pixels. Only when an
/// auto-crop will happen (plain `WxH` whose ratio differs from the image's): otherwise the crop
/// does not depend on focal points and detection would be wasted work.
fn smart_focal_point(canvas: &Canvas, base: Size, req: &GeometryRequest) -> Option<FocalPoint> {
    if req.fit_in.enabled || req.stretch {
        return None;
    }
    let manual = geometry::clamp_manual_crop(base, req.crop);
    let within = manual.unwrap_or(geometry::Rect { left: 0, top: 0, right: base.width, bottom: base.height });
    let current = within.size();
    let target = geometry::target_dimensions(current, req.width, req.height).ok()?;
    let alignment = [FocalPoint::from_alignment(req.halign, req.valign, current)];
    let window = geometry::auto_crop(current, target, &alignment).ok()??.size();
    // The canvas may be smaller (shrink-on-load) or larger (MAX_WIDTH) than `base`.
    let size = canvas.size();
    let (fx, fy) = (f64::from(size.width) / f64::from(base.width), f64::from(size.height) / f64::from(base.height));
    let scale_rect = |r: geometry::Rect| geometry::Rect {
        left: (f64::from(r.left) * fx) as u32,
        top: (f64::from(r.top) * fy) as u32,
        right: ((f64::from(r.right) * fx).round() as u32).min(size.width),
        bottom: ((f64::from(r.bottom) * fy).round() as u32).min(size.height),
    };
    let window_c = Size::new(
        ((f64::from(window.width) * fx).round() as u32).max(1),
        ((f64::from(window.height) * fy).round() as u32).max(1),
    );
    let point = smart::detect(&canvas.frames[0].bitmap, scale_rect(within), window_c)?;
    Some(FocalPoint {
        x: (point.x as f64 / fx).round() as i64,
        y: (point.y as f64 / fy).round() as i64,
        width: i64::from(window.width),
        height: i64::from(window.height),
        weight: geometry::PyNum::Int(i64::from(window.width) * i64::from(window.height)),
        origin: point.origin,
    })
}

/// [`prepare`] then [`Prepared::memory_estimate`]: refuses over-limit sources and outputs from
/// the header and estimates the render's peak memory.
pub fn estimate_memory(source: &[u8], job: &RenderJob, assets: &Assets, settings: &RenderSettings) -> Result<u64> {
    prepare(job, source, settings)?.memory_estimate(job, assets, &settings.image)
}

/// thumbor's trim adjustment of the manual crop: coordinates move by the trimmed offset and
/// are clamped at zero.
fn shift_crop(crop: Crop, dx: u32, dy: u32) -> Crop {
    if !crop.is_set() {
        return crop;
    }
    Crop {
        left: crop.left.saturating_sub(dx),
        top: crop.top.saturating_sub(dy),
        right: crop.right.saturating_sub(dx),
        bottom: crop.bottom.saturating_sub(dy),
    }
}
