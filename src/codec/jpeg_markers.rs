//! JPEG marker segments: the EXIF orientation, the ICC profile (APP2 chunks) and the Adobe
//! marker read from a source, the frame header and the number of scans (which decide what
//! libjpeg-turbo allocates and how long it works), and an ICC profile written into an encoded
//! JPEG.

/// What Thumbora needs from a JPEG's header segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JpegMetadata {
    /// The EXIF payload (TIFF header onwards), when an `Exif` APP1 segment exists.
    pub exif: Option<Vec<u8>>,
    /// The reassembled ICC profile.
    pub icc: Option<Vec<u8>>,
    /// An Adobe APP14 segment is present (CMYK data is then stored inverted).
    pub adobe: bool,
    /// The frame header (SOF), when one was found before the first scan.
    pub frame: Option<FrameHeader>,
}

/// A JPEG frame header: the stored size and each component's sampling factors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameHeader {
    pub width: u32,
    pub height: u32,
    /// SOF2/SOF6/SOF10/SOF14: progressive.
    pub progressive: bool,
    /// (horizontal, vertical) sampling factor of each component.
    pub sampling: Vec<(u8, u8)>,
}

impl FrameHeader {
    /// Bytes libjpeg keeps for the whole image's DCT coefficients when the image has several
    /// scans (progressive, or sequential with one scan per component): 64 two-byte coefficients
    /// per block of every component, at the stored size whatever the output scale.
    pub fn coefficient_bytes(&self) -> u64 {
        let h_max = self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1);
        let v_max = self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1);
        self.sampling
            .iter()
            .map(|&(h, v)| {
                let width = (u64::from(self.width) * u64::from(h)).div_ceil(u64::from(h_max));
                let height = (u64::from(self.height) * u64::from(v)).div_ceil(u64::from(v_max));
                width.div_ceil(8) * height.div_ceil(8) * 128
            })
            .sum()
    }
}

/// Most segments read before giving up (a header with thousands of APP segments is hostile).
const MAX_SEGMENTS: usize = 512;
/// ICC profiles above this size are ignored.
const MAX_ICC_BYTES: usize = super::MAX_METADATA_BYTES;

/// Walk the segments up to the first scan. Malformed headers yield what was read so far: the
/// decoder is the judge of validity.
pub fn read_metadata(jpeg: &[u8]) -> JpegMetadata {
    let mut meta = JpegMetadata::default();
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut pos = 2; // after SOI
    for _ in 0..MAX_SEGMENTS {
        // Skip fill bytes.
        while pos < jpeg.len() && jpeg[pos] == 0xFF && jpeg.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if pos + 4 > jpeg.len() || jpeg[pos] != 0xFF {
            break;
        }
        let marker = jpeg[pos + 1];
        if marker == 0xDA || marker == 0xD9 {
            break; // start of scan / end of image
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            pos += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if len < 2 || pos + 2 + len > jpeg.len() {
            break;
        }
        let payload = &jpeg[pos + 4..pos + 2 + len];
        match marker {
            0xE1 if payload.starts_with(b"Exif\0\0") && meta.exif.is_none() => {
                meta.exif = Some(payload[6..].to_vec());
            }
            0xE2 if payload.starts_with(b"ICC_PROFILE\0") && payload.len() > 14 => {
                icc_chunks.push((payload[12], &payload[14..]));
            }
            0xEE if payload.starts_with(b"Adobe") => meta.adobe = true,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && meta.frame.is_none() => {
                meta.frame = frame_header(marker, payload);
            }
            _ => {}
        }
        pos += 2 + len;
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|(seq, _)| *seq);
        let total: usize = icc_chunks.iter().map(|(_, c)| c.len()).sum();
        if total <= MAX_ICC_BYTES {
            meta.icc = Some(icc_chunks.iter().flat_map(|(_, c)| c.iter().copied()).collect());
        }
    }
    meta
}

/// A SOFn payload: precision, height, width, then three bytes per component.
fn frame_header(marker: u8, payload: &[u8]) -> Option<FrameHeader> {
    let height = u32::from(u16::from_be_bytes([*payload.get(1)?, *payload.get(2)?]));
    let width = u32::from(u16::from_be_bytes([*payload.get(3)?, *payload.get(4)?]));
    let count = usize::from(*payload.get(5)?);
    let sampling = (0..count)
        .map(|i| payload.get(6 + 3 * i + 1).map(|&f| ((f >> 4).clamp(1, 4), (f & 0x0F).clamp(1, 4))))
        .collect::<Option<Vec<_>>>()?;
    Some(FrameHeader { width, height, progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE), sampling })
}

/// The number of scans (SOS markers) in `jpeg`, counting up to `limit + 1`: entropy-coded data
/// is skipped to its next `FF` with memchr (a stuffed `FF 00` and restart markers belong to it),
/// every other marker segment by its length. Linear in the file, allocation-free; on a 1080p
/// photo it went from 6% of a render's instructions, byte by byte, to nothing worth measuring.
pub fn count_scans(jpeg: &[u8], limit: u32) -> u32 {
    let mut scans = 0;
    let mut pos = 2;
    while pos + 1 < jpeg.len() && scans <= limit {
        if jpeg[pos] != 0xFF {
            // Entropy-coded data, or garbage between segments.
            pos += memchr::memchr(0xFF, &jpeg[pos..]).unwrap_or(jpeg.len() - pos);
            continue;
        }
        let marker = jpeg[pos + 1];
        match marker {
            0xFF => pos += 1,                      // fill byte
            0x00 | 0x01 | 0xD0..=0xD7 => pos += 2, // stuffed byte, TEM, restart
            0xD8 => pos += 2,                      // a stray SOI
            0xD9 => break,                         // end of image
            _ => {
                let Some(len) = jpeg.get(pos + 2..pos + 4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    break;
                };
                if marker == 0xDA {
                    scans += 1;
                }
                pos += 2 + len.max(2);
            }
        }
    }
    scans
}

/// The EXIF orientation (1..=8) in an EXIF payload; 1 when absent or invalid.
pub fn exif_orientation(exif: &[u8]) -> u8 {
    image::metadata::Orientation::from_exif_chunk(exif).map(|o| o.to_exif()).unwrap_or(1)
}

/// Insert an EXIF payload (TIFF header onwards) as an APP1 `Exif` segment right after SOI (and
/// any APP0), where readers look for it. A payload too large for one segment is left out.
pub fn insert_exif(jpeg: Vec<u8>, exif: &[u8]) -> Vec<u8> {
    const MAX: usize = 65_535 - 2 - 6;
    if exif.is_empty() || exif.len() > MAX || jpeg.len() < 2 {
        return jpeg;
    }
    let insert_at = after_app0(&jpeg);
    let mut out = Vec::with_capacity(jpeg.len() + exif.len() + 10);
    out.extend_from_slice(&jpeg[..insert_at]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 8) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(exif);
    out.extend_from_slice(&jpeg[insert_at..]);
    out
}

/// `exif` saying orientation 1 (upright): for a result whose pixels were turned, as thumbor's
/// `reorientate` rewrites it. The tag is changed in place; a payload without one is unchanged.
pub fn upright_exif(exif: &[u8]) -> Vec<u8> {
    let mut out = exif.to_vec();
    let little = match out.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return out,
    };
    let u16_at = |b: &[u8], i: usize| {
        b.get(i..i + 2)
            .map(|s| if little { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) })
    };
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4).map(|s| {
            let a = [s[0], s[1], s[2], s[3]];
            if little {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    let Some(ifd) = u32_at(&out, 4).map(|o| o as usize) else { return out };
    let Some(count) = u16_at(&out, ifd) else { return out };
    for i in 0..usize::from(count) {
        let entry = ifd + 2 + 12 * i;
        // Orientation: tag 0x0112, type SHORT (3), one value, stored in the entry itself.
        if u16_at(&out, entry) == Some(0x0112) && u16_at(&out, entry + 2) == Some(3) {
            let one = if little { 1u16.to_le_bytes() } else { 1u16.to_be_bytes() };
            if let Some(value) = out.get_mut(entry + 8..entry + 10) {
                value.copy_from_slice(&one);
            }
            break;
        }
    }
    out
}

/// Where segments go after SOI: past an APP0 (JFIF) segment when there is one.
fn after_app0(jpeg: &[u8]) -> usize {
    if jpeg.len() > 6 && jpeg[2] == 0xFF && jpeg[3] == 0xE0 {
        4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]))
    } else {
        2
    }
}

/// Insert an ICC profile as APP2 `ICC_PROFILE` segments right after SOI (and any APP0).
pub fn insert_icc(jpeg: Vec<u8>, icc: &[u8]) -> Vec<u8> {
    const CHUNK: usize = 65_519; // 65535 - 2 (length) - 14 (signature + sequence numbers)
    if icc.is_empty() || jpeg.len() < 2 || icc.len() > CHUNK * 255 {
        return jpeg;
    }
    let insert_at = after_app0(&jpeg);
    let count = icc.len().div_ceil(CHUNK);
    let mut out = Vec::with_capacity(jpeg.len() + icc.len() + count * 18);
    out.extend_from_slice(&jpeg[..insert_at]);
    for (i, chunk) in icc.chunks(CHUNK).enumerate() {
        let len = (chunk.len() + 16) as u16;
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.push((i + 1) as u8);
        out.push(count as u8);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&jpeg[insert_at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    fn exif_with_orientation(o: u16) -> Vec<u8> {
        // Little-endian TIFF header, one IFD entry: tag 0x112, SHORT, count 1.
        let mut t = b"II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&0x112u16.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&o.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        t
    }

    #[test]
    fn reads_exif_icc_and_adobe() {
        let mut jpeg = vec![0xFF, 0xD8];
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(exif_with_orientation(6));
        jpeg.extend(segment(0xE1, &app1));
        let mut c2 = b"ICC_PROFILE\0\x02\x02".to_vec();
        c2.extend_from_slice(b"world");
        let mut c1 = b"ICC_PROFILE\0\x01\x02".to_vec();
        c1.extend_from_slice(b"hello ");
        jpeg.extend(segment(0xE2, &c2));
        jpeg.extend(segment(0xE2, &c1));
        jpeg.extend(segment(0xEE, b"Adobe\0\0\0\0\0\0"));
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        let meta = read_metadata(&jpeg);
        assert_eq!(exif_orientation(meta.exif.as_deref().unwrap()), 6);
        assert_eq!(meta.icc.as_deref(), Some(&b"hello world"[..]));
        assert!(meta.adobe);
    }

    #[test]
    fn truncated_headers_do_not_panic() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE1, b"Exif\0\0II*\0"));
        for end in 0..jpeg.len() {
            let _ = read_metadata(&jpeg[..end]);
        }
        assert_eq!(exif_orientation(b"garbage"), 1);
    }

    #[test]
    fn frame_header_and_coefficient_memory() {
        let mut jpeg = vec![0xFF, 0xD8];
        // SOF2, 8 bits, 3000x4000 (height, width), three components: 2x2, 1x1, 1x1 (4:2:0).
        jpeg.extend(segment(0xC2, &[8, 0x0B, 0xB8, 0x0F, 0xA0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]));
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
        let frame = read_metadata(&jpeg).frame.unwrap();
        assert_eq!((frame.width, frame.height, frame.progressive), (4000, 3000, true));
        assert_eq!(frame.sampling, vec![(2, 2), (1, 1), (1, 1)]);
        // Luma 500x375 blocks, each chroma 250x188 (rounded up), 128 bytes a block.
        assert_eq!(frame.coefficient_bytes(), (500 * 375 + 2 * 250 * 188) * 128);
    }

    #[test]
    fn scans_are_counted_past_entropy_data() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xC2, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]));
        for _ in 0..5 {
            jpeg.extend(segment(0xDA, &[1, 1, 0, 0, 0, 0]));
            // Entropy data with a stuffed byte and a restart marker inside.
            jpeg.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        }
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(count_scans(&jpeg, 100), 5);
        assert_eq!(count_scans(&jpeg, 2), 3, "stops one past the limit");
        for end in 0..jpeg.len() {
            assert!(count_scans(&jpeg[..end], 100) <= 5);
        }
    }

    #[test]
    fn skipping_to_the_next_ff_counts_as_reading_byte_by_byte() {
        // The walk before memchr, as the reference.
        fn byte_by_byte(jpeg: &[u8], limit: u32) -> u32 {
            let (mut scans, mut pos) = (0, 2);
            while pos + 1 < jpeg.len() && scans <= limit {
                if jpeg[pos] != 0xFF {
                    pos += 1;
                    continue;
                }
                match jpeg[pos + 1] {
                    0xFF => pos += 1,
                    0x00 | 0x01 | 0xD0..=0xD7 | 0xD8 => pos += 2,
                    0xD9 => break,
                    marker => {
                        let Some(b) = jpeg.get(pos + 2..pos + 4) else { break };
                        scans += u32::from(marker == 0xDA);
                        pos += 2 + usize::from(u16::from_be_bytes([b[0], b[1]])).max(2);
                    }
                }
            }
            scans
        }
        // Bytes dense in FF, SOS, short lengths and restart markers (a fixed LCG: reproducible).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let alphabet = [0xFF, 0xDA, 0x00, 0x02, 0x03, 0xD0, 0xD9, 0x12, 0xC2, 0x01];
        for _ in 0..2_000 {
            let len = (state >> 50) as usize % 300;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let r = (state >> 33) as usize;
                    if r.is_multiple_of(3) {
                        alphabet[r / 3 % alphabet.len()]
                    } else {
                        (r >> 8) as u8
                    }
                })
                .collect();
            for limit in [0, 3, 100] {
                assert_eq!(count_scans(&bytes, limit), byte_by_byte(&bytes, limit), "{bytes:02X?}");
            }
        }
    }

    #[test]
    fn icc_round_trip() {
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xDA, 0, 2];
        let icc: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        let out = insert_icc(jpeg, &icc);
        assert_eq!(read_metadata(&out).icc, Some(icc));
    }

    #[test]
    fn exif_is_written_where_readers_find_it_and_can_be_made_upright() {
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xD9];
        let out = insert_exif(jpeg.clone(), &exif_with_orientation(6));
        assert_eq!(read_metadata(&out).exif, Some(exif_with_orientation(6)));
        assert_eq!(exif_orientation(&upright_exif(&exif_with_orientation(6))), 1);
        // Big-endian, the tag after another entry.
        let mut be = b"MM\0*".to_vec();
        be.extend_from_slice(&8u32.to_be_bytes());
        be.extend_from_slice(&2u16.to_be_bytes());
        be.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 4, b'A', b'B', b'C', 0]);
        be.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0]);
        be.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(exif_orientation(&be), 8);
        let upright = upright_exif(&be);
        assert_eq!((exif_orientation(&upright), upright.len()), (1, be.len()));
        assert_eq!(upright[..22], be[..22], "only the orientation value changes");
        // Nothing to do, or nothing readable: unchanged.
        assert_eq!(upright_exif(b"II*\0"), b"II*\0");
        assert_eq!(insert_exif(jpeg.clone(), &[]), jpeg);
        assert_eq!(insert_exif(jpeg.clone(), &vec![0; 70_000]), jpeg, "too large for one segment");
    }
}
