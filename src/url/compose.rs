//! [`ImageRequest`] -> canonical path, the inverse of `parse` (segment order as libthumbor writes it).

use std::sync::LazyLock;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use regex::Regex;

use super::{Dim, ImageRequest, TrimPos};

/// Characters that would change meaning if left raw in a path: they are written percent-encoded
/// so that `parse(compose(r)) == r`.
const PATH_UNSAFE: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`').add(b'{').add(b'}');

/// A leading path segment the URL grammar could take for one of its own (`smart/`, `300x200/`,
/// `filters:...`, ...): a superset of every optional segment of the pattern in `parse.rs`.
static SEGMENT_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:unsafe|debug|meta|trim[^/]*|\d+x\d+:\d+x\d+|(?:adaptive-)?(?:full-)?fit-in|-?(?:\d+|orig)?x-?(?:\d+|orig)?",
        r"|left|right|center|top|bottom|middle|smart)/|^filters:"
    ))
    .expect("segment pattern")
});

/// The path after the signature: what libthumbor signs, and Thumbora's canonical cache identity.
/// Defaults are omitted (`center/`, `middle/`, `0x0`), so equivalent URLs compose alike.
///
/// The grammar is ambiguous: an image URL that starts like a segment (`filters:...`, `smart/...`,
/// `300x200/...`) would be read back as that segment. Such an image gets its first character
/// percent-encoded, so that `parse(compose(r)) == r` always holds and two different requests
/// never share a cache key.
pub fn compose_unsigned(req: &ImageRequest) -> String {
    let head = compose_segments(req);
    let image = utf8_percent_encode(&req.image, PATH_UNSAFE).to_string();
    let plain = format!("{head}{image}");
    // Only an image whose first segment reads like a grammar segment can be misread: the common
    // `host/path` skips the re-parse (this runs on every request, cache hits included).
    if !SEGMENT_LIKE.is_match(&image) {
        return plain;
    }
    let reparsed = super::parse(&format!("/unsafe/{plain}"));
    if reparsed.is_ok_and(|r| r.image == req.image) {
        return plain;
    }
    let mut chars = image.chars();
    match chars.next() {
        Some(first) if first != '%' => {
            let mut buf = [0u8; 4];
            let escaped: String = first.encode_utf8(&mut buf).bytes().map(|b| format!("%{b:02X}")).collect();
            format!("{head}{escaped}{}", chars.as_str())
        }
        _ => plain,
    }
}

/// Every segment before the image URL, each followed by `/`.
fn compose_segments(req: &ImageRequest) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(12);
    if req.debug {
        parts.push("debug".into());
    }
    if req.meta {
        parts.push("meta".into());
    }
    if let Some(trim) = &req.trim {
        let mut seg = String::from("trim");
        match &trim.pos {
            TrimPos::TopLeft if trim.tolerance > 0 => seg.push_str(":top-left"),
            TrimPos::TopLeft => {}
            TrimPos::BottomRight => seg.push_str(":bottom-right"),
            TrimPos::Other(pos) => {
                seg.push(':');
                seg.push_str(pos);
            }
        }
        if trim.tolerance > 0 {
            seg.push_str(&format!(":{}", trim.tolerance));
        }
        parts.push(seg);
    }
    if req.crop.is_set() {
        let c = req.crop;
        parts.push(format!("{}x{}:{}x{}", c.left, c.top, c.right, c.bottom));
    }
    if req.fit_in.enabled {
        let adaptive = if req.fit_in.adaptive { "adaptive-" } else { "" };
        let full = if req.fit_in.full { "full-" } else { "" };
        parts.push(format!("{adaptive}{full}fit-in"));
    }
    let has_size = !req.width.is_auto() || !req.height.is_auto();
    if has_size || req.flip_h || req.flip_v {
        let side = |d: Dim| match d {
            Dim::Orig => "orig".to_string(),
            Dim::Px(n) => n.to_string(),
        };
        parts.push(format!(
            "{}{}x{}{}",
            if req.flip_h { "-" } else { "" },
            side(req.width),
            if req.flip_v { "-" } else { "" },
            side(req.height)
        ));
    }
    if req.halign != Default::default() {
        parts.push(req.halign.as_str().into());
    }
    if req.valign != Default::default() {
        parts.push(req.valign.as_str().into());
    }
    if req.smart {
        parts.push("smart".into());
    }
    if let Some(filters) = &req.filters_raw {
        // The grammar ends the segment at the first `)/`: one inside the filters (decoded from
        // `%29/`) keeps its slash encoded.
        let encoded = utf8_percent_encode(filters, PATH_UNSAFE).to_string().replace(")/", ")%2F");
        parts.push(format!("filters:{encoded}"));
    }
    let mut out = String::new();
    for part in parts {
        out.push_str(&part);
        out.push('/');
    }
    out
}

/// The full path: `/unsafe/...` or `/<signature>/...`.
pub fn compose(req: &ImageRequest) -> String {
    let head = match (&req.signature, req.unsafe_) {
        (Some(sig), _) => sig.clone(),
        (None, _) => "unsafe".to_string(),
    };
    format!("/{head}/{}", compose_unsigned(req))
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const ROUND_TRIP: &[&str] = &[
        "/unsafe/300x200/example.com/img.jpg",
        "/unsafe/example.com/img.jpg",
        "/unsafe/debug/meta/trim/10x10:200x200/fit-in/-300x-200/left/top/smart/filters:a(1):b()/h/i.png",
        "/unsafe/trim:bottom-right:40/h/i.png",
        "/unsafe/trim:top-left:1/h/i.png",
        "/unsafe/trim:50/h/i.png",
        "/unsafe/adaptive-fit-in/300x0/h/i.png",
        "/unsafe/full-fit-in/0x300/h/i.png",
        "/unsafe/adaptive-full-fit-in/origx300/h/i.png",
        "/unsafe/-x-/h/i.png",
        "/unsafe/-0x0/h/i.png",
        "/unsafe/right/bottom/h/i.png",
        "/unsafe/center/middle/h/i.png",
        "/unsafe/abcx200/h/i.png",
        "/unsafe/filters:watermark(http://w/m.png,-10,10p,50)/http://h/i.png",
        "/unsafe/300x200/http%3A%2F%2Fh%2Fa%2520b%3Fc.png",
        "/unsafe/300x200/h/caf%C3%A9.png",
        "/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x200/my.server.com/some/path/to/image.jpg",
        // Images that look like segments (the parser saw them as images: an earlier segment or
        // the order made them so).
        "/unsafe/300x200/filters:format%28png%29/h/i.jpg",
        "/unsafe/smart/300x200/h/i.jpg",
        "/unsafe/filters:a(1)/smart/h/i.jpg",
        "/unsafe/top/left/h/i.jpg",
        "/unsafe/meta/debug/h/i.jpg",
        "/unsafe/-/h/i.jpg",
        // A `)/` inside the filters, decoded from `%29/` (found by the url fuzz target).
        "/unsafe/filters:a(1%29/b(2)/h/i.jpg",
    ];

    #[test]
    fn parse_compose_round_trip() {
        for path in ROUND_TRIP {
            let parsed = parse(path).unwrap();
            let composed = compose(&parsed);
            let reparsed = parse(&composed).unwrap_or_else(|e| panic!("{path} -> {composed}: {e}"));
            assert_eq!(parsed, reparsed, "{path} -> {composed}");
        }
    }

    #[test]
    fn any_image_round_trips_after_any_segments() {
        let images = [
            "a",
            "h/i.jpg",
            "h:80/i.png",
            "smart/x",
            "left/x",
            "top/x",
            "-/x",
            "x/y",
            "1x1/y",
            "-1x-/y",
            "orig/y",
            "origx/y",
            "fit-in/y",
            "full-fit-in/y",
            "filters:a(1)/y",
            "filters:/y",
            "trim/y",
            "trim:5/y",
            "10x10:20x20/y",
            "meta/x",
            "debug/x",
            "unsafe/x",
            "%2F/x",
            "x",
        ];
        let heads = ["", "300x200/", "smart/", "filters:q(1)/", "meta/fit-in/10x10/left/"];
        for head in heads {
            for image in images {
                let path = format!("/unsafe/{head}{image}");
                let mut request = parse(&path).unwrap();
                // Whatever the parser made of it, force this exact image and compose again.
                request.image = crate::url::percent_decode_utf8(image).unwrap();
                let reparsed = parse(&compose(&request)).unwrap();
                assert_eq!(reparsed, request, "{path} -> {}", compose(&request));
            }
        }
    }

    #[test]
    fn defaults_are_omitted() {
        let a = parse("/unsafe/0x0/center/middle/h/i.png").unwrap();
        let b = parse("/unsafe/h/i.png").unwrap();
        assert_eq!(compose_unsigned(&a), compose_unsigned(&b));
        assert_eq!(compose_unsigned(&b), "h/i.png");
    }

    #[test]
    fn libthumbor_order() {
        let r = parse("/unsafe/meta/10x10:200x200/fit-in/300x200/right/smart/filters:quality(9)/h/i").unwrap();
        assert_eq!(compose_unsigned(&r), "meta/10x10:200x200/fit-in/300x200/right/smart/filters:quality(9)/h/i");
    }
}
