//! `extract_focal()`: a nested thumbor crop URL becomes a focal point. In thumbor 7.8 the image URL has `:` quoted before the filter reads it, so it never finds the crop; Thumbora does the same (no effect).

use super::{Args, Filter, Phase, Spec};

/// The arguments of one `extract_focal()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractFocal {}

pub const SPEC: Spec = Spec { name: "extract_focal", params: &[], required: 0, phase: Phase::PreLoad, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::ExtractFocal(ExtractFocal {}))
}
