//! `autojpg([bool])`: an opaque PNG output becomes JPEG (thumbor's per-request AUTO_PNG_TO_JPG). thumbor 7.8 does not load this filter by default; `image.autojpg_filter` turns it on.

use super::{Args, Filter, Param, Phase, Spec};

/// The arguments of one `autojpg()` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Autojpg {
    pub enabled: bool,
}

pub const SPEC: Spec =
    Spec { name: "autojpg", params: &[Param::Boolean], required: 0, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::Autojpg(Autojpg { enabled: args.boolean(0).unwrap_or(true) }))
}
