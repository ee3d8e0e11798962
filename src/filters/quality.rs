//! `quality(n)`: the encoder quality (clamped to 1..=100 as libjpeg and libwebp clamp it).

use super::{Args, Filter, Param, Phase, Spec};

pub const SPEC: Spec =
    Spec { name: "quality", params: &[Param::PositiveNumber], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    let q = args.int(0)?.clamp(1, 100);
    Some(Filter::Quality(q as u8))
}

#[cfg(test)]
mod tests {
    use super::super::parse_one;
    use super::*;
    use crate::url::FilterCall;

    fn call(raw: &str) -> FilterCall {
        FilterCall { name: "quality".into(), raw: raw.into() }
    }

    #[test]
    fn values() {
        assert_eq!(parse_one(&call("quality(75)")), Ok(Filter::Quality(75)));
        assert_eq!(parse_one(&call("quality(0)")), Ok(Filter::Quality(1)));
        assert_eq!(parse_one(&call("quality(1000)")), Ok(Filter::Quality(100)));
        assert!(parse_one(&call("quality()")).is_err());
        assert!(parse_one(&call("quality(7.5)")).is_err());
    }
}
