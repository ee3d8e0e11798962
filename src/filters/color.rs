//! Colour arguments as thumbor reads them for `fill()` and `background_color()`: PIL's
//! `ImageColor.getrgb` on the text, then on `#` + the text.
//!
//! The filters' pattern (`[\w]+`) lets only two of PIL's forms through: a colour name (PIL's
//! `ImageColor.colormap`, the 148 CSS3 names, case-insensitive) and, through thumbor's retry with
//! `#`, hex with 3, 4, 6 or 8 digits (`rgb`, `rgba`, `rrggbb`, `rrggbbaa`). `rgb(...)`, `hsl(...)`
//! and `#...` cannot pass the pattern, so they are not parsed here.

/// An RGBA colour; names and 3/6-digit hex are opaque.
pub type Rgba = [u8; 4];

/// PIL 12's `ImageColor.colormap`, sorted by name (binary search), as `0xRRGGBB`.
const NAMES: &[(&str, u32)] = &[
    ("aliceblue", 0xf0f8ff),
    ("antiquewhite", 0xfaebd7),
    ("aqua", 0x00ffff),
    ("aquamarine", 0x7fffd4),
    ("azure", 0xf0ffff),
    ("beige", 0xf5f5dc),
    ("bisque", 0xffe4c4),
    ("black", 0x000000),
    ("blanchedalmond", 0xffebcd),
    ("blue", 0x0000ff),
    ("blueviolet", 0x8a2be2),
    ("brown", 0xa52a2a),
    ("burlywood", 0xdeb887),
    ("cadetblue", 0x5f9ea0),
    ("chartreuse", 0x7fff00),
    ("chocolate", 0xd2691e),
    ("coral", 0xff7f50),
    ("cornflowerblue", 0x6495ed),
    ("cornsilk", 0xfff8dc),
    ("crimson", 0xdc143c),
    ("cyan", 0x00ffff),
    ("darkblue", 0x00008b),
    ("darkcyan", 0x008b8b),
    ("darkgoldenrod", 0xb8860b),
    ("darkgray", 0xa9a9a9),
    ("darkgreen", 0x006400),
    ("darkgrey", 0xa9a9a9),
    ("darkkhaki", 0xbdb76b),
    ("darkmagenta", 0x8b008b),
    ("darkolivegreen", 0x556b2f),
    ("darkorange", 0xff8c00),
    ("darkorchid", 0x9932cc),
    ("darkred", 0x8b0000),
    ("darksalmon", 0xe9967a),
    ("darkseagreen", 0x8fbc8f),
    ("darkslateblue", 0x483d8b),
    ("darkslategray", 0x2f4f4f),
    ("darkslategrey", 0x2f4f4f),
    ("darkturquoise", 0x00ced1),
    ("darkviolet", 0x9400d3),
    ("deeppink", 0xff1493),
    ("deepskyblue", 0x00bfff),
    ("dimgray", 0x696969),
    ("dimgrey", 0x696969),
    ("dodgerblue", 0x1e90ff),
    ("firebrick", 0xb22222),
    ("floralwhite", 0xfffaf0),
    ("forestgreen", 0x228b22),
    ("fuchsia", 0xff00ff),
    ("gainsboro", 0xdcdcdc),
    ("ghostwhite", 0xf8f8ff),
    ("gold", 0xffd700),
    ("goldenrod", 0xdaa520),
    ("gray", 0x808080),
    ("green", 0x008000),
    ("greenyellow", 0xadff2f),
    ("grey", 0x808080),
    ("honeydew", 0xf0fff0),
    ("hotpink", 0xff69b4),
    ("indianred", 0xcd5c5c),
    ("indigo", 0x4b0082),
    ("ivory", 0xfffff0),
    ("khaki", 0xf0e68c),
    ("lavender", 0xe6e6fa),
    ("lavenderblush", 0xfff0f5),
    ("lawngreen", 0x7cfc00),
    ("lemonchiffon", 0xfffacd),
    ("lightblue", 0xadd8e6),
    ("lightcoral", 0xf08080),
    ("lightcyan", 0xe0ffff),
    ("lightgoldenrodyellow", 0xfafad2),
    ("lightgray", 0xd3d3d3),
    ("lightgreen", 0x90ee90),
    ("lightgrey", 0xd3d3d3),
    ("lightpink", 0xffb6c1),
    ("lightsalmon", 0xffa07a),
    ("lightseagreen", 0x20b2aa),
    ("lightskyblue", 0x87cefa),
    ("lightslategray", 0x778899),
    ("lightslategrey", 0x778899),
    ("lightsteelblue", 0xb0c4de),
    ("lightyellow", 0xffffe0),
    ("lime", 0x00ff00),
    ("limegreen", 0x32cd32),
    ("linen", 0xfaf0e6),
    ("magenta", 0xff00ff),
    ("maroon", 0x800000),
    ("mediumaquamarine", 0x66cdaa),
    ("mediumblue", 0x0000cd),
    ("mediumorchid", 0xba55d3),
    ("mediumpurple", 0x9370db),
    ("mediumseagreen", 0x3cb371),
    ("mediumslateblue", 0x7b68ee),
    ("mediumspringgreen", 0x00fa9a),
    ("mediumturquoise", 0x48d1cc),
    ("mediumvioletred", 0xc71585),
    ("midnightblue", 0x191970),
    ("mintcream", 0xf5fffa),
    ("mistyrose", 0xffe4e1),
    ("moccasin", 0xffe4b5),
    ("navajowhite", 0xffdead),
    ("navy", 0x000080),
    ("oldlace", 0xfdf5e6),
    ("olive", 0x808000),
    ("olivedrab", 0x6b8e23),
    ("orange", 0xffa500),
    ("orangered", 0xff4500),
    ("orchid", 0xda70d6),
    ("palegoldenrod", 0xeee8aa),
    ("palegreen", 0x98fb98),
    ("paleturquoise", 0xafeeee),
    ("palevioletred", 0xdb7093),
    ("papayawhip", 0xffefd5),
    ("peachpuff", 0xffdab9),
    ("peru", 0xcd853f),
    ("pink", 0xffc0cb),
    ("plum", 0xdda0dd),
    ("powderblue", 0xb0e0e6),
    ("purple", 0x800080),
    ("rebeccapurple", 0x663399),
    ("red", 0xff0000),
    ("rosybrown", 0xbc8f8f),
    ("royalblue", 0x4169e1),
    ("saddlebrown", 0x8b4513),
    ("salmon", 0xfa8072),
    ("sandybrown", 0xf4a460),
    ("seagreen", 0x2e8b57),
    ("seashell", 0xfff5ee),
    ("sienna", 0xa0522d),
    ("silver", 0xc0c0c0),
    ("skyblue", 0x87ceeb),
    ("slateblue", 0x6a5acd),
    ("slategray", 0x708090),
    ("slategrey", 0x708090),
    ("snow", 0xfffafa),
    ("springgreen", 0x00ff7f),
    ("steelblue", 0x4682b4),
    ("tan", 0xd2b48c),
    ("teal", 0x008080),
    ("thistle", 0xd8bfd8),
    ("tomato", 0xff6347),
    ("turquoise", 0x40e0d0),
    ("violet", 0xee82ee),
    ("wheat", 0xf5deb3),
    ("white", 0xffffff),
    ("whitesmoke", 0xf5f5f5),
    ("yellow", 0xffff00),
    ("yellowgreen", 0x9acd32),
];

/// thumbor's `gen_image(size, color)` with its retry on `#color`: a PIL colour name or hex
/// digits; `None` where thumbor's second attempt raises (the request then fails with 500).
pub fn parse(text: &str) -> Option<Rgba> {
    // PIL refuses specifiers longer than 100 characters before looking at them.
    if text.chars().count() > 100 {
        return None;
    }
    let lower = text.to_lowercase();
    if let Ok(i) = NAMES.binary_search_by(|(name, _)| name.cmp(&lower.as_str())) {
        let [_, r, g, b] = NAMES[i].1.to_be_bytes();
        return Some([r, g, b, 255]);
    }
    if !lower.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize| u8::from_str_radix(&lower[i..=i], 16).ok();
    let pair = |i: usize| u8::from_str_radix(&lower[i..i + 2], 16).ok();
    match lower.len() {
        3 => Some([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17, 255]),
        4 => Some([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17, digit(3)? * 17]),
        6 => Some([pair(0)?, pair(2)?, pair(4)?, 255]),
        8 => Some([pair(0)?, pair(2)?, pair(4)?, pair(6)?]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_for_the_binary_search() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(NAMES.len(), 148, "PIL 12's colormap");
    }

    #[test]
    fn like_pil_getrgb() {
        // Expected values from `ImageColor.getrgb(c)` / `getrgb('#' + c)` (Pillow 12.3).
        assert_eq!(parse("red"), Some([255, 0, 0, 255]));
        assert_eq!(parse("RED"), Some([255, 0, 0, 255]));
        assert_eq!(parse("rebeccapurple"), Some([0x66, 0x33, 0x99, 255]));
        assert_eq!(parse("grey"), parse("gray"));
        assert_eq!(parse("fff"), Some([255, 255, 255, 255]));
        assert_eq!(parse("F0A"), Some([255, 0, 170, 255]));
        assert_eq!(parse("f0a8"), Some([255, 0, 170, 136]));
        assert_eq!(parse("00ff00"), Some([0, 255, 0, 255]));
        assert_eq!(parse("ff000080"), Some([255, 0, 0, 128]));
        // A name wins over hex digits; "bad" is not a name but is hex.
        assert_eq!(parse("bad"), Some([0xbb, 0xaa, 0xdd, 255]));
        for bad in ["notacolor", "transparent", "ff", "fffff", "fffffff", "ggg", "_", "ff_f", ""] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse(&"a".repeat(101)), None);
    }

    #[test]
    fn unicode_lowercases_like_python() {
        // U+212A KELVIN SIGN lowercases to 'k' in Python and in Rust: "blac\u{212a}" is black.
        assert_eq!(parse("blac\u{212a}"), Some([0, 0, 0, 255]));
        // Non-ASCII digits never count as hex.
        assert_eq!(parse("\u{0661}\u{0662}\u{0663}"), None);
    }
}
