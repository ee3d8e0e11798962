//! fill, background_color, round_corner, rotate, proportion, watermark and frame through the real
//! server: sizes, positions and pixels. Expected values are what thumbor 7.8 answers for the same
//! requests on the same generated images (PNG in, PNG out, so pixels are exact).

use super::harness::*;

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    png(image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb(rgb))))
}

/// The test images, served under `/gen/`.
async fn setup() -> (Origin, Server, String) {
    let origin = Origin::start().await;
    // 40x20 blue; 40x20 with an opaque blue left half and a transparent (yellow) right half.
    origin.put("/gen/blue.png", solid(40, 20, [0, 0, 255]));
    let half = image::RgbaImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgba([0, 0, 255, 255])
        } else {
            image::Rgba([255, 255, 0, 0])
        }
    });
    origin.put("/gen/half.png", png(image::DynamicImage::ImageRgba8(half)));
    origin.put("/gen/dark.png", solid(100, 80, [30, 40, 50]));
    // 60x40 black with a red 10x10 block in the top-left corner.
    let marked =
        image::RgbImage::from_fn(60, 40, |x, y| image::Rgb(if x < 10 && y < 10 { [255, 0, 0] } else { [0; 3] }));
    origin.put("/gen/marked.png", png(image::DynamicImage::ImageRgb8(marked)));
    origin.put("/gen/grey.png", solid(100, 80, [128, 128, 128]));
    origin.put("/gen/mark.png", solid(10, 10, [255, 0, 0]));
    let server = Server::start().await;
    let host = origin.host();
    (origin, server, host)
}

/// The RGBA pixels of a response at the given points.
fn pixels(resp: &Resp, points: &[(u32, u32)]) -> Vec<[u8; 4]> {
    let img = resp.image().to_rgba8();
    points.iter().map(|&(x, y)| img.get_pixel(x, y).0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_pads_to_the_box() {
    let (_origin, server, o) = setup().await;
    let (red, blue, green) = ([255, 0, 0, 255], [0, 0, 255, 255], [0, 255, 0, 255]);
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(red)/{o}/gen/blue.png")).await;
    assert_eq!((r.status, r.content_type().as_str(), r.dims()), (200, "image/png", (40, 40)));
    // The 40x20 image sits at y = (40 - 20) // 2 = 10.
    let points = [(0, 0), (20, 20), (0, 39), (20, 9), (20, 10), (20, 29), (20, 30)];
    assert_eq!(pixels(&r, &points), [red, blue, red, red, blue, blue, red]);
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(transparent)/{o}/gen/blue.png")).await;
    assert_eq!(pixels(&r, &[(0, 0), (20, 20)]), [[0, 0, 0, 0], blue]);
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(auto)/{o}/gen/blue.png")).await;
    assert_eq!(pixels(&r, &[(0, 0)]), [blue]);
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(blur)/{o}/gen/blue.png")).await;
    assert_eq!(r.dims(), (40, 40));
    let corner = pixels(&r, &[(0, 0)])[0];
    assert!(corner[0] == 0 && corner[1] == 0 && corner[2] >= 253, "blurred blue, got {corner:?}");
    // fill_transparent merges the image over the colour; without it transparency is kept.
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(00ff00,true)/{o}/gen/half.png")).await;
    assert_eq!(pixels(&r, &[(0, 0), (5, 20), (30, 20)]), [green, blue, green]);
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(00ff00)/{o}/gen/half.png")).await;
    assert_eq!(pixels(&r, &[(0, 0), (5, 20), (30, 20)]), [green, blue, [255, 255, 0, 0]]);
    // No size: the box is the image; nothing to pad.
    let r = server.get(&format!("/unsafe/filters:fill(red)/{o}/gen/grey.png")).await;
    assert_eq!((r.dims(), pixels(&r, &[(0, 0)])[0]), ((100, 80), [128, 128, 128, 255]));
    // A JPEG: 800x600 fits in 300x225, padded with red above and below.
    let r = server.get(&format!("/unsafe/fit-in/300x300/filters:fill(red)/{o}/landscape.jpg")).await;
    assert_eq!((r.content_type().as_str(), r.dims()), ("image/jpeg", (300, 300)));
    let [cr, cg, cb, _] = pixels(&r, &[(2, 2)])[0];
    assert!(cr > 230 && cg < 30 && cb < 30, "red corner, got {cr},{cg},{cb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_failures() {
    let (_origin, server, o) = setup().await;
    // An unknown colour: thumbor's ValueError, 500.
    let r = server.get(&format!("/unsafe/fit-in/40x40/filters:fill(notacolor)/{o}/gen/blue.png")).await;
    assert_eq!(r.status, 500);
    // An `orig` side without a fit-in resize reaches PIL as a string in thumbor: 500.
    let r = server.get(&format!("/unsafe/40xorig/filters:fill(red)/{o}/gen/blue.png")).await;
    assert_eq!(r.status, 500);
    // A box past the output caps is refused before anything is allocated.
    let before = server.peak_rss_kib();
    let r = server.get(&format!("/unsafe/fit-in/16000x16000/filters:fill(red)/{o}/gen/blue.png")).await;
    assert_eq!(r.status, 400);
    assert!(server.peak_rss_kib() < before + 200_000, "no 1 GB canvas was allocated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_color_flattens_transparency() {
    let (_origin, server, o) = setup().await;
    let r = server.get(&format!("/unsafe/filters:background_color(blue)/{o}/gen/half.png")).await;
    assert_eq!((r.status, r.dims()), (200, (40, 20)));
    assert_eq!(pixels(&r, &[(5, 5), (30, 5)]), [[0, 0, 255, 255], [0, 0, 255, 255]]);
    let r = server.get(&format!("/unsafe/filters:background_color(f00)/{o}/gen/half.png")).await;
    assert_eq!(pixels(&r, &[(5, 5), (30, 5)]), [[0, 0, 255, 255], [255, 0, 0, 255]]);
    // `auto`: the mean colour of the image (blue and yellow halves: 127, 127, 127).
    let r = server.get(&format!("/unsafe/filters:background_color(auto)/{o}/gen/half.png")).await;
    assert_eq!(pixels(&r, &[(5, 5), (30, 5)]), [[0, 0, 255, 255], [127, 127, 127, 255]]);
    let r = server.get(&format!("/unsafe/filters:background_color(notacolor)/{o}/gen/half.png")).await;
    assert_eq!(r.status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_corner_paints_the_corners() {
    let (_origin, server, o) = setup().await;
    let r = server.get(&format!("/unsafe/filters:round_corner(20,255,255,255)/{o}/gen/dark.png")).await;
    assert_eq!((r.status, r.dims()), (200, (100, 80)));
    let white = [255, 255, 255, 255];
    let dark = [30, 40, 50, 255];
    let points = [(0, 0), (99, 0), (0, 79), (99, 79), (5, 5), (50, 40), (10, 10)];
    assert_eq!(pixels(&r, &points), [white, white, white, white, white, dark, dark]);
    // Transparent corners on an RGB source: the output gains an alpha channel.
    let r = server.get(&format!("/unsafe/filters:round_corner(20|10,0,0,0,true)/{o}/gen/dark.png")).await;
    assert_eq!(pixels(&r, &[(0, 0), (50, 40)]), [[0, 0, 0, 0], dark]);
    let r = server.get(&format!("/unsafe/filters:round_corner(20,256,0,0)/{o}/gen/dark.png")).await;
    assert_eq!(r.status, 500, "thumbor's C code refuses a colour above 255");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_turns_counter_clockwise() {
    let (_origin, server, o) = setup().await;
    let (red, black) = ([255, 0, 0, 255], [0, 0, 0, 255]);
    // 90: the top-left block moves to the bottom-left, the sides swap.
    let r = server.get(&format!("/unsafe/filters:rotate(90)/{o}/gen/marked.png")).await;
    assert_eq!(r.dims(), (40, 60));
    assert_eq!(pixels(&r, &[(5, 55), (5, 5), (35, 5)]), [red, black, black]);
    // 270 (and -90): to the top-right.
    for angle in ["270", "-90"] {
        let r = server.get(&format!("/unsafe/filters:rotate({angle})/{o}/gen/marked.png")).await;
        assert_eq!(r.dims(), (40, 60), "{angle}");
        assert_eq!(pixels(&r, &[(35, 5), (5, 5)]), [red, black], "{angle}");
    }
    let r = server.get(&format!("/unsafe/filters:rotate(180)/{o}/gen/marked.png")).await;
    assert_eq!((r.dims(), pixels(&r, &[(55, 35), (5, 5)])), ((60, 40), vec![red, black]));
    // Not a multiple of 90: ignored.
    let r = server.get(&format!("/unsafe/filters:rotate(45)/{o}/gen/marked.png")).await;
    assert_eq!((r.dims(), pixels(&r, &[(5, 5)])), ((60, 40), vec![red]));
    // meta/ reports the rotated size.
    let meta = server.get(&format!("/unsafe/meta/300x200/filters:rotate(90)/{o}/landscape.jpg")).await;
    let json: serde_json::Value = serde_json::from_slice(&meta.body).unwrap();
    let source = &json["thumbor"]["source"];
    assert_eq!((source["width"].as_f64(), source["height"].as_f64()), (Some(200.0), Some(300.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proportion_scales_the_result() {
    let (_origin, server, o) = setup().await;
    // 0.01 would make the height 0.8 px: ignored, as in thumbor.
    let cases = [
        ("0.5", (50, 40)),
        ("1", (100, 80)),
        ("1.5", (100, 80)),
        ("0", (100, 80)),
        ("0.02", (2, 1)),
        ("0.01", (100, 80)),
    ];
    for (p, dims) in cases {
        let r = server.get(&format!("/unsafe/filters:proportion({p})/{o}/gen/grey.png")).await;
        assert_eq!((r.status, r.dims()), (200, dims), "proportion({p})");
    }
    let r = server.get(&format!("/unsafe/filters:proportion(0.5)/{o}/gen/grey.png")).await;
    assert_eq!(pixels(&r, &[(10, 10)]), [[128, 128, 128, 255]]);
    let r = server.get(&format!("/unsafe/fit-in/300x300/filters:proportion(0.5)/{o}/portrait.jpg")).await;
    assert_eq!(r.dims(), (112, 150), "225 * 0.5 = 112.5, truncated");
}

/// `watermark(args)` on the grey 100x80 image.
async fn watermarked(server: &Server, o: &str, args: String) -> Resp {
    server.get(&format!("/unsafe/filters:watermark({args})/{o}/gen/grey.png")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_positions() {
    let (_origin, server, o) = setup().await;
    let (red, grey) = ([255, 0, 0, 255], [128, 128, 128, 255]);
    let mark = format!("{o}/gen/mark.png");
    let get = |args: String| watermarked(&server, &o, args);
    // -10,-10: 10 px from the right and bottom edges of the 100x80 image.
    let r = get(format!("{mark},-10,-10,0")).await;
    assert_eq!((r.status, r.dims()), (200, (100, 80)));
    assert_eq!(pixels(&r, &[(80, 60), (89, 69), (90, 70), (79, 59)]), [red, red, grey, grey]);
    // alpha 50: the mark at half opacity, merged as thumbor's _composite.c does.
    let r = get(format!("{mark},-10,-10,50")).await;
    assert_eq!(pixels(&r, &[(85, 65), (5, 5)]), [[191, 63, 63, 255], grey]);
    let r = get(format!("{mark},center,center,0")).await;
    assert_eq!(pixels(&r, &[(45, 35), (54, 44), (44, 34), (55, 45)]), [red, red, grey, grey]);
    // 10p,10p: 10% of 100 and of 80.
    let r = get(format!("{mark},10p,10p,0")).await;
    assert_eq!(pixels(&r, &[(10, 8), (9, 7), (19, 17), (20, 18)]), [red, grey, red, grey]);
    // repeat on both axes: 10 x 8 copies cover the image.
    let r = get(format!("{mark},repeat,repeat,0")).await;
    assert_eq!(pixels(&r, &[(0, 0), (99, 79), (50, 33)]), [red, red, red]);
    // repeat along x at the bottom edge (-0).
    let r = get(format!("{mark},repeat,-0,0")).await;
    assert_eq!(pixels(&r, &[(0, 70), (99, 79), (0, 69)]), [red, red, grey]);
    // w_ratio 50: the mark resized to half the image's width.
    let r = get(format!("{mark},0,0,0,50")).await;
    assert_eq!(pixels(&r, &[(49, 49), (50, 50), (0, 0)]), [red, grey, red]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_failures() {
    let (_origin, server, o) = setup().await;
    let closed = format!("127.0.0.1:{}", free_port());
    let cases = [
        // A missing mark: 400, as thumbor.
        (format!("{o}/status/404/mark.png"), 400),
        // Not an image: thumbor's 500.
        (format!("{o}/text.jpg"), 500),
        // An unreachable origin: Thumbora's transient-failure status (thumbor: 500).
        (format!("{closed}/mark.png"), 502),
    ];
    for (url, status) in cases {
        let r = server.get(&format!("/unsafe/filters:watermark({url},0,0,0)/{o}/gen/grey.png")).await;
        assert_eq!(r.status, status, "{url}");
    }
    let r = server.get(&format!("/unsafe/filters:watermark({o}/gen/mark.png,0,0,0,-10)/{o}/gen/grey.png")).await;
    assert_eq!(r.status, 500, "a negative ratio is PIL's ValueError in thumbor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_grows_the_image() {
    let (_origin, server, o) = setup().await;
    // thumbor 7.8 reads the corpus nine-patch's padding as (6, 0, 3, 4) and draws a white
    // border of that size; the image itself is untouched.
    let r = server.get(&format!("/unsafe/filters:frame({o}/ninepatch.png)/{o}/gen/grey.png")).await;
    assert_eq!((r.status, r.dims()), (200, (109, 84)));
    let (white, grey) = ([255, 255, 255, 255], [128, 128, 128, 255]);
    let points = [(0, 0), (5, 0), (6, 0), (105, 79), (106, 0), (108, 83), (6, 80)];
    assert_eq!(pixels(&r, &points), [white, white, grey, grey, white, white, white]);
    let r = server.get(&format!("/unsafe/300x200/filters:frame({o}/ninepatch.png)/{o}/landscape.jpg")).await;
    assert_eq!(r.dims(), (309, 204));
    let r = server.get(&format!("/unsafe/filters:frame({o}/status/404/np.png)/{o}/gen/grey.png")).await;
    assert_eq!(r.status, 500, "thumbor fails on a missing frame image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_failures_and_formats_as_thumbor() {
    let origin = Origin::start().await;
    let settings = Settings::with_sources("    thumbor_error_statuses: true\n", "  image:\n    legacy_formats: true\n");
    let server = Server::start_with(settings).await;
    let o = origin.host();
    let closed = format!("127.0.0.1:{}", free_port());
    let cases = [
        // Any failed watermark load is thumbor's 400, but a refused connection (tornado raises).
        (format!("watermark({o}/empty.jpg,0,0,0)"), 400),
        (format!("watermark({o}/status/503/m.png,0,0,0)"), 400),
        (format!("watermark({closed}/m.png,0,0,0)"), 500),
        // Any failed frame load is thumbor's 500.
        (format!("frame({o}/empty.jpg)"), 500),
        (format!("frame({closed}/m.png)"), 500),
        // Pillow opens BMP and TIFF marks and frames too (with legacy_formats).
        (format!("watermark({o}/image.bmp,10,10,50)"), 200),
        (format!("watermark({o}/image.tiff,10,10,50)"), 200),
        (format!("frame({o}/image.bmp)"), 200),
    ];
    for (filter, status) in cases {
        let r = server.get(&format!("/unsafe/100x80/filters:{filter}/{o}/landscape.jpg")).await;
        assert_eq!(r.status, status, "{filter}: {}", r.text());
    }
}
