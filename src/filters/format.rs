//! `format(name)`: the output format (png, jpeg, jpg, gif, webp, avif, heic, heif). An
//! unknown name leaves the format to the source, as thumbor's filter sets `request.format = None`.

use super::{Args, Filter, Param, Phase, Spec};
use crate::codec::{Format, FormatChoice};

/// A `format()` item: `None` when its argument is not an allowed format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatFilter(pub Option<FormatChoice>);

pub const SPEC: Spec =
    Spec { name: "format", params: &[Param::String], required: 1, phase: Phase::PostTransform, build };

fn build(args: &Args) -> Option<Filter> {
    let name = args.string(0)?;
    Some(Filter::Format(FormatFilter(Format::from_filter_name(&name))))
}

#[cfg(test)]
mod tests {
    use super::super::parse_one;
    use super::*;
    use crate::url::FilterCall;

    fn parse(raw: &str) -> Filter {
        parse_one(&FilterCall { name: "format".into(), raw: raw.into() }).unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(parse("format(webp)"), Filter::Format(FormatFilter(Some(FormatChoice::Format(Format::Webp)))));
        assert_eq!(parse("format(JPG)"), Filter::Format(FormatFilter(Some(FormatChoice::Format(Format::Jpeg)))));
        assert_eq!(parse("format('png')"), Filter::Format(FormatFilter(Some(FormatChoice::Format(Format::Png)))));
        assert_eq!(parse("format(bmp)"), Filter::Format(FormatFilter(None)));
    }
}
