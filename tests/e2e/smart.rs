//! `smart/`: the crop follows the subject (saliency detection, no model download), and
//! `debug/smart` draws the detected focal point.

use super::harness::*;

/// A 900x300 flat image with a busy red/blue subject near its right edge.
fn off_centre_subject() -> Vec<u8> {
    let img = image::RgbImage::from_fn(900, 300, |x, y| {
        if (760..840).contains(&x) && (110..190).contains(&y) {
            if (x / 5 + y / 5) % 2 == 0 {
                image::Rgb([230, 30, 40])
            } else {
                image::Rgb([20, 40, 200])
            }
        } else {
            image::Rgb([128, 128, 128])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Share of pixels far from the grey background.
fn subject_share(img: &image::RgbImage) -> f64 {
    let busy = img.pixels().filter(|p| p.0.iter().any(|&c| (c as i32 - 128).abs() > 40)).count();
    busy as f64 / (img.width() * img.height()) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_crop_keeps_an_off_centre_subject() {
    let origin = Origin::start().await;
    origin.put("/subject.png", off_centre_subject());
    let server = Server::start().await;
    let o = origin.host();
    let centred = server.get(&format!("/unsafe/200x200/{o}/subject.png")).await.image().to_rgb8();
    let smart = server.get(&format!("/unsafe/200x200/smart/{o}/subject.png")).await;
    assert_eq!(smart.dims(), (200, 200));
    let smart = smart.image().to_rgb8();
    assert!(subject_share(&centred) < 0.01, "a centred crop misses the subject");
    // The whole 80x80 subject inside the 300x300 window: 6400/90000 = 7.1% of the pixels.
    assert!(subject_share(&smart) > 0.065, "the smart crop contains the subject ({})", subject_share(&smart));

    let debug = server.get(&format!("/unsafe/debug/200x200/smart/{o}/subject.png")).await.image().to_rgb8();
    assert_eq!(debug.dimensions(), (900, 300), "debug draws on the source, not a thumbnail");
    let white = debug.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    assert!(white > 100, "the focal point's box is drawn");
}
