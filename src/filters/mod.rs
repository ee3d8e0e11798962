//! thumbor's filters: one table of argument patterns (ported from each filter's
//! `@filter_method`), one file per filter named as in the URL, and the phase each runs in.
//!
//! Parsing follows thumbor: an item whose name is unknown, or whose arguments do not match the
//! filter's pattern, is ignored (or refused with `strict_filters`). Patterns are compiled with the
//! `regex` crate, which runs in linear time: no argument can make parsing slow.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, OnceLock};

use regex::Regex;

use crate::codec::Bitmap;
use crate::config::ImageConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::url::FilterCall;

pub mod autojpg;
pub mod background_color;
pub mod blur;
pub mod brightness;
pub mod color;
pub mod colorize;
pub mod contrast;
pub mod convolution;
pub mod curve;
pub mod equalize;
pub mod extract_focal;
pub mod fill;
pub mod focal;
pub mod format;
pub mod frame;
pub mod grayscale;
pub mod max_age;
pub mod max_bytes;
pub mod no_upscale;
pub mod noise;
pub mod proportion;
pub mod quality;
pub mod rgb;
pub mod rotate;
pub mod round_corner;
pub mod saturation;
pub mod sharpen;
pub mod stretch;
pub mod strip_exif;
pub mod strip_icc;
#[cfg(test)]
pub(crate) mod testing;
pub mod upscale;
pub mod watermark;

/// When a filter runs (thumbor's `PHASE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the source is loaded: changes the request (`focal`, `stretch`).
    PreLoad,
    /// After loading, before the transformer (`no_upscale`).
    AfterLoad,
    /// On the transformed image, in URL order.
    PostTransform,
}

/// One argument's pattern, as thumbor's `BaseFilter` defines them.
#[derive(Debug, Clone, Copy)]
pub enum Param {
    PositiveNumber,
    PositiveNonZeroNumber,
    Number,
    DecimalNumber,
    Boolean,
    String,
    /// A filter-specific pattern.
    Custom(&'static str),
}

impl Param {
    fn pattern(self) -> &'static str {
        match self {
            Param::PositiveNumber => r"[\d]+",
            Param::PositiveNonZeroNumber => r"[\d]*[1-9][\d]*",
            Param::Number => r"[-]?[\d]+",
            Param::DecimalNumber => r"[-]?(?:(?:[\d]+\.?[\d]*)|(?:[\d]*\.?[\d]+))",
            Param::Boolean => r"[Tt]rue|[Ff]alse|1|0",
            Param::String => r"(?:'.+?')|(?:[^,]+?)",
            Param::Custom(p) => p,
        }
    }
}

/// A filter's name, argument patterns and constructor.
pub struct Spec {
    pub name: &'static str,
    pub params: &'static [Param],
    /// Arguments from this index on are optional (they have defaults in thumbor).
    pub required: usize,
    pub phase: Phase,
    /// Build the filter from the matched arguments (missing optional ones are absent); `None`
    /// when the values are out of range.
    pub build: fn(&Args) -> Option<Filter>,
}

/// The argument strings a filter's pattern captured, in order.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: Vec<String>,
}

impl Args {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn raw(&self, i: usize) -> Option<&str> {
        self.values.get(i).map(String::as_str)
    }

    /// An integer argument (saturating: thumbor's ints are unbounded).
    pub fn int(&self, i: usize) -> Option<i64> {
        let s = self.raw(i)?;
        s.parse::<i64>().ok().or_else(|| {
            // Out of range: saturate in the number's direction.
            Some(if s.starts_with('-') { i64::MIN } else { i64::MAX })
        })
    }

    pub fn float(&self, i: usize) -> Option<f64> {
        self.raw(i)?.parse::<f64>().ok()
    }

    /// thumbor's Boolean: `true`, `True` and `1` are true.
    pub fn boolean(&self, i: usize) -> Option<bool> {
        self.raw(i).map(|v| matches!(v, "true" | "True" | "1"))
    }

    /// thumbor's String: surrounding single quotes removed.
    pub fn string(&self, i: usize) -> Option<String> {
        let v = self.raw(i)?;
        Some(match v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            Some(inner) if !inner.is_empty() => inner.to_string(),
            _ => v.to_string(),
        })
    }
}

/// A parsed filter. Request-changing filters carry their value; pixel filters carry their
/// arguments and are applied by their module.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Autojpg(autojpg::Autojpg),
    BackgroundColor(background_color::BackgroundColor),
    Blur(blur::Blur),
    Brightness(brightness::Brightness),
    Colorize(colorize::Colorize),
    Contrast(contrast::Contrast),
    Convolution(convolution::Convolution),
    Curve(curve::Curve),
    Equalize(equalize::Equalize),
    ExtractFocal(extract_focal::ExtractFocal),
    Fill(fill::Fill),
    Focal(focal::Focal),
    Format(format::FormatFilter),
    Frame(frame::Frame),
    Grayscale(grayscale::Grayscale),
    MaxAge(u64),
    MaxBytes(max_bytes::MaxBytes),
    NoUpscale,
    Noise(noise::Noise),
    Proportion(proportion::Proportion),
    Quality(u8),
    Rgb(rgb::Rgb),
    Rotate(rotate::Rotate),
    RoundCorner(round_corner::RoundCorner),
    Saturation(saturation::Saturation),
    Sharpen(sharpen::Sharpen),
    Stretch,
    StripExif(strip_exif::StripExif),
    StripIcc(strip_icc::StripIcc),
    Upscale,
    Watermark(watermark::Watermark),
}

impl Filter {
    pub fn phase(&self) -> Phase {
        match self {
            Filter::Focal(_) | Filter::Stretch | Filter::ExtractFocal(_) => Phase::PreLoad,
            Filter::NoUpscale => Phase::AfterLoad,
            _ => Phase::PostTransform,
        }
    }

    /// Apply a post-transform pixel filter to one frame. Filters that only change the request
    /// (quality, format, ...) or are handled by the pipeline (upscale) return the frame as is.
    pub fn apply(&self, bitmap: Bitmap, ctx: &PostContext) -> Result<Bitmap> {
        match self {
            Filter::BackgroundColor(f) => f.apply(bitmap, ctx),
            Filter::Blur(f) => f.apply(bitmap, ctx),
            Filter::Brightness(f) => f.apply(bitmap, ctx),
            Filter::Colorize(f) => f.apply(bitmap, ctx),
            Filter::Contrast(f) => f.apply(bitmap, ctx),
            Filter::Convolution(f) => f.apply(bitmap, ctx),
            Filter::Curve(f) => f.apply(bitmap, ctx),
            Filter::Equalize(f) => f.apply(bitmap, ctx),
            Filter::Fill(f) => f.apply(bitmap, ctx),
            Filter::Frame(f) => f.apply(bitmap, ctx),
            Filter::Grayscale(f) => f.apply(bitmap, ctx),
            Filter::Noise(f) => f.apply(bitmap, ctx),
            Filter::Proportion(f) => f.apply(bitmap, ctx),
            Filter::Rgb(f) => f.apply(bitmap, ctx),
            Filter::Rotate(f) => f.apply(bitmap, ctx),
            Filter::RoundCorner(f) => f.apply(bitmap, ctx),
            Filter::Saturation(f) => f.apply(bitmap, ctx),
            Filter::Sharpen(f) => f.apply(bitmap, ctx),
            Filter::Watermark(f) => f.apply(bitmap, ctx),
            _ => Ok(bitmap),
        }
    }

    /// The image URL this filter loads (watermark, frame), fetched before rendering.
    pub fn asset_url(&self) -> Option<&str> {
        match self {
            Filter::Watermark(w) => Some(&w.url),
            Filter::Frame(f) => Some(&f.url),
            _ => None,
        }
    }

    /// Work per pixel of the image this filter runs on, in kernel taps: its kernel's size for
    /// the convolutions, 1 for filters that visit each pixel once.
    pub fn taps_per_pixel(&self) -> u64 {
        match self {
            // Two passes of a 2r+1 kernel.
            Filter::Blur(b) => 2 * (2 * u64::from(b.radius) + 1),
            Filter::Convolution(c) => c.matrix.len() as u64,
            // Five à trous levels of a 3x3 hat filter on up to three channels.
            Filter::Sharpen(_) => 5 * 9 * 3,
            // fill(blur): blur(50) of the image.
            Filter::Fill(f) if f.blurs() => 2 * (2 * u64::from(fill::BLUR_RADIUS) + 1),
            _ => 1,
        }
    }

    /// Memory the filter allocates beside the image it runs on, per pixel.
    pub fn scratch_bytes_per_pixel(&self) -> u64 {
        match self {
            // Three float planes.
            Filter::Sharpen(_) => 12,
            // The pass in between, and the result.
            Filter::Blur(_) | Filter::Convolution(_) => 8,
            // A canvas of the box, and (blur) the backdrop and its blurred copies.
            Filter::Fill(f) if f.blurs() => 16,
            // A new canvas, or an RGBA copy.
            _ => 4,
        }
    }
}

/// The scratch memory of the most demanding filter in `filters`, per pixel (filters run one after
/// the other, so their scratch is not added up).
pub fn scratch_bytes_per_pixel(filters: &[Filter]) -> u64 {
    filters.iter().map(Filter::scratch_bytes_per_pixel).max().unwrap_or(0)
}

/// Refuse, from the URL alone, more filter items than `image.max_filters` and more distinct
/// filter images than `image.max_filter_images`: checked before anything is fetched.
pub fn check_request(calls: &[FilterCall], filters: &[Filter], cfg: &ImageConfig) -> Result<()> {
    if calls.len() > cfg.max_filters {
        return Err(Error::new(
            ErrorKind::TooComplex,
            format!("{} filters, above image.max_filters {}", calls.len(), cfg.max_filters),
        ));
    }
    let images: HashSet<&str> = filters.iter().filter_map(Filter::asset_url).collect();
    if images.len() > cfg.max_filter_images {
        return Err(Error::new(
            ErrorKind::TooComplex,
            format!("{} filter images, above image.max_filter_images {}", images.len(), cfg.max_filter_images),
        ));
    }
    Ok(())
}

/// Refuse a filter whose work on `pixels` pixels times `frames` frames exceeds
/// `image.max_filter_cost` (`blur(150)` costs about a second per megapixel): checked from the
/// plan, before anything is decoded.
pub fn check_cost(filters: &[Filter], pixels: u64, frames: u64, cfg: &ImageConfig) -> Result<()> {
    for filter in filters.iter().filter(|f| f.phase() == Phase::PostTransform) {
        let cost = filter.taps_per_pixel().saturating_mul(pixels).saturating_mul(frames);
        if cost > cfg.max_filter_cost {
            return Err(Error::new(
                ErrorKind::TooComplex,
                format!("{filter:?} on {pixels} pixels x {frames} frames: {cost} taps, above image.max_filter_cost"),
            ));
        }
    }
    Ok(())
}

/// Images that filters load (watermarks, frames), fetched before the render starts, keyed by the
/// URL as written in the filter, and decoded once per render on first use.
#[derive(Debug, Default)]
pub struct Assets {
    fetched: HashMap<String, Asset>,
    /// `sources.thumbor_error_statuses`: a failed load is answered as thumbor answers it
    /// (watermark 400, frame 500) rather than with the loader's 502/504.
    pub thumbor_statuses: bool,
}

#[derive(Debug)]
struct Asset {
    /// The bytes keep their share of the fetch memory until the render ends.
    fetched: std::result::Result<crate::fetched::Source, Error>,
    /// The first frame, oriented; or why it could not be decoded (kind and context).
    decoded: OnceLock<std::result::Result<Arc<Bitmap>, (ErrorKind, String)>>,
}

impl Assets {
    pub fn insert(&mut self, url: String, result: std::result::Result<crate::fetched::Source, Error>) {
        self.fetched.insert(url, Asset { fetched: result, decoded: OnceLock::new() });
    }

    /// The fetched bytes of `url`, or the error its fetch ran into.
    pub fn bytes(&self, url: &str) -> std::result::Result<&bytes::Bytes, Error> {
        match self.fetched.get(url).map(|a| &a.fetched) {
            Some(Ok(source)) => Ok(source.bytes()),
            Some(Err(e)) => Err(Error::new(e.kind(), e.context().to_string())),
            None => Err(Error::new(ErrorKind::Internal, format!("asset {url} was not fetched"))),
        }
    }

    /// The memory decoding every fetched image takes at its peak (each is decoded once and kept
    /// for the render), from their headers; images whose header cannot be read count nothing
    /// (they fail before decoding).
    pub fn decoded_bytes(&self, cfg: &ImageConfig) -> u64 {
        self.fetched
            .values()
            .filter_map(|a| a.fetched.as_ref().ok())
            .filter_map(|bytes| crate::codec::probe::probe_with(bytes, cfg.max_frames, cfg.legacy_formats).ok())
            .map(|probe| {
                let options = crate::codec::decode::DecodeOptions { all_frames: false, ..Default::default() };
                // The decode, and the oriented and RGBA copies a filter makes of it.
                crate::codec::decode::peak_bytes(&probe, options) + probe.size.pixels() * 8
            })
            .sum()
    }
}

/// What post-transform filters may read besides the frame they change.
pub struct PostContext<'a> {
    /// `request.width`/`height` as thumbor holds them after fit-in (0: proportional; `None`:
    /// `orig`). `fill()` pads to this box.
    pub box_width: Option<u32>,
    pub box_height: Option<u32>,
    /// Images loaded by watermark() and frame().
    pub assets: &'a Assets,
    /// Limits for anything a filter allocates (output caps, source limits of assets).
    pub image: &'a ImageConfig,
}

impl PostContext<'_> {
    /// An asset's first frame, oriented, within the configured source limits: decoded on first
    /// use and kept for the rest of the render (a watermark on every frame of an animation is
    /// decoded once).
    pub fn asset_bitmap(&self, url: &str) -> Result<Arc<Bitmap>> {
        let bytes = self.assets.bytes(url)?;
        let asset = self.assets.fetched.get(url).expect("fetched, as bytes() found it");
        let decoded = asset.decoded.get_or_init(|| {
            self.decode_asset(url, bytes).map(Arc::new).map_err(|e| (e.kind(), e.context().to_string()))
        });
        decoded.clone().map_err(|(kind, context)| Error::new(kind, context))
    }

    fn decode_asset(&self, url: &str, bytes: &[u8]) -> Result<Bitmap> {
        let probe = crate::codec::probe::probe_with(bytes, self.image.max_frames, self.image.legacy_formats)?;
        crate::limits::check_source(&probe, self.image)?;
        let options = crate::codec::decode::DecodeOptions { all_frames: false, ..Default::default() };
        let decoded = crate::codec::decode::decode(bytes, &probe, options)?;
        let orientation = if self.image.respect_orientation { probe.orientation } else { 1 };
        let first = decoded.canvas.frames.into_iter().next().map(|f| f.bitmap);
        first
            .map(|b| crate::imaging::orient::apply(b, orientation))
            .ok_or_else(|| Error::new(ErrorKind::UndecodableImage, format!("asset {url} has no frame")))
    }
}

/// Every filter Thumbora knows: the one table.
const SPECS: &[&Spec] = &[
    &autojpg::SPEC,
    &background_color::SPEC,
    &blur::SPEC,
    &brightness::SPEC,
    &colorize::SPEC,
    &contrast::SPEC,
    &convolution::SPEC,
    &curve::SPEC,
    &equalize::SPEC,
    &extract_focal::SPEC,
    &fill::SPEC,
    &focal::SPEC,
    &format::SPEC,
    &frame::SPEC,
    &grayscale::SPEC,
    &max_age::SPEC,
    &max_bytes::SPEC,
    &no_upscale::SPEC,
    &noise::SPEC,
    &proportion::SPEC,
    &quality::SPEC,
    &rgb::SPEC,
    &rotate::SPEC,
    &round_corner::SPEC,
    &saturation::SPEC,
    &sharpen::SPEC,
    &stretch::SPEC,
    &strip_exif::SPEC,
    &strip_icc::SPEC,
    &upscale::SPEC,
    &watermark::SPEC,
];

struct Compiled {
    spec: &'static Spec,
    regex: Regex,
}

static REGISTRY: LazyLock<HashMap<&'static str, Compiled>> = LazyLock::new(|| {
    SPECS
        .iter()
        .map(|spec| {
            let regex = Regex::new(&spec_pattern(spec)).expect("filter patterns compile");
            (spec.name, Compiled { spec, regex })
        })
        .collect()
});

/// thumbor's `compile_regex`: `name\((?:\s*(p1)\s*)(?:,\s*(p2)\s*)?\)`, matched at the start
/// of the item only (`re.match`).
fn spec_pattern(spec: &Spec) -> String {
    let mut pattern = format!("^{}\\(", regex::escape(spec.name));
    for (i, param) in spec.params.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let optional = if i >= spec.required { "?" } else { "" };
        pattern.push_str(&format!("(?:{comma}\\s*({})\\s*){optional}", param.pattern()));
    }
    pattern.push_str("\\)");
    pattern
}

/// Why a filter item was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown filter `{0}`")]
    Unknown(String),
    #[error("invalid arguments for `{0}`")]
    BadArguments(String),
}

/// Parse one `filters:` item.
pub fn parse_one(call: &FilterCall) -> Result<Filter, FilterError> {
    let compiled = REGISTRY.get(call.name.as_str()).ok_or_else(|| FilterError::Unknown(call.name.clone()))?;
    let caps = compiled.regex.captures(&call.raw).ok_or_else(|| FilterError::BadArguments(call.name.clone()))?;
    let values = caps.iter().skip(1).flatten().map(|m| m.as_str().to_string()).filter(|v| !v.is_empty()).collect();
    (compiled.spec.build)(&Args { values }).ok_or_else(|| FilterError::BadArguments(call.name.clone()))
}

impl From<FilterError> for Error {
    fn from(e: FilterError) -> Self {
        Error::new(ErrorKind::BadFilter, e.to_string())
    }
}

/// Parse the filter items of a request in URL order. Items thumbor would ignore are skipped,
/// or reported when `strict` is set.
pub fn parse_all(calls: &[FilterCall], strict: bool) -> Result<Vec<Filter>, FilterError> {
    let mut filters = Vec::with_capacity(calls.len());
    for call in calls {
        match parse_one(call) {
            Ok(f) => filters.push(f),
            // `cover()` is not a registered filter: thumbor looks for the text itself.
            Err(FilterError::Unknown(name)) if name == "cover" => {}
            Err(e) if strict => return Err(e),
            Err(e) => log::debug!("filter ignored: {e}"),
        }
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::split_filters;

    fn parse(raw: &str) -> Vec<Filter> {
        parse_all(&split_filters(raw), false).unwrap()
    }

    #[test]
    fn thumbor_patterns() {
        assert_eq!(spec_pattern(&quality::SPEC), r"^quality\((?:\s*([\d]+)\s*)\)");
        assert_eq!(parse("quality(80)"), vec![Filter::Quality(80)]);
        assert_eq!(parse("quality( 80 )"), vec![Filter::Quality(80)]);
        assert_eq!(parse("quality(-1)"), vec![]);
        assert_eq!(parse("quality(abc)"), vec![]);
        assert_eq!(parse("unknown(1):max_age(60)"), vec![Filter::MaxAge(60)]);
    }

    #[test]
    fn prefix_match_like_re_match() {
        // thumbor's `re.match` only anchors at the start: trailing text is ignored.
        assert_eq!(parse("quality(80)x:format(png)"), vec![Filter::Quality(80)]);
    }

    #[test]
    fn strict_mode_reports() {
        let calls = split_filters("quality(x)");
        assert_eq!(parse_all(&calls, true), Err(FilterError::BadArguments("quality".into())));
        let calls = split_filters("nope()");
        assert_eq!(parse_all(&calls, true), Err(FilterError::Unknown("nope".into())));
        assert!(parse_all(&split_filters("cover()"), true).unwrap().is_empty());
    }

    #[test]
    fn crafted_arguments_parse_fast() {
        // thumbor's ReDoS: long runs against backtracking patterns. The regex crate is linear.
        let long = format!("focal({}x)", "1".repeat(100_000));
        let start = std::time::Instant::now();
        let _ = parse(&long);
        let evil = format!("watermark({})", "a,".repeat(50_000));
        let _ = parse(&evil);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn args_helpers() {
        let a = Args { values: vec!["'quoted'".into(), "True".into(), "99999999999999999999".into()] };
        assert_eq!(a.string(0).as_deref(), Some("quoted"));
        assert_eq!(a.boolean(1), Some(true));
        assert_eq!(a.int(2), Some(i64::MAX));
        assert_eq!(a.raw(3), None);
    }
}
