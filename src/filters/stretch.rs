//! `stretch()`: resize to exactly `WxH`, skipping the auto-crop (the image is distorted).

use super::{Args, Filter, Phase, Spec};

pub const SPEC: Spec = Spec { name: "stretch", params: &[], required: 0, phase: Phase::PreLoad, build };

fn build(_: &Args) -> Option<Filter> {
    Some(Filter::Stretch)
}
