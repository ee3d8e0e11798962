//! The end of the pipeline: post-transform filters in URL order, the output format (thumbor's
//! `define_image_type`, animations included), quality, the ICC profile, `Vary`, and encoding with
//! `max_bytes()` retries.

use super::{Automatic, RenderSettings, RequestOptions};
use crate::codec::encode::{self, EncodeOptions};
use crate::codec::icc;
use crate::codec::probe::Probe;
use crate::codec::Canvas;
use crate::codec::{Format, FormatChoice};
use crate::config::{IccMode, ImageConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::filters::{self, Assets, Filter, PostContext};
use crate::geometry::{Plan, Size};
use crate::imaging::resize::{self, RectF};
use crate::job::{RenderJob, Rendered};

/// Whether `format` is written with every frame of an animation.
pub fn keeps_animation(format: Format, cfg: &ImageConfig) -> bool {
    match format {
        Format::Gif => true,
        Format::Webp => cfg.animated_webp,
        _ => false,
    }
}

/// The format a `format()` argument asks for (every [`Format`] can be written; `format(heic)`
/// names none: like thumbor without pillow-heif, the source format is kept).
fn requested_format(requested: Option<FormatChoice>) -> Option<Format> {
    match requested {
        Some(FormatChoice::Format(f)) => Some(f),
        _ => None,
    }
}

/// The format an animated source is written as with all its frames, or `None` when the result is
/// a still image of the first frame. A GIF stays an animated GIF whatever `format()` says (as in
/// thumbor), except that `format(webp)` makes it an animated WebP; an animated WebP stays one
/// unless `format()` asks for a still format (thumbor always flattens it). `image.animated_webp:
/// false` restores thumbor's behaviour.
pub fn animated_format(source: Format, requested: Option<FormatChoice>, cfg: &ImageConfig) -> Option<Format> {
    let requested = requested_format(requested);
    match source {
        Format::Gif if requested == Some(Format::Webp) && cfg.animated_webp => Some(Format::Webp),
        Format::Gif => Some(Format::Gif),
        Format::Webp if cfg.animated_webp => match requested {
            None | Some(Format::Webp) => Some(Format::Webp),
            Some(Format::Gif) => Some(Format::Gif),
            Some(_) => None,
        },
        _ => None,
    }
}

/// The formats `choose_format` could pick for this request, before the pixels are known (an
/// automatic format depends on the client, PNG-to-JPEG on transparency).
fn possible_formats(opts: &RequestOptions, probe: &Probe, cfg: &ImageConfig) -> Vec<Format> {
    if let Some(format) = requested_format(opts.format) {
        return vec![format];
    }
    let mut formats = vec![probe.format, Format::Jpeg];
    if opts.automatic.webp || animated_format(probe.format, opts.format, cfg) == Some(Format::Webp) {
        formats.push(Format::Webp);
    }
    if opts.automatic.avif {
        formats.push(Format::Avif);
    }
    formats
}

/// The formats chosen by `Accept` this render may be written in: those the configuration turns
/// on and the client takes, and whose encoding of `frame_pixels` stays within
/// `image.max_encode_cost`. One that would not is left out (the source's format is written
/// instead) rather than refused: a refusal would make the answer to one URL a 400 or a 200 by
/// the client's `Accept`, and a cache keyed by the URL alone would hand the 400 to every client.
pub fn automatic_formats(job: &RenderJob, cfg: &ImageConfig, frame_pixels: u64) -> Automatic {
    let affordable = |format| frame_pixels.saturating_mul(encode_weight(format, cfg)) <= cfg.max_encode_cost;
    Automatic {
        webp: cfg.auto_webp && job.accepts.webp && affordable(Format::Webp),
        avif: cfg.auto_avif && job.accepts.avif && affordable(Format::Avif),
    }
}

/// The most the encoder may hold per output pixel (working planes and written bytes), for every
/// format this request could be written in: rav1e's AVIF encoder keeps about 20 bytes a pixel,
/// libwebp about 6, the others less than 4.
pub fn encoder_bytes_per_pixel(opts: &RequestOptions, probe: &Probe, cfg: &ImageConfig) -> u64 {
    let bytes = |format: Format| match format {
        Format::Avif => 24,
        Format::Webp => 8,
        _ => 4,
    };
    possible_formats(opts, probe, cfg).into_iter().map(bytes).max().unwrap_or(4)
}

/// Encoding work per output pixel, weighted so that the default cap (10⁸) is about 2 s of one core
/// in every format (measured: JPEG and PNG ~15 ns a pixel, libwebp ~130, GIF's quantisation ~250,
/// rav1e at speed 10 ~280 and 1.6 times as long per speed step below).
fn encode_weight(format: Format, cfg: &ImageConfig) -> u64 {
    match format {
        Format::Jpeg | Format::Png => 1,
        Format::Webp => 6,
        Format::Gif => 12,
        Format::Avif => (15.0 * 1.6f64.powi(10 - i32::from(cfg.avif_speed.clamp(1, 10)))) as u64,
    }
}

/// Refuse an output whose encoding would exceed `image.max_encode_cost` in the costliest format
/// this request could be written in. An encoder writes a frame in one call that no checkpoint can
/// stop (a 50-megapixel AVIF takes minutes), so the cap is per frame; the frames of an animation
/// are written one by one, with the render's checkpoint between them. Checked from the plan,
/// before anything is decoded.
pub fn check_encode_cost(opts: &RequestOptions, probe: &Probe, cfg: &ImageConfig, frame_pixels: u64) -> Result<()> {
    for format in possible_formats(opts, probe, cfg) {
        let cost = frame_pixels.saturating_mul(encode_weight(format, cfg));
        if cost > cfg.max_encode_cost {
            return Err(Error::new(
                ErrorKind::TooComplex,
                format!("{} frame of {frame_pixels} pixels: cost {cost}, above image.max_encode_cost", format.name()),
            ));
        }
    }
    Ok(())
}

/// thumbor's `define_image_type`: the `format()` filter, else automatic WebP, then AVIF, by
/// `Accept` (never for animations), else AUTO_PNG_TO_JPG, else the source's format. An animation
/// (`canvas` with several frames) is written as [`animated_format`] decided.
pub fn choose_format(opts: &RequestOptions, probe: &Probe, cfg: &ImageConfig, canvas: &Canvas) -> Format {
    let animated = canvas.frames.len() > 1;
    if animated {
        return animated_format(probe.format, opts.format, cfg).unwrap_or(probe.format);
    }
    if opts.format.is_some() {
        return requested_format(opts.format).unwrap_or(probe.format);
    }
    if opts.automatic.webp {
        return Format::Webp;
    }
    if opts.automatic.avif {
        return Format::Avif;
    }
    if can_auto_convert_png_to_jpg(opts, probe, cfg, canvas) {
        return Format::Jpeg;
    }
    probe.format
}

/// thumbor's `can_auto_convert_png_to_jpg`, condition for condition: with AUTO_PNG_TO_JPG on, only
/// a request without `autojpg()` converts (thumbor tests `request_override is None`, so even
/// `autojpg(true)` turns it off); with it off, `autojpg()`/`autojpg(true)` turns it on. Only PNG
/// sources whose result has no transparent pixel convert. The filter counts only when
/// `image.autojpg_filter` loads it (thumbor 7.8 does not by default).
fn can_auto_convert_png_to_jpg(opts: &RequestOptions, probe: &Probe, cfg: &ImageConfig, canvas: &Canvas) -> bool {
    let request_override = if cfg.autojpg_filter { opts.autojpg } else { None };
    let enabled = if cfg.auto_png_to_jpg { request_override.is_none() } else { request_override == Some(true) };
    enabled && probe.format == Format::Png && !canvas.frames[0].bitmap.has_transparency()
}

/// Post-transform filters, in URL order, on every frame. Filters that grow the image are checked
/// against the output caps before anything is allocated.
pub fn apply_post_filters(
    canvas: &mut Canvas,
    job: &RenderJob,
    plan: &Plan,
    assets: &Assets,
    cfg: &ImageConfig,
) -> Result<()> {
    let ctx = PostContext { box_width: plan.box_width, box_height: plan.box_height, assets, image: cfg };
    for filter in &job.filters {
        if filter.phase() != filters::Phase::PostTransform {
            continue;
        }
        if let Filter::Upscale = filter {
            // An `orig` side left in the request box: thumbor compares 'orig' with a number (500).
            let (Some(bw), Some(bh)) = (plan.box_width, plan.box_height) else {
                return Err(Error::new(ErrorKind::ThumborFails, "upscale() with an `orig` size"));
            };
            if let Some(target) = filters::upscale::target(canvas.size(), bw, bh) {
                crate::limits::check_output(target, cfg)?;
                let full = RectF::full(canvas.size());
                canvas.map_frames(|b| resize::resize(&b, full, target))?;
            }
            continue;
        }
        canvas.map_frames(|b| filter.apply(b, &ctx))?;
        crate::limits::check_output(canvas.size(), cfg)?;
    }
    Ok(())
}

/// Formats that embed an ICC profile.
fn carries_icc(format: Format) -> bool {
    matches!(format, Format::Jpeg | Format::Png | Format::Webp)
}

/// The profile to embed in a `format` result, converting the pixels to sRGB where the profile
/// cannot travel with them: `image.icc: srgb`, formats without ICC support here (AVIF, GIF),
/// profiles that do not describe RGB (a gray or CMYK profile on decoded RGB pixels). `strip_icc()`
/// drops the profile without converting, as thumbor does (except that `srgb` still converts).
fn output_icc(canvas: &mut Canvas, format: Format, strip_icc: bool, mode: IccMode) -> Option<Vec<u8>> {
    let profile = canvas.icc.take()?;
    let travels = carries_icc(format) && icc::describes_rgb(&profile);
    let convert = match mode {
        IccMode::Srgb => true,
        IccMode::Keep => !strip_icc && !travels,
    };
    if convert {
        let converted = icc::ToSrgb::new(&profile)
            .and_then(|mut to_srgb| canvas.frames.iter_mut().try_for_each(|f| to_srgb.apply(&mut f.bitmap)));
        if let Err(e) = converted {
            log::debug!("{e}; pixels left as they are");
            return (mode == IccMode::Keep && travels).then_some(profile);
        }
        return None;
    }
    (!strip_icc).then_some(profile)
}

/// thumbor's `reload_to_fit_in_kb`, for JPEG and WebP: while the result is over `max_bytes`,
/// quality x0.75 (truncated); below 10, the first result is returned as is. Then thumbor's upsize
/// loop, which with `max(initial, q * 1.1)` always retries the initial quality (known to be too
/// big) and keeps the last fitting result: that retry reuses the first encoding instead of
/// encoding again. `encode_at` re-encodes the same pixels.
pub fn reload_to_fit_in_bytes(
    initial: Vec<u8>,
    initial_quality: u8,
    max_bytes: u64,
    mut encode_at: impl FnMut(u8) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let fits = |r: &[u8]| r.len() as u64 <= max_bytes;
    if fits(&initial) {
        return Ok(initial);
    }
    let mut quality = u32::from(initial_quality);
    let mut results = None::<Vec<u8>>;
    while !results.as_deref().is_some_and(fits) {
        quality = quality * 3 / 4;
        if quality < 10 {
            log::debug!("no quality fits in {max_bytes} bytes");
            return Ok(initial);
        }
        results = Some(encode_at(quality as u8)?);
    }
    let mut results = results.expect("a fitting result");
    let mut prev = results.clone();
    while fits(&results) && quality < u32::from(initial_quality) {
        quality = u32::from(initial_quality).max(quality * 11 / 10);
        prev = results;
        results = if quality == u32::from(initial_quality) { initial.clone() } else { encode_at(quality as u8)? };
    }
    Ok(prev)
}

/// The source's EXIF for the result (thumbor's `PRESERVE_EXIF_INFO`), saying orientation 1 when
/// the pixels were turned upright; none under `strip_exif()`.
fn output_exif(probe: &Probe, opts: &RequestOptions, cfg: &ImageConfig) -> Option<Vec<u8>> {
    let exif = probe.exif.as_deref().filter(|_| cfg.preserve_exif && !opts.strip_exif)?;
    Some(match cfg.respect_orientation && probe.orientation != 1 {
        true => crate::codec::jpeg_markers::upright_exif(exif),
        false => exif.to_vec(),
    })
}

/// Pick the format and quality, encode, and describe the response.
pub fn encode(mut canvas: Canvas, opts: &RequestOptions, probe: &Probe, settings: &RenderSettings) -> Result<Rendered> {
    let cfg = &settings.image;
    let format = choose_format(opts, probe, cfg, &canvas);
    let size: Size = canvas.size();
    let format =
        if format == Format::Webp && (size.width > 16_383 || size.height > 16_383) { probe.format } else { format };
    let quality = opts.quality.unwrap_or(match format {
        Format::Webp => cfg.webp_quality.unwrap_or(cfg.quality),
        Format::Avif => cfg.avif_quality.unwrap_or(cfg.quality),
        _ => cfg.quality,
    });
    let icc = output_icc(&mut canvas, format, opts.strip_icc, cfg.icc);
    let exif = output_exif(probe, opts, cfg);
    let frames_out = if keeps_animation(format, cfg) { &canvas.frames[..] } else { &canvas.frames[..1] };
    let encode_at = |quality: u8| {
        crate::budget::checkpoint()?;
        encode::encode(
            frames_out,
            &EncodeOptions {
                format,
                quality,
                progressive_jpeg: cfg.progressive_jpeg,
                icc: icc.as_deref(),
                exif: exif.as_deref(),
                loop_count: canvas.loop_count,
                avif_speed: cfg.avif_speed,
            },
        )
    };
    let mut body = encode_at(quality)?;
    // Not for animations: thumbor never writes animated WebP, and re-encoding every frame up to
    // eight times would multiply the cost of the largest renders.
    if let Some(max_bytes) = opts.max_bytes {
        if matches!(format, Format::Jpeg | Format::Webp) && frames_out.len() == 1 {
            body = reload_to_fit_in_bytes(body, quality, max_bytes, encode_at)?;
        }
    }
    // The format followed `Accept` unless a `format()` that applied (GIFs skip filters) named it;
    // thumbor sends no `Vary` for an animated GIF.
    let animated_gif = format == Format::Gif && frames_out.len() > 1;
    let vary_accept = cfg.auto_formats() && opts.format.is_none() && !animated_gif;
    Ok(Rendered {
        body,
        content_type: format.mime(),
        max_age: opts.max_age.unwrap_or(settings.max_age),
        vary_accept,
        source_truncated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes whose size is 1000 bytes per quality point, recording the qualities asked for.
    fn sized_by_quality(asked: &mut Vec<u8>) -> impl FnMut(u8) -> Result<Vec<u8>> + '_ {
        |q| {
            asked.push(q);
            Ok(vec![0; usize::from(q) * 1000])
        }
    }

    #[test]
    fn which_animations_stay_animated() {
        let on = ImageConfig::default();
        let off = ImageConfig { animated_webp: false, ..ImageConfig::default() };
        let ask = |f: Format| Some(FormatChoice::Format(f));
        let cases = [
            (Format::Gif, None, &on, Some(Format::Gif)),
            (Format::Gif, ask(Format::Png), &on, Some(Format::Gif)),
            (Format::Gif, ask(Format::Webp), &on, Some(Format::Webp)),
            (Format::Gif, ask(Format::Webp), &off, Some(Format::Gif)),
            (Format::Gif, Some(FormatChoice::SourceFormat), &on, Some(Format::Gif)),
            (Format::Webp, None, &on, Some(Format::Webp)),
            (Format::Webp, ask(Format::Gif), &on, Some(Format::Gif)),
            (Format::Webp, ask(Format::Png), &on, None),
            (Format::Webp, ask(Format::Avif), &on, None),
            (Format::Webp, None, &off, None),
            (Format::Png, None, &on, None),
        ];
        for (source, requested, cfg, expected) in cases {
            assert_eq!(animated_format(source, requested, cfg), expected, "{source:?} {requested:?}");
        }
    }

    #[test]
    fn max_bytes_follows_thumbors_quality_sequence() {
        let mut asked = Vec::new();
        let out = reload_to_fit_in_bytes(vec![0; 80_000], 80, 20_000, sized_by_quality(&mut asked)).unwrap();
        // 80 -> 60 -> 45 -> 33 -> 24 -> 18: the first that fits; the upsize retry at 80 is not re-encoded.
        assert_eq!(asked, vec![60, 45, 33, 24, 18]);
        assert_eq!(out.len(), 18_000);
    }

    #[test]
    fn max_bytes_gives_the_original_when_nothing_fits_or_it_already_fits() {
        let mut asked = Vec::new();
        let out = reload_to_fit_in_bytes(vec![0; 80_000], 80, 100, sized_by_quality(&mut asked)).unwrap();
        assert_eq!(asked, vec![60, 45, 33, 24, 18, 13]);
        assert_eq!(out.len(), 80_000, "quality below 10: the first result");
        asked.clear();
        let out = reload_to_fit_in_bytes(vec![0; 80_000], 80, 80_000, sized_by_quality(&mut asked)).unwrap();
        assert!(asked.is_empty());
        assert_eq!(out.len(), 80_000);
    }
}
