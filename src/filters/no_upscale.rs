//! `no_upscale()`: clamps the requested width and height to the (oriented) source size, so a
//! plain `WxH` never enlarges.

use super::{Args, Filter, Phase, Spec};

pub const SPEC: Spec = Spec { name: "no_upscale", params: &[], required: 0, phase: Phase::AfterLoad, build };

fn build(_: &Args) -> Option<Filter> {
    Some(Filter::NoUpscale)
}
