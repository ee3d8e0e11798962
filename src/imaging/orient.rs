//! EXIF orientation: the transform each tag value asks for (as thumbor's `reorientate` applies it).

use crate::codec::Bitmap;

/// Apply EXIF orientation `tag` (1..=8) to `bitmap`.
pub fn apply(bitmap: Bitmap, tag: u8) -> Bitmap {
    match tag {
        2 => {
            let mut b = bitmap;
            b.flip_horizontal();
            b
        }
        3 => bitmap.rotate180(),
        4 => {
            let mut b = bitmap;
            b.flip_vertical();
            b
        }
        5 => bitmap.transpose(),
        6 => bitmap.rotate90(),
        7 => bitmap.transpose().rotate180(),
        8 => bitmap.rotate270(),
        _ => bitmap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Channels;

    /// A 3x2 image whose top-left pixel is marked.
    fn marked() -> Bitmap {
        let mut b = Bitmap::filled(3, 2, Channels::Rgb, &[0, 0, 0]);
        b.pixels[0] = 255;
        b
    }

    fn marked_corner(b: &Bitmap) -> (u32, u32) {
        let i = b.pixels.chunks(3).position(|p| p[0] == 255).unwrap() as u32;
        (i % b.width, i / b.width)
    }

    #[test]
    fn stored_top_left_lands_where_exif_says() {
        // Where the stored top-left pixel ends up after correcting each orientation.
        let expected =
            [(1, (0, 0)), (2, (2, 0)), (3, (2, 1)), (4, (0, 1)), (5, (0, 0)), (6, (1, 0)), (7, (1, 2)), (8, (0, 2))];
        for (tag, corner) in expected {
            let out = apply(marked(), tag);
            assert_eq!(marked_corner(&out), corner, "orientation {tag}");
            let transposed = (5..=8).contains(&tag);
            assert_eq!((out.width, out.height), if transposed { (2, 3) } else { (3, 2) });
        }
    }
}
