//! `strip_icc()`: drops the ICC profile from the result.

use super::{Args, Filter, Phase, Spec};

/// The arguments of one `strip_icc()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct StripIcc {}

pub const SPEC: Spec = Spec { name: "strip_icc", params: &[], required: 0, phase: Phase::PostTransform, build };

fn build(_args: &Args) -> Option<Filter> {
    Some(Filter::StripIcc(StripIcc {}))
}
