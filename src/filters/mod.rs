//! thumbor's filters: one file per filter, named as in the URL, with its row of the table
//! (argument patterns ported from the filter's `@filter_method`, and the phase it runs in); one
//! list, `filters!`, declaring the files and the table. Filters that change the frames implement
//! [`PixelFilter`]; those that change the request are [`Filter`] variants the pipeline reads.
//!
//! Parsing follows thumbor: an item whose name is unknown, or whose arguments do not match the
//! filter's pattern, is ignored (or refused with `strict_filters`). Patterns are compiled with the
//! `regex` crate, which runs in linear time: no argument can make parsing slow.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use regex::Regex;

use crate::codec::Bitmap;
use crate::config::ImageConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::url::FilterCall;

pub mod color;
#[cfg(test)]
pub(crate) mod testing;

/// Declares each filter's module (`src/filters/<name>.rs`, `<name>` being the URL word) and its
/// row in the table, from one list: adding a filter is its file and its name here.
macro_rules! filters {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// Every filter Thumbora knows: the one table, one row per module.
        const SPECS: &[&Spec] = &[$(&$name::SPEC),*];

        /// The module each row of [`SPECS`] comes from, for the check that names match.
        #[cfg(test)]
        const MODULES: &[&str] = &[$(stringify!($name)),*];
    };
}

filters! {
    autojpg, background_color, blur, brightness, colorize, contrast, convolution, curve, equalize,
    extract_focal, fill, focal, format, frame, grayscale, max_age, max_bytes, no_upscale, noise,
    proportion, quality, rgb, rotate, round_corner, saturation, sharpen, stretch, strip_exif,
    strip_icc, upscale, watermark,
}

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

/// A filter the pipeline does not read, implemented in its own module: one that changes the
/// frames, or one with no effect in Thumbora (`extract_focal`). The pipeline runs
/// those in the post-transform phase on every frame, in URL order.
pub trait PixelFilter: fmt::Debug + Send + Sync {
    /// The filter's row in the table (its name and phase).
    fn spec(&self) -> &'static Spec;

    /// Apply the filter to one frame.
    fn apply(&self, bitmap: Bitmap, ctx: &PostContext) -> Result<Bitmap>;

    /// Work per pixel of the image the filter runs on, in kernel taps: its kernel's size for the
    /// convolutions, 1 for filters that visit each pixel once.
    fn taps_per_pixel(&self) -> u64 {
        1
    }

    /// Memory the filter allocates beside the image it runs on, per pixel: a new canvas, or an
    /// RGBA copy, unless it says more.
    fn scratch_bytes_per_pixel(&self) -> u64 {
        4
    }

    /// The image URL the filter loads (watermark, frame), fetched before rendering.
    fn asset_url(&self) -> Option<&str> {
        None
    }

    /// Whether the filter grows the image to the requested box (`fill`), so the box is what the
    /// output caps and the memory estimate must count.
    fn grows_output(&self) -> bool {
        false
    }
}

/// A parsed pixel filter. Two are equal when they print the same (same filter, same arguments).
#[derive(Clone)]
pub struct Pixels(Arc<dyn PixelFilter>);

impl Pixels {
    pub fn new(filter: impl PixelFilter + 'static) -> Self {
        Pixels(Arc::new(filter))
    }
}

impl std::ops::Deref for Pixels {
    type Target = dyn PixelFilter;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// A parsed filter: a variant per filter that changes the request (read by the pipeline, which
/// sets its field in `pipeline::RequestOptions` or, for `upscale`, resizes), and every filter
/// that changes the frames behind [`Pixels`].
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Autojpg(autojpg::Autojpg),
    Focal(focal::Focal),
    Format(format::FormatFilter),
    MaxAge(u64),
    MaxBytes(max_bytes::MaxBytes),
    NoUpscale,
    Quality(u8),
    Stretch,
    StripIcc(strip_icc::StripIcc),
    StripExif(strip_exif::StripExif),
    Upscale,
    Pixels(Pixels),
}

impl Filter {
    /// The filter's row in the table.
    pub fn spec(&self) -> &'static Spec {
        match self {
            Filter::Autojpg(_) => &autojpg::SPEC,
            Filter::Focal(_) => &focal::SPEC,
            Filter::Format(_) => &format::SPEC,
            Filter::MaxAge(_) => &max_age::SPEC,
            Filter::MaxBytes(_) => &max_bytes::SPEC,
            Filter::NoUpscale => &no_upscale::SPEC,
            Filter::Quality(_) => &quality::SPEC,
            Filter::Stretch => &stretch::SPEC,
            Filter::StripIcc(_) => &strip_icc::SPEC,
            Filter::StripExif(_) => &strip_exif::SPEC,
            Filter::Upscale => &upscale::SPEC,
            Filter::Pixels(p) => p.spec(),
        }
    }

    /// When the filter runs, as its `SPEC` says.
    pub fn phase(&self) -> Phase {
        self.spec().phase
    }

    /// Apply a post-transform pixel filter to one frame. Filters that only change the request
    /// (quality, format, ...) or are handled by the pipeline (upscale) return the frame as is.
    pub fn apply(&self, bitmap: Bitmap, ctx: &PostContext) -> Result<Bitmap> {
        match self {
            Filter::Pixels(p) => p.apply(bitmap, ctx),
            _ => Ok(bitmap),
        }
    }

    /// The image URL this filter loads (watermark, frame), fetched before rendering.
    pub fn asset_url(&self) -> Option<&str> {
        match self {
            Filter::Pixels(p) => p.asset_url(),
            _ => None,
        }
    }

    /// Work per pixel of the image this filter runs on, in kernel taps (see
    /// [`PixelFilter::taps_per_pixel`]); request filters count one visit.
    pub fn taps_per_pixel(&self) -> u64 {
        match self {
            Filter::Pixels(p) => p.taps_per_pixel(),
            _ => 1,
        }
    }

    /// Memory the filter allocates beside the image it runs on, per pixel (see
    /// [`PixelFilter::scratch_bytes_per_pixel`]); request filters count a canvas.
    pub fn scratch_bytes_per_pixel(&self) -> u64 {
        match self {
            Filter::Pixels(p) => p.scratch_bytes_per_pixel(),
            _ => 4,
        }
    }

    /// Whether the filter grows the image to the requested box: `upscale()`, and the pixel
    /// filters that say so (`fill()`).
    pub fn grows_output(&self) -> bool {
        match self {
            Filter::Upscale => true,
            Filter::Pixels(p) => p.grows_output(),
            _ => false,
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

    /// The URL word, the module and the row are one name.
    #[test]
    fn rows_are_named_after_their_modules() {
        assert_eq!(SPECS.len(), MODULES.len());
        for (spec, module) in SPECS.iter().zip(MODULES) {
            assert_eq!(spec.name, *module);
        }
    }

    /// Every file in `src/filters/` is a listed filter, or one of the helper modules (a file left
    /// out of `filters!` would not even be compiled).
    #[test]
    fn every_filter_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/filters");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".rs").map(String::from))
            .filter(|name| !["mod", "color", "testing"].contains(&name.as_str()))
            .collect();
        files.sort();
        let mut listed = MODULES.to_vec();
        listed.sort();
        assert_eq!(files, listed);
    }

    /// An item of every filter: each parses (strictly) into a filter that reports its own row,
    /// and the phases are the ones thumbor gives.
    #[test]
    fn parsed_filters_report_their_row() {
        let items = "autojpg():background_color(red):blur(2):brightness(10):colorize(10,20,30,ff0000):\
                     contrast(10):convolution(1;2;1;2;4;2;1;2;1,3,true):curve([(0,0)],[],[],[]):equalize():\
                     extract_focal():fill(blur):focal(10x10:20x20):format(png):frame(f.png):grayscale():\
                     max_age(60):max_bytes(1000):no_upscale():noise(10):proportion(0.5):quality(80):\
                     rgb(1,2,3):rotate(90):round_corner(10,255,255,255):saturation(1.5):sharpen(1,1,true):\
                     stretch():strip_exif():strip_icc():upscale():watermark(w.png,10,10,50)";
        let calls = split_filters(items);
        let filters = parse_all(&calls, true).unwrap();
        assert_eq!(filters.len(), calls.len());
        for (call, filter) in calls.iter().zip(&filters) {
            assert_eq!(filter.spec().name, call.name, "{filter:?}");
        }
        let named = |phase| filters.iter().filter(|f| f.phase() == phase).map(|f| f.spec().name).collect::<Vec<_>>();
        assert_eq!(named(Phase::PreLoad), ["extract_focal", "focal", "stretch"]);
        assert_eq!(named(Phase::AfterLoad), ["no_upscale"]);
        assert_eq!(named(Phase::PostTransform).len(), filters.len() - 4);
    }

    /// Costs, scratch, assets and growth: the filter's own, or the defaults.
    #[test]
    fn pixel_filter_properties() {
        let one = |raw: &str| parse(raw).pop().unwrap();
        let costs = |raw: &str| {
            let f = one(raw);
            (f.taps_per_pixel(), f.scratch_bytes_per_pixel(), f.grows_output(), f.asset_url().map(String::from))
        };
        assert_eq!(costs("blur(3)"), (14, 8, false, None));
        assert_eq!(costs("convolution(1;2;1;2;4;2;1;2;1,3,true)"), (9, 8, false, None));
        assert_eq!(costs("sharpen(1,1,true)"), (135, 12, false, None));
        assert_eq!(costs("fill(blur)"), (202, 16, true, None));
        assert_eq!(costs("fill(red)"), (1, 4, true, None));
        assert_eq!(costs("upscale()"), (1, 4, true, None));
        assert_eq!(costs("quality(80)"), (1, 4, false, None));
        assert_eq!(costs("grayscale()"), (1, 4, false, None));
        assert_eq!(costs("watermark(w.png,10,10,50)"), (1, 4, false, Some("w.png".into())));
        assert_eq!(costs("frame(f.png)"), (1, 4, false, Some("f.png".into())));
        assert_eq!(scratch_bytes_per_pixel(&parse("grayscale():blur(3):sharpen(1,1,true)")), 12);
        assert_eq!(scratch_bytes_per_pixel(&[]), 0);
    }

    #[test]
    fn pixel_filters_compare_by_value() {
        assert_eq!(parse("blur(3)"), parse("blur( 3 )"));
        assert_ne!(parse("blur(3)"), parse("blur(4)"));
        assert_ne!(parse("grayscale()"), parse("equalize()"));
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
