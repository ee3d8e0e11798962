//! Path -> [`ImageRequest`], with libthumbor's regex and tornado's percent-decoding rules.

use std::sync::LazyLock;

use regex::Regex;

use super::{Crop, Dim, FilterCall, FitIn, HAlign, ImageRequest, Trim, TrimPos, VAlign};

/// libthumbor's `Url.regex()`, verbatim, anchored at both ends as tornado anchors its routes.
const THUMBOR_URL_PATTERN: &str = concat!(
    r"^/?",
    r"(?:(?:(?P<unsafe>unsafe)|(?P<hash>.+?))/)?",
    r"(?:(?P<debug>debug)/)?",
    r"(?:(?P<meta>meta)/)?",
    r"(?:(?P<trim>trim(?::(?:top-left|bottom-right))?(?::\d+)?)/)?",
    r"(?:(?P<crop_left>\d+)x(?P<crop_top>\d+):(?P<crop_right>\d+)x(?P<crop_bottom>\d+)/)?",
    r"(?:(?P<adaptive>adaptive-)?(?P<full>full-)?(?P<fit_in>fit-in)/)?",
    r"(?:(?P<horizontal_flip>-)?(?P<width>(?:\d+|orig))?x(?P<vertical_flip>-)?(?P<height>(?:\d+|orig))?/)?",
    r"(?:(?P<halign>left|right|center)/)?",
    r"(?:(?P<valign>top|bottom|middle)/)?",
    r"(?:(?P<smart>smart)/)?",
    r"(?:filters:(?P<filters>.+?\))/)?",
    r"(?P<image>.+)$",
);

static THUMBOR_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(THUMBOR_URL_PATTERN).expect("the thumbor URL pattern compiles"));

/// Why a path is not a thumbor image request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The path does not match the grammar at all (thumbor answers 404: no route).
    #[error("path does not match the thumbor URL grammar")]
    NoMatch,
    /// A segment decodes to bytes that are not UTF-8 (tornado answers 400).
    #[error("invalid UTF-8 in the `{0}` segment")]
    InvalidUtf8(&'static str),
}

impl From<ParseError> for crate::error::Error {
    fn from(e: ParseError) -> Self {
        use crate::error::{Error, ErrorKind};
        match e {
            ParseError::NoMatch => Error::new(ErrorKind::NoRoute, "no thumbor route"),
            ParseError::InvalidUtf8(_) => Error::new(ErrorKind::BadUrl, e.to_string()),
        }
    }
}

/// Parse a request path (without its query string) into an [`ImageRequest`].
///
/// Each captured segment is percent-decoded once, as tornado decodes route arguments.
pub fn parse(path: &str) -> Result<ImageRequest, ParseError> {
    let caps = THUMBOR_URL.captures(path).ok_or(ParseError::NoMatch)?;
    let text = |name: &'static str| -> Result<Option<String>, ParseError> {
        caps.name(name).map(|m| percent_decode_utf8(m.as_str()).ok_or(ParseError::InvalidUtf8(name))).transpose()
    };
    let flag = |name: &str| caps.name(name).is_some();
    let number = |name: &str| caps.name(name).map(|m| parse_u32_saturating(m.as_str())).unwrap_or(0);

    let trim = text("trim")?.map(|t| parse_trim(&t));
    let filters_raw = text("filters")?;
    let filters = filters_raw.as_deref().map(split_filters).unwrap_or_default();

    Ok(ImageRequest {
        unsafe_: flag("unsafe"),
        signature: text("hash")?,
        debug: flag("debug"),
        meta: flag("meta"),
        trim,
        crop: Crop {
            left: number("crop_left"),
            top: number("crop_top"),
            right: number("crop_right"),
            bottom: number("crop_bottom"),
        },
        fit_in: FitIn { enabled: flag("fit_in"), adaptive: flag("adaptive"), full: flag("full") },
        flip_h: flag("horizontal_flip"),
        flip_v: flag("vertical_flip"),
        width: parse_dim(caps.name("width").map(|m| m.as_str())),
        height: parse_dim(caps.name("height").map(|m| m.as_str())),
        halign: match caps.name("halign").map(|m| m.as_str()) {
            Some("left") => HAlign::Left,
            Some("right") => HAlign::Right,
            _ => HAlign::Center,
        },
        valign: match caps.name("valign").map(|m| m.as_str()) {
            Some("top") => VAlign::Top,
            Some("bottom") => VAlign::Bottom,
            _ => VAlign::Middle,
        },
        smart: flag("smart"),
        filters_raw,
        filters,
        image: text("image")?.unwrap_or_default(),
    })
}

/// Split a `filters:` segment the way thumbor's `FiltersFactory` does: on `):`, each item's name
/// being the text before its first `(`, every item but the last getting its `)` back.
pub fn split_filters(raw: &str) -> Vec<FilterCall> {
    let parts: Vec<&str> = raw.split("):").collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| FilterCall {
            name: part.split('(').next().unwrap_or_default().to_string(),
            raw: if i == last { (*part).to_string() } else { format!("{part})") },
        })
        .collect()
}

/// `trim`, `trim:bottom-right`, `trim:top-left:20`, `trim:50` (50 becomes the position).
fn parse_trim(segment: &str) -> Trim {
    let parts: Vec<&str> = segment.split(':').collect();
    let pos = match parts.get(1) {
        None | Some(&"top-left") => TrimPos::TopLeft,
        Some(&"bottom-right") => TrimPos::BottomRight,
        Some(other) => TrimPos::Other((*other).to_string()),
    };
    let tolerance = parts.get(2).map(|t| parse_u32_saturating(t)).unwrap_or(0);
    Trim { pos, tolerance }
}

fn parse_dim(text: Option<&str>) -> Dim {
    match text {
        Some("orig") => Dim::Orig,
        Some(n) => Dim::Px(parse_u32_saturating(n)),
        None => Dim::Px(0),
    }
}

/// Digits to a number, saturating instead of overflowing (Python's ints never overflow; any value
/// this large is refused later by the output caps anyway).
fn parse_u32_saturating(digits: &str) -> u32 {
    digits.bytes().fold(0u32, |acc, b| acc.saturating_mul(10).saturating_add(u32::from(b.wrapping_sub(b'0')).min(9)))
}

/// Python's `urllib.parse.quote(s)` (`safe='/'`): every byte of the UTF-8 but ASCII letters,
/// digits, `_.-~` and `/` as `%XX`. thumbor applies it to signatures it looks for, to the URL in
/// `meta/` JSON, and thumbor-url to the image URL it signs.
pub fn python_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Python's `unquote_to_bytes` followed by a strict UTF-8 decode (tornado's `decode_argument`).
/// Malformed escapes such as `%G1` stay as they are.
pub fn percent_decode_utf8(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_string());
    }
    String::from_utf8(percent_encoding::percent_decode_str(text).collect()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> ImageRequest {
        parse(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn plain_size() {
        let r = p("/unsafe/300x200/example.com/img.jpg");
        assert!(r.unsafe_);
        assert_eq!(r.signature, None);
        assert_eq!((r.width, r.height), (Dim::Px(300), Dim::Px(200)));
        assert_eq!(r.image, "example.com/img.jpg");
    }

    #[test]
    fn every_segment() {
        let r = p("/unsafe/debug/meta/trim:bottom-right:15/10x20:300x400/adaptive-full-fit-in/-300x-200/left/top/smart/filters:quality(80):format(webp)/http://h/i.png");
        assert!(r.debug && r.meta && r.smart && r.flip_h && r.flip_v);
        assert_eq!(r.trim, Some(Trim { pos: TrimPos::BottomRight, tolerance: 15 }));
        assert_eq!(r.crop, Crop { left: 10, top: 20, right: 300, bottom: 400 });
        assert_eq!(r.fit_in, FitIn { enabled: true, adaptive: true, full: true });
        assert_eq!((r.halign, r.valign), (HAlign::Left, VAlign::Top));
        assert_eq!(r.filters_raw.as_deref(), Some("quality(80):format(webp)"));
        let names: Vec<_> = r.filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["quality", "format"]);
        assert_eq!(r.filters[0].raw, "quality(80)");
        assert_eq!(r.filters[1].raw, "format(webp)");
        assert_eq!(r.image, "http://h/i.png");
    }

    #[test]
    fn signature_is_first_segment() {
        let r = p("/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x200/my.server.com/some/path/to/image.jpg");
        assert!(!r.unsafe_);
        assert_eq!(r.signature.as_deref(), Some("8ammJH8D-7tXy6kU3lTvoXlhu4o="));
        assert_eq!(r.image, "my.server.com/some/path/to/image.jpg");
    }

    #[test]
    fn neither_unsafe_nor_signature_makes_the_first_segment_a_signature() {
        let r = p("/300x200/host/img.jpg");
        assert_eq!(r.signature.as_deref(), Some("300x200"));
        assert_eq!(r.image, "host/img.jpg");
    }

    #[test]
    fn unmatched_text_joins_the_image_url() {
        let r = p("/unsafe/abcx200/host/img");
        assert_eq!(r.width, Dim::Px(0));
        assert_eq!(r.image, "abcx200/host/img");
    }

    #[test]
    fn orig_flips_and_empty_sides() {
        let r = p("/unsafe/origx-orig/h/i.jpg");
        assert_eq!((r.width, r.height, r.flip_v), (Dim::Orig, Dim::Orig, true));
        let r = p("/unsafe/-x-/h/i.jpg");
        assert!(r.flip_h && r.flip_v);
        assert_eq!((r.width, r.height), (Dim::Px(0), Dim::Px(0)));
        let r = p("/unsafe/x300/h/i.jpg");
        assert_eq!((r.width, r.height), (Dim::Px(0), Dim::Px(300)));
    }

    #[test]
    fn trim_quirk_takes_a_number_as_position() {
        let r = p("/unsafe/trim:50/h/i.jpg");
        assert_eq!(r.trim, Some(Trim { pos: TrimPos::Other("50".into()), tolerance: 0 }));
        let r = p("/unsafe/trim/h/i.jpg");
        assert_eq!(r.trim, Some(Trim::default()));
    }

    #[test]
    fn filters_end_at_first_paren_slash() {
        let r = p("/unsafe/filters:watermark(http://w/m.png,0,0,0):blur(2)/h/i.jpg");
        assert_eq!(r.filters.len(), 2);
        assert_eq!(r.filters[0].raw, "watermark(http://w/m.png,0,0,0)");
        assert_eq!(r.image, "h/i.jpg");
    }

    #[test]
    fn segments_are_percent_decoded_once() {
        let r = p("/unsafe/300x200/http%3A%2F%2Fhost%2Fa%2520b.jpg");
        assert_eq!(r.image, "http://host/a%20b.jpg");
        assert_eq!(parse("/unsafe/300x200/h/%FF.jpg"), Err(ParseError::InvalidUtf8("image")));
    }

    #[test]
    fn no_image_is_no_match() {
        // `/` alone matches with `/` as the image (thumbor then refuses it as having no host).
        assert_eq!(parse("/").unwrap().image, "/");
        assert_eq!(parse(""), Err(ParseError::NoMatch));
    }

    #[test]
    fn huge_numbers_saturate() {
        let r = p("/unsafe/99999999999999x1/h/i.jpg");
        assert_eq!(r.width, Dim::Px(u32::MAX));
    }

    #[test]
    fn split_filters_matches_thumbor() {
        let f = split_filters("quality(80)x:format(png)");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "quality");
        let f = split_filters("a():b(1,2):c");
        assert_eq!(f.iter().map(|f| f.raw.as_str()).collect::<Vec<_>>(), ["a()", "b(1,2)", "c"]);
    }
}
