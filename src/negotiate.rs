//! `Accept` negotiation for automatic WebP/AVIF: media ranges with q-values, where `q=0` refuses.
//! Only an explicit `image/webp` or `image/avif` range counts, as in thumbor (browsers that
//! decode them say so; `*/*` alone must not turn JPEGs into WebP for old clients).

/// What the client's `Accept` header allows, for automatic format selection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Accepts {
    pub webp: bool,
    pub avif: bool,
}

/// Which automatic formats an `Accept` header allows.
pub fn accepts(header: &str) -> Accepts {
    let mut out = Accepts::default();
    for range in header.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().unwrap_or(1.0))
            })
            .next()
            .unwrap_or(1.0);
        let allowed = q > 0.0;
        match media.as_str() {
            "image/webp" => out.webp = allowed,
            "image/avif" => out.avif = allowed,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ranges_and_q_values() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(accepts(chrome), Accepts { webp: true, avif: true });
        assert_eq!(accepts("image/webp;q=0"), Accepts { webp: false, avif: false });
        assert_eq!(accepts("image/webp; q=0.5, image/avif;q=0.0"), Accepts { webp: true, avif: false });
        assert_eq!(accepts("*/*"), Accepts::default());
        assert_eq!(accepts("IMAGE/WEBP"), Accepts { webp: true, avif: false });
        assert_eq!(accepts(""), Accepts::default());
    }
}
