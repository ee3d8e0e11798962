//! `strip_exif()`: drops the source's EXIF metadata from the result (only
//! `image.preserve_exif` copies it there).

use super::{Args, Filter, Phase, Spec};

/// The arguments of one `strip_exif()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct StripExif {}

pub const SPEC: Spec = Spec { name: "strip_exif", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::StripExif(StripExif {}))
}
