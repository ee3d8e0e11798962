//! The end of the pipeline: post-transform filters in URL order, the output format (thumbor's
//! `define_image_type`), quality, `Vary`, and encoding.

use std::sync::LazyLock;

use regex::Regex;

use super::geometry::{Plan, Size};
use super::resize::{self, RectF};
use super::{Canvas, RenderJob, RenderSettings, Rendered, RequestOptions};
use crate::codec::encode::{self, EncodeOptions};
use crate::codec::probe::Probe;
use crate::codec::{Format, FormatChoice};
use crate::config::ImageConfig;
use crate::error::Result;
use crate::filters::{self, Assets, Filter, PostContext};

/// Whether `format` can carry an animation.
pub fn keeps_animation(format: Format) -> bool {
    matches!(format, Format::Gif)
}

/// thumbor's `define_image_type`: the `format()` filter, else automatic WebP/AVIF by `Accept`
/// (never for animations), else the source's format. `frames` is the output's frame count: an
/// animation stays in its source format whatever `format()` asks (thumbor writes all frames
/// back as a GIF).
pub fn choose_format(job: &RenderJob, opts: &RequestOptions, probe: &Probe, cfg: &ImageConfig, frames: u32) -> Format {
    if frames > 1 {
        return probe.format;
    }
    match opts.format {
        Some(FormatChoice::Format(f)) if encoder_available(f) => return f,
        Some(_) => return probe.format,
        None => {}
    }
    let animated = frames > 1;
    if cfg.auto_webp && job.accepts.webp && !animated {
        return Format::Webp;
    }
    if cfg.auto_avif && job.accepts.avif && !animated && encoder_available(Format::Avif) {
        return Format::Avif;
    }
    probe.format
}

/// Formats Thumbora can write. Without an encoder thumbor keeps the source format; so do we.
pub fn encoder_available(format: Format) -> bool {
    !matches!(format, Format::Avif)
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
            let (Some(bw), Some(bh)) = (plan.box_width, plan.box_height) else { continue };
            if let Some(target) = filters::upscale::target(canvas.size(), bw, bh) {
                super::check_output_limits(target, cfg)?;
                let full = RectF::full(canvas.size());
                canvas.map_frames(|b| resize::resize(&b, full, target))?;
            }
            continue;
        }
        canvas.map_frames(|b| filter.apply(b, &ctx))?;
        super::check_output_limits(canvas.size(), cfg)?;
    }
    Ok(())
}

static FORMAT_IN_FILTERS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"format\([^)]+\)").expect("format pattern"));

/// Pick the format and quality, encode, and describe the response.
pub fn encode(
    canvas: Canvas,
    job: &RenderJob,
    opts: &RequestOptions,
    probe: &Probe,
    settings: &RenderSettings,
) -> Result<Rendered> {
    let cfg = &settings.image;
    let frames = canvas.frames.len() as u32;
    let format = choose_format(job, opts, probe, cfg, frames);
    let size: Size = canvas.size();
    let format =
        if format == Format::Webp && (size.width > 16_383 || size.height > 16_383) { probe.format } else { format };
    let quality = opts.quality.unwrap_or(match format {
        Format::Webp => cfg.webp_quality.unwrap_or(cfg.quality),
        Format::Avif => cfg.avif_quality.unwrap_or(cfg.quality),
        _ => cfg.quality,
    });
    let frames_out = if keeps_animation(format) { &canvas.frames[..] } else { &canvas.frames[..1] };
    let body = encode::encode(
        frames_out,
        &EncodeOptions {
            format,
            quality,
            progressive_jpeg: cfg.progressive_jpeg,
            icc: canvas.icc.as_deref(),
            loop_count: canvas.loop_count,
        },
    )?;
    let animated_gif = format == Format::Gif && frames_out.len() > 1;
    let format_given =
        opts.format.is_some() && job.request.filters_raw.as_deref().is_some_and(|f| FORMAT_IN_FILTERS.is_match(f));
    let vary_accept = (cfg.auto_webp || cfg.auto_avif) && !format_given && !animated_gif;
    Ok(Rendered { body, content_type: format.mime(), max_age: opts.max_age.unwrap_or(settings.max_age), vary_accept })
}
