//! `meta/`: thumbor's JSON description of the operations instead of the image, with its
//! number formatting (`300.0` for Python floats) and key order; JSONP with `?callback=`.

use std::fmt::Write as _;

use crate::geometry::{FocalPoint, Op, Plan, PyNum, Size};

/// Everything `meta/` reports.
pub struct MetaInfo<'a> {
    /// The image URL as thumbor quotes it (`quote(url, safe='/')`).
    pub url: &'a str,
    /// The image size after every operation and filter (thumbor reports the final size here).
    pub final_size: Size,
    pub frame_count: u32,
    /// Operations before the transformer's (the trim crop), reported first as thumbor does.
    pub pre_ops: &'a [Op],
    pub plan: &'a Plan,
}

/// The JSON document, or `callback(...)` when a callback name is given.
pub fn render(info: &MetaInfo, callback: Option<&str>) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"thumbor\": {\"source\": {\"url\": ");
    push_json_string(&mut out, &crate::url::python_quote(info.url));
    let _ = write!(
        out,
        ", \"width\": {}, \"height\": {}, \"frameCount\": {}}}, \"operations\": [",
        info.final_size.width, info.final_size.height, info.frame_count
    );
    let mut target = (PyNum::Int(i64::from(info.final_size.width)), PyNum::Int(i64::from(info.final_size.height)));
    for (i, op) in info.pre_ops.iter().chain(&info.plan.ops).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match op {
            Op::Crop(r) => {
                let _ = write!(
                    out,
                    "{{\"type\": \"crop\", \"left\": {}, \"top\": {}, \"right\": {}, \"bottom\": {}}}",
                    r.left, r.top, r.right, r.bottom
                );
                target = (PyNum::Int(i64::from(r.width())), PyNum::Int(i64::from(r.height())));
            }
            Op::Resize { width, height } => {
                let _ = write!(
                    out,
                    "{{\"type\": \"resize\", \"width\": {}, \"height\": {}}}",
                    py_num(*width),
                    py_num(*height)
                );
                target = (*width, *height);
            }
            Op::FlipHorizontally => out.push_str("{\"type\": \"flip_horizontally\"}"),
            Op::FlipVertically => out.push_str("{\"type\": \"flip_vertically\"}"),
        }
    }
    let _ = write!(out, "], \"target\": {{\"width\": {}, \"height\": {}}}", py_num(target.0), py_num(target.1));
    if !info.plan.focal_points.is_empty() {
        out.push_str(", \"focal_points\": [");
        for (i, p) in info.plan.focal_points.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_focal_point(&mut out, p);
        }
        out.push(']');
    }
    out.push_str("}}");
    match callback {
        Some(name) => format!("{name}({out});"),
        None => out,
    }
}

fn push_focal_point(out: &mut String, p: &FocalPoint) {
    let _ = write!(
        out,
        "{{\"x\": {}, \"y\": {}, \"z\": {}, \"height\": {}, \"width\": {}, \"origin\": ",
        p.x,
        p.y,
        py_num(p.weight),
        p.height,
        p.width
    );
    push_json_string(out, p.origin.as_str());
    out.push('}');
}

/// A number as Python's `json.dumps` prints it: ints bare, floats with a `.0` when whole.
pub fn py_num(n: PyNum) -> String {
    match n {
        PyNum::Int(i) => i.to_string(),
        PyNum::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        PyNum::Float(f) => f.to_string(),
    }
}

/// `json.dumps` of a string (ASCII-only output, as Python's default `ensure_ascii`).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSONP callback name is only used when it is a plain identifier path (no script injection).
pub fn safe_callback(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$');
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{plan, GeometryRequest};
    use crate::url::Dim;

    #[test]
    fn matches_thumbor_byte_for_byte() {
        // Recorded from thumbor 7.8: /unsafe/meta/300x200/127.0.0.1:8901/landscape.jpg (800x600).
        let req = GeometryRequest { width: Dim::Px(300), height: Dim::Px(200), ..Default::default() };
        let p = plan(Size::new(800, 600), &req).unwrap();
        let info = MetaInfo {
            url: "127.0.0.1:8901/landscape.jpg",
            final_size: p.output,
            frame_count: 1,
            pre_ops: &[],
            plan: &p,
        };
        assert_eq!(
            render(&info, None),
            r#"{"thumbor": {"source": {"url": "127.0.0.1%3A8901/landscape.jpg", "width": 300, "height": 200, "frameCount": 1}, "operations": [{"type": "crop", "left": 0, "top": 34, "right": 800, "bottom": 567}, {"type": "resize", "width": 300.0, "height": 200.0}], "target": {"width": 300.0, "height": 200.0}, "focal_points": [{"x": 400, "y": 300, "z": 1.0, "height": 1, "width": 1, "origin": "alignment"}]}}"#
        );
        assert!(render(&info, Some("cb")).starts_with("cb({\"thumbor\""));
    }

    #[test]
    fn callbacks_are_identifiers() {
        assert_eq!(safe_callback("jQuery123_cb"), Some("jQuery123_cb"));
        assert_eq!(safe_callback("a.b"), Some("a.b"));
        assert_eq!(safe_callback("alert(1)//"), None);
        assert_eq!(safe_callback(""), None);
    }
}
