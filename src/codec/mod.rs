//! Image formats: the format table (name, MIME type, magic bytes), header probing, decoding and
//! encoding. Formats are recognised by their magic bytes only, never by name or Content-Type.

pub mod avif;
pub mod bitmap;
pub mod decode;
pub mod encode;
pub mod icc;
pub mod jpeg_markers;
pub mod probe;
pub mod webp_container;

pub use bitmap::{Bitmap, Canvas, Channels, Frame};

/// The most one metadata block (an ICC profile, an EXIF payload, a PNG chunk other than image
/// data) may take. Larger ones are dropped, never inflated or copied: a few KiB is usual, and a
/// compressed profile can claim gigabytes.
pub const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;

/// Formats Thumbora decodes and encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Avif,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
        }
    }

    /// The short name used in cache keys and logs.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Avif => "avif",
        }
    }

    /// A `format()` filter argument (thumbor's `ALLOWED_FORMATS`, case-insensitive). `heic`/`heif`
    /// are accepted by thumbor's filter but need an encoder thumbor rarely has; like thumbor
    /// without pillow-heif, Thumbora then keeps the source format.
    pub fn from_filter_name(name: &str) -> Option<FormatChoice> {
        match name.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(FormatChoice::Format(Format::Jpeg)),
            "png" => Some(FormatChoice::Format(Format::Png)),
            "gif" => Some(FormatChoice::Format(Format::Gif)),
            "webp" => Some(FormatChoice::Format(Format::Webp)),
            "avif" => Some(FormatChoice::Format(Format::Avif)),
            "heic" | "heif" => Some(FormatChoice::SourceFormat),
            _ => None,
        }
    }

    /// Whether the format has an alpha channel when encoded.
    pub fn supports_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }
}

/// What a valid `format()` argument asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatChoice {
    Format(Format),
    /// A format Thumbora cannot write (HEIF): keep the source's format.
    SourceFormat,
}

/// What the magic bytes say a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Supported(Format),
    /// A recognised format Thumbora refuses to decode (TIFF, SVG, BMP, HEIF, JPEG 2000, video).
    Unsupported(&'static str),
    Unknown,
}

/// Recognise a buffer by its first bytes, in thumbor's `get_mimetype` order.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"GIF8") {
        Sniffed::Supported(Format::Gif)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Sniffed::Supported(Format::Png)
    } else if starts(b"\xff\xd8") {
        Sniffed::Supported(Format::Jpeg)
    } else if bytes.len() >= 12 && &bytes[8..12] == b"WEBP" {
        Sniffed::Supported(Format::Webp)
    } else if starts(b"\x00\x00\x00\x0c") {
        Sniffed::Unsupported("image/jp2")
    } else if bytes.len() >= 12 && (&bytes[4..12] == b"ftypavif" || &bytes[4..12] == b"ftypavis") {
        Sniffed::Supported(Format::Avif)
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        Sniffed::Unsupported("image/heif or video")
    } else if starts(b"\x1aE\xdf\xa3") {
        Sniffed::Unsupported("video/webm")
    } else if starts(b"II*\x00") || starts(b"MM\x00*") {
        Sniffed::Unsupported("image/tiff")
    } else if starts(b"BM") {
        Sniffed::Unsupported("image/bmp")
    } else if looks_like_svg(bytes) {
        Sniffed::Unsupported("image/svg+xml")
    } else {
        Sniffed::Unknown
    }
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(2048)];
    head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_by_magic_bytes() {
        assert_eq!(sniff(b"\xff\xd8\xff\xe0rest"), Sniffed::Supported(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Sniffed::Supported(Format::Png));
        assert_eq!(sniff(b"GIF89a..."), Sniffed::Supported(Format::Gif));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Sniffed::Supported(Format::Webp));
        assert_eq!(sniff(b"\x00\x00\x00\x1cftypavif...."), Sniffed::Supported(Format::Avif));
        assert_eq!(sniff(b"II*\x00...."), Sniffed::Unsupported("image/tiff"));
        assert_eq!(sniff(b"<?xml version='1.0'?><svg xmlns=..."), Sniffed::Unsupported("image/svg+xml"));
        assert_eq!(sniff(b"hello"), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
    }
}
