//! `max_age(seconds)`: overrides `Cache-Control: max-age` for this image; 0 sends none.

use super::{Args, Filter, Param, Phase, Spec};

pub const SPEC: Spec =
    Spec { name: "max_age", params: &[Param::PositiveNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    Some(Filter::MaxAge(u64::try_from(args.int(0)?).unwrap_or(u64::MAX)))
}
