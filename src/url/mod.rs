//! The thumbor URL grammar: a typed request parsed from a path, and the composer that writes it back.
//!
//! `parse` turns `/unsafe/300x200/smart/filters:quality(80)/host/img.jpg` into an [`ImageRequest`]
//! without I/O; `compose` writes the canonical path of a request (used for cache keys and for
//! signing). Both follow libthumbor's `Url.regex()` exactly, quirks included.

mod compose;
mod parse;

pub use compose::{compose, compose_unsigned};
pub use parse::{parse, percent_decode_utf8, python_quote, split_filters, ParseError};

/// Horizontal alignment segment (`left/`, `center/`, `right/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HAlign {
    Left,
    #[default]
    Center,
    Right,
}

/// Vertical alignment segment (`top/`, `middle/`, `bottom/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VAlign {
    Top,
    #[default]
    Middle,
    Bottom,
}

impl HAlign {
    /// The alignment as a fraction of the width (thumbor's `ALIGNMENT_PERCENTAGES`).
    pub fn fraction(self) -> f64 {
        match self {
            HAlign::Left => 0.0,
            HAlign::Center => 0.5,
            HAlign::Right => 1.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HAlign::Left => "left",
            HAlign::Center => "center",
            HAlign::Right => "right",
        }
    }
}

impl VAlign {
    /// The alignment as a fraction of the height.
    pub fn fraction(self) -> f64 {
        match self {
            VAlign::Top => 0.0,
            VAlign::Middle => 0.5,
            VAlign::Bottom => 1.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VAlign::Top => "top",
            VAlign::Middle => "middle",
            VAlign::Bottom => "bottom",
        }
    }
}

/// One side of the `WxH` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A number of pixels; `0` means "proportional to the other side".
    Px(u32),
    /// `orig`: the source's size on this axis.
    Orig,
}

impl Default for Dim {
    fn default() -> Self {
        Dim::Px(0)
    }
}

impl Dim {
    /// True for `0`/missing: the side follows the other one.
    pub fn is_auto(self) -> bool {
        self == Dim::Px(0)
    }
}

/// Reference pixel of `trim:` (`top-left` by default).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum TrimPos {
    #[default]
    TopLeft,
    BottomRight,
    /// `trim:50` parses 50 as the position (a thumbor quirk); thumbor's bounding-box code treats
    /// any position other than `top-left` as bottom-right.
    Other(String),
}

/// The `trim[:pos][:tolerance]` segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Trim {
    pub pos: TrimPos,
    /// Euclidean RGB distance, 0..=442.
    pub tolerance: u32,
}

/// The manual crop segment `LxT:RxB`, in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Crop {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

impl Crop {
    /// thumbor's `should_crop`: any coordinate above zero.
    pub fn is_set(&self) -> bool {
        self.left > 0 || self.top > 0 || self.right > 0 || self.bottom > 0
    }
}

/// `fit-in/` and its `adaptive-`/`full-` prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FitIn {
    pub enabled: bool,
    pub adaptive: bool,
    pub full: bool,
}

/// One `name(args)` item of the `filters:` segment, arguments kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterCall {
    /// The text before the first `(`.
    pub name: String,
    /// The whole item as thumbor hands it to the filter's argument pattern, e.g. `quality(80)`.
    pub raw: String,
}

/// A thumbor request as parsed from its URL path: no I/O, no pixels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ImageRequest {
    /// `unsafe/` was given.
    pub unsafe_: bool,
    /// The signature segment, percent-decoded once, when one was given.
    pub signature: Option<String>,
    pub debug: bool,
    pub meta: bool,
    pub trim: Option<Trim>,
    pub crop: Crop,
    pub fit_in: FitIn,
    pub flip_h: bool,
    pub flip_v: bool,
    pub width: Dim,
    pub height: Dim,
    pub halign: HAlign,
    pub valign: VAlign,
    pub smart: bool,
    /// The `filters:` segment as captured (percent-decoded), without the `filters:` prefix.
    pub filters_raw: Option<String>,
    /// The filter items in URL order.
    pub filters: Vec<FilterCall>,
    /// The image URL, percent-decoded once (what thumbor's loaders receive after their own
    /// normalisation): `host/path`, `http://host/path`, or a file path.
    pub image: String,
}

impl ImageRequest {
    /// The filter items with the given name, in URL order.
    pub fn filters_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a FilterCall> + 'a {
        self.filters.iter().filter(move |f| f.name == name)
    }
}
