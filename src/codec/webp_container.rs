//! The WebP RIFF container: an ICC profile (ICCP chunk) and EXIF (EXIF chunk) added to what
//! libwebp wrote, and the duration of an animation's last frame set from the source's delays.

/// Flag bits of the VP8X chunk.
const VP8X_ICC: u8 = 0x20;
const VP8X_ALPHA: u8 = 0x10;
const VP8X_EXIF: u8 = 0x08;

/// One chunk: its FourCC and payload (without the padding byte).
struct Chunk<'a> {
    fourcc: [u8; 4],
    payload: &'a [u8],
}

/// The chunks of a `RIFF....WEBP` file; `None` when the structure is broken.
fn chunks(webp: &[u8]) -> Option<Vec<Chunk<'_>>> {
    if webp.len() < 12 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 12;
    while pos + 8 <= webp.len() {
        let fourcc: [u8; 4] = webp[pos..pos + 4].try_into().ok()?;
        let len = u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().ok()?) as usize;
        let payload = webp.get(pos + 8..pos + 8 + len)?;
        out.push(Chunk { fourcc, payload });
        pos += 8 + len + (len & 1);
    }
    Some(out)
}

fn assemble<'a>(chunks: impl IntoIterator<Item = ([u8; 4], &'a [u8])>) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (fourcc, payload) in chunks {
        body.extend_from_slice(&fourcc);
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        body.extend_from_slice(payload);
        if payload.len() & 1 == 1 {
            body.push(0);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn u24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// The VP8X chunk of `parsed` with `flag` set, or a new one for a simple (VP8/VP8L) file of the
/// given canvas size.
fn extended(parsed: &[Chunk<'_>], flag: u8, width: u32, height: u32, alpha: bool) -> Vec<u8> {
    match parsed.iter().find(|c| &c.fourcc == b"VP8X") {
        Some(existing) if existing.payload.len() >= 10 => {
            let mut vp8x = existing.payload.to_vec();
            vp8x[0] |= flag;
            vp8x
        }
        _ => {
            let mut vp8x = vec![flag | if alpha { VP8X_ALPHA } else { 0 }, 0, 0, 0];
            vp8x.extend_from_slice(&u24(width.saturating_sub(1)));
            vp8x.extend_from_slice(&u24(height.saturating_sub(1)));
            vp8x
        }
    }
}

/// `webp` with `icc` embedded. A simple (VP8/VP8L) file becomes an extended one (VP8X) of the
/// given canvas size; an existing profile is replaced. Unparseable input is returned as is.
pub fn with_icc(webp: Vec<u8>, icc: &[u8], width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let Some(parsed) = chunks(&webp) else { return webp };
    let vp8x = extended(&parsed, VP8X_ICC, width, height, alpha);
    let rest = parsed.iter().filter(|c| &c.fourcc != b"ICCP" && &c.fourcc != b"VP8X").map(|c| (c.fourcc, c.payload));
    assemble([(*b"VP8X", vp8x.as_slice()), (*b"ICCP", icc)].into_iter().chain(rest))
}

/// `webp` with `exif` (TIFF header onwards) embedded, after the image data as the container
/// specification orders it; an existing EXIF chunk is replaced. Unparseable input is returned
/// as is.
pub fn with_exif(webp: Vec<u8>, exif: &[u8], width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let Some(parsed) = chunks(&webp) else { return webp };
    let vp8x = extended(&parsed, VP8X_EXIF, width, height, alpha);
    let rest = parsed.iter().filter(|c| &c.fourcc != b"EXIF" && &c.fourcc != b"VP8X").map(|c| (c.fourcc, c.payload));
    assemble(std::iter::once((*b"VP8X", vp8x.as_slice())).chain(rest).chain([(*b"EXIF", exif)]))
}

/// The EXIF payload of a WebP file, if any.
pub fn exif(webp: &[u8]) -> Option<Vec<u8>> {
    chunks(webp)?.into_iter().find(|c| &c.fourcc == b"EXIF").map(|c| c.payload.to_vec())
}

/// The ICC profile of a WebP file, if any.
pub fn icc(webp: &[u8]) -> Option<Vec<u8>> {
    chunks(webp)?.into_iter().find(|c| &c.fourcc == b"ICCP").map(|c| c.payload.to_vec())
}

/// Frame durations (ms) of an animated WebP file, in order.
pub fn frame_durations(webp: &[u8]) -> Vec<u32> {
    chunks(webp)
        .unwrap_or_default()
        .iter()
        .filter(|c| &c.fourcc == b"ANMF" && c.payload.len() >= 16)
        .map(|c| u32::from_le_bytes([c.payload[12], c.payload[13], c.payload[14], 0]))
        .collect()
}

/// Make an animation last `total_ms` by setting its last frame's duration. libwebp's animation
/// encoder, as the `webp` crate drives it, gives the last frame the average of the others; the
/// frames before it keep the durations libwebp computed from their timestamps (merged identical
/// frames included).
pub fn set_total_duration(webp: Vec<u8>, total_ms: u64) -> Vec<u8> {
    let Some(parsed) = chunks(&webp) else { return webp };
    let frames: Vec<usize> = parsed.iter().enumerate().filter(|(_, c)| &c.fourcc == b"ANMF").map(|(i, _)| i).collect();
    let Some(&last) = frames.last() else { return webp };
    if parsed[last].payload.len() < 16 {
        return webp;
    }
    let before: u64 = frame_durations(&webp).iter().rev().skip(1).map(|&d| u64::from(d)).sum();
    let duration = total_ms.saturating_sub(before).min(0xFF_FFFF) as u32;
    let mut last_payload = parsed[last].payload.to_vec();
    last_payload[12..15].copy_from_slice(&u24(duration));
    let patched = parsed
        .iter()
        .enumerate()
        .map(|(i, c)| (c.fourcc, if i == last { last_payload.as_slice() } else { c.payload }))
        .collect::<Vec<_>>();
    assemble(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple_vp8l() -> Vec<u8> {
        let pixels = vec![10u8; 5 * 3 * 3];
        webp::Encoder::from_rgb(&pixels, 5, 3).encode_lossless().to_vec()
    }

    #[test]
    fn icc_turns_a_simple_file_into_an_extended_one() {
        let out = with_icc(simple_vp8l(), b"profile bytes", 5, 3, false);
        assert_eq!(&out[12..16], b"VP8X");
        assert_eq!(out[20] & VP8X_ICC, VP8X_ICC);
        assert_eq!(icc(&out).as_deref(), Some(&b"profile bytes"[..]));
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize, out.len() - 8);
        let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&out)).unwrap();
        assert_eq!(decoder.dimensions(), (5, 3));
        assert_eq!(decoder.icc_profile().unwrap().as_deref(), Some(&b"profile bytes"[..]));
        let mut buf = vec![0u8; 5 * 3 * 3];
        decoder.read_image(&mut buf).unwrap();
    }

    #[test]
    fn icc_replaces_an_existing_profile_and_odd_lengths_are_padded() {
        let once = with_icc(simple_vp8l(), b"odd", 5, 3, false);
        let twice = with_icc(once, b"second", 5, 3, false);
        assert_eq!(icc(&twice).as_deref(), Some(&b"second"[..]));
        assert_eq!(chunks(&twice).unwrap().iter().filter(|c| &c.fourcc == b"ICCP").count(), 1);
    }

    #[test]
    fn garbage_is_left_alone() {
        assert_eq!(with_icc(b"nope".to_vec(), b"x", 1, 1, false), b"nope");
        assert_eq!(set_total_duration(b"nope".to_vec(), 10), b"nope");
        assert!(frame_durations(b"RIFF\x04\x00\x00\x00WEBP").is_empty());
    }

    #[test]
    fn exif_goes_after_the_image_data_beside_a_profile() {
        let webp = with_icc(simple_vp8l(), b"profile", 5, 3, false);
        let out = with_exif(webp, b"II*\0exif", 5, 3, false);
        assert_eq!(exif(&out).as_deref(), Some(&b"II*\0exif"[..]));
        assert_eq!(icc(&out).as_deref(), Some(&b"profile"[..]));
        let parsed = chunks(&out).unwrap();
        let order: Vec<[u8; 4]> = parsed.iter().map(|c| c.fourcc).collect();
        assert_eq!(order, [*b"VP8X", *b"ICCP", *b"VP8L", *b"EXIF"]);
        assert_eq!(parsed[0].payload[0] & (VP8X_ICC | VP8X_EXIF), VP8X_ICC | VP8X_EXIF);
        // The image still decodes.
        let decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(&out)).unwrap();
        assert_eq!(decoder.dimensions(), (5, 3));
    }
}
