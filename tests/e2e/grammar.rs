//! Every segment of the thumbor URL grammar, end to end: status, type, dimensions, pixels.

use super::harness::*;

async fn setup() -> (Origin, Server) {
    let origin = Origin::start().await;
    let server = Server::start().await;
    (origin, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_fit_in_and_orig() {
    let (origin, server) = setup().await;
    let o = origin.host();
    // landscape.jpg is 800x600, portrait.jpg 600x800.
    let cases: &[(&str, (u32, u32))] = &[
        ("300x200", (300, 200)),
        ("300x0", (300, 225)),
        ("0x150", (200, 150)),
        ("x150", (200, 150)),
        ("300x", (300, 225)),
        ("0x0", (800, 600)),
        ("1600x1200", (1600, 1200)),
        ("fit-in/300x300", (300, 225)),
        ("fit-in/1000x1000", (800, 600)),
        ("full-fit-in/300x300", (400, 300)),
        ("adaptive-fit-in/200x300", (267, 200)),
        ("adaptive-full-fit-in/300x200", (300, 225)),
        ("adaptive-full-fit-in/200x300", (300, 225)),
        ("origx100", (800, 100)),
        ("100xorig", (100, 600)),
        ("10x10:410x310/0x0", (400, 300)),
        ("10x10:410x310/200x0", (200, 150)),
        ("500x500:100x100/0x0", (800, 600)),
        ("-300x-200", (300, 200)),
        ("-x-", (800, 600)),
        ("300x200/left/top", (300, 200)),
        ("300x200/right/bottom/smart", (300, 200)),
    ];
    for (segment, (w, h)) in cases {
        let r = server.get(&format!("/unsafe/{segment}/{o}/landscape.jpg")).await;
        assert_eq!(r.status, 200, "{segment}: {}", r.text());
        assert_eq!(r.content_type(), "image/jpeg", "{segment}");
        assert_eq!(r.dims(), (*w, *h), "{segment}");
    }
    let r = server.get(&format!("/unsafe/adaptive-fit-in/300x200/{o}/portrait.jpg")).await;
    assert_eq!(r.dims(), (200, 267), "adaptive swaps the box for a portrait source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_mirror_the_pixels() {
    let (origin, server) = setup().await;
    let o = origin.host();
    let plain = server.get(&format!("/unsafe/300x200/{o}/landscape.jpg")).await.image();
    let flipped = server.get(&format!("/unsafe/-300x200/{o}/landscape.jpg")).await.image();
    let vflipped = server.get(&format!("/unsafe/300x-200/{o}/landscape.jpg")).await.image();
    // Mirroring the plain result by hand must give (nearly) the server's flip: dHash within 4 bits.
    assert!(distance(dhash(&plain.fliph()), dhash(&flipped)) <= 4);
    assert!(distance(dhash(&plain.flipv()), dhash(&vflipped)) <= 4);
    assert!(distance(dhash(&plain), dhash(&flipped)) > 10, "the flip changes the picture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alignment_picks_the_crop() {
    let origin = Origin::start().await;
    // A 400x100 image: left half red, right half blue. A 100x100 crop keeps one side.
    let mut img = image::RgbImage::new(400, 100);
    for (x, _, p) in img.enumerate_pixels_mut() {
        *p = if x < 200 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) };
    }
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut png, image::ImageFormat::Png).unwrap();
    origin.put("/halves.png", png.into_inner());
    let server = Server::start().await;
    let o = origin.host();
    let left = server.get(&format!("/unsafe/100x100/left/{o}/halves.png")).await.image().to_rgb8();
    let right = server.get(&format!("/unsafe/100x100/right/{o}/halves.png")).await.image().to_rgb8();
    assert_eq!(left.get_pixel(50, 50).0, [255, 0, 0]);
    assert_eq!(right.get_pixel(50, 50).0, [0, 0, 255]);
    // focal() on the right half moves a centred crop there.
    let focal = server.get(&format!("/unsafe/100x100/filters:focal(300x40:320x60)/{o}/halves.png")).await;
    assert_eq!(focal.image().to_rgb8().get_pixel(50, 50).0, [0, 0, 255]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_debug_meta_and_stretch() {
    let (origin, server) = setup().await;
    let o = origin.host();
    // trim.png: 340x240 with a 20 px uniform border.
    assert_eq!(server.get(&format!("/unsafe/trim/{o}/trim.png")).await.dims(), (300, 200));
    assert_eq!(server.get(&format!("/unsafe/trim:bottom-right/{o}/trim_br.png")).await.dims(), (340, 240));
    assert_eq!(server.get(&format!("/unsafe/debug/300x200/{o}/landscape.jpg")).await.dims(), (800, 600));
    let stretched = server.get(&format!("/unsafe/300x100/filters:stretch()/{o}/landscape.jpg")).await;
    assert_eq!(stretched.dims(), (300, 100));
    let meta = server.get(&format!("/unsafe/meta/300x200/{o}/landscape.jpg")).await;
    assert_eq!(meta.content_type(), "application/json");
    let json: serde_json::Value = serde_json::from_slice(&meta.body).unwrap();
    assert_eq!(json["thumbor"]["target"]["width"], 300.0);
    assert_eq!(json["thumbor"]["operations"][0]["type"], "crop");
    let jsonp = server.get(&format!("/unsafe/meta/300x200/{o}/landscape.jpg?callback=handle")).await;
    assert_eq!(jsonp.content_type(), "text/javascript");
    assert!(jsonp.text().starts_with("handle({\"thumbor\""));
    let evil = server.get(&format!("/unsafe/meta/300x200/{o}/landscape.jpg?callback=alert(1)//")).await;
    assert_eq!(evil.content_type(), "application/json", "non-identifier callbacks are ignored");
}

/// thumbor's META_CALLBACK_NAME: every `meta/` answer calls it, whatever `?callback=` says (and
/// images are untouched).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_meta_callback_wraps_every_meta_answer() {
    let origin = Origin::start().await;
    let o = origin.host();
    let settings = Settings::with_sources("", "  response:\n    meta_callback_name: thumbor.meta\n");
    let server = Server::start_with(settings).await;
    for query in ["", "?callback=handle"] {
        let meta = server.get(&format!("/unsafe/meta/300x200/{o}/landscape.jpg{query}")).await;
        assert_eq!(meta.content_type(), "text/javascript", "{query}");
        assert!(meta.text().starts_with("thumbor.meta({\"thumbor\""), "{query}: {}", meta.text());
    }
    let image = server.get(&format!("/unsafe/300x200/{o}/landscape.jpg")).await;
    assert_eq!((image.content_type().as_str(), image.dims()), ("image/jpeg", (300, 200)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_formats_and_issue_two_filters() {
    let (origin, server) = setup().await;
    let o = origin.host();
    for (filter, ctype) in [
        ("format(png)", "image/png"),
        ("format(webp)", "image/webp"),
        ("format(gif)", "image/gif"),
        ("format(jpeg)", "image/jpeg"),
    ] {
        let r = server.get(&format!("/unsafe/200x150/filters:{filter}/{o}/landscape.jpg")).await;
        assert_eq!((r.status, r.content_type().as_str()), (200, ctype), "{filter}");
        assert_eq!(r.dims(), (200, 150), "{filter}");
    }
    let low = server.get(&format!("/unsafe/300x200/filters:quality(10)/{o}/landscape.jpg")).await;
    let high = server.get(&format!("/unsafe/300x200/filters:quality(95)/{o}/landscape.jpg")).await;
    assert!(low.body.len() * 2 < high.body.len(), "quality() changes the encoding");
    let r = server.get(&format!("/unsafe/300x200/filters:max_age(60)/{o}/landscape.jpg")).await;
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=60,public"));
    let r = server.get(&format!("/unsafe/300x200/filters:max_age(0)/{o}/landscape.jpg")).await;
    assert_eq!((r.header("cache-control"), r.header("expires")), (None, None));
    // small.jpg is 64x48.
    let r = server.get(&format!("/unsafe/200x150/filters:no_upscale()/{o}/small.jpg")).await;
    assert_eq!(r.dims(), (64, 48));
    let r = server.get(&format!("/unsafe/fit-in/200x200/filters:upscale()/{o}/small.jpg")).await;
    assert_eq!(r.dims(), (200, 150));
    let r = server.get(&format!("/unsafe/200x200/filters:unknown(1):quality(abc)/{o}/small.jpg")).await;
    assert_eq!(r.status, 200, "unknown filters and bad arguments are ignored as in thumbor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_formats() {
    let (origin, server) = setup().await;
    let o = origin.host();
    let cases: &[(&str, &str, (u32, u32))] = &[
        ("rgba.png", "image/png", (100, 100)),
        ("palette.png", "image/png", (100, 75)),
        ("gray.png", "image/png", (100, 75)),
        ("png16.png", "image/png", (100, 75)),
        ("gray.jpg", "image/jpeg", (100, 75)),
        ("cmyk.jpg", "image/jpeg", (100, 75)),
        ("progressive.jpg", "image/jpeg", (100, 75)),
        ("truncated.jpg", "image/jpeg", (100, 75)),
        ("lossy.webp", "image/webp", (100, 80)),
        ("lossless_alpha.webp", "image/webp", (100, 100)),
        ("single.gif", "image/gif", (100, 67)),
    ];
    for (file, ctype, (w, h)) in cases {
        let r = server.get(&format!("/unsafe/{w}x{h}/{o}/{file}")).await;
        assert_eq!((r.status, r.content_type().as_str()), (200, *ctype), "{file}: {}", r.text());
        assert_eq!(r.dims(), (*w, *h), "{file}");
    }
    let png = server.get(&format!("/unsafe/100x100/{o}/rgba.png")).await.image();
    assert!(png.color().has_alpha(), "transparency is kept");
    // CMYK comes out with the right colours: the fixture is a warm photo, not its inverse.
    let cmyk = server.get(&format!("/unsafe/0x0/{o}/cmyk.jpg")).await.image().to_rgb8();
    let reference = image::open(fixture("cmyk.jpg")).map(|i| i.to_rgb8()).ok();
    if let Some(reference) = reference {
        let d =
            distance(dhash(&image::DynamicImage::ImageRgb8(cmyk)), dhash(&image::DynamicImage::ImageRgb8(reference)));
        assert!(d <= 6, "CMYK colours (dHash distance {d})");
    }
    // Animated GIFs stay animated, every frame resized.
    let gif = server.get(&format!("/unsafe/60x40/{o}/animated.gif")).await;
    assert_eq!((gif.content_type().as_str(), gif.gif_frames(), gif.dims()), ("image/gif", 3, (60, 40)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exif_orientation_is_applied_by_default() {
    let (origin, server) = setup().await;
    let o = origin.host();
    // orient6.jpg is stored 400x300 with orientation 6 (rotate 90): it displays 300x400.
    assert_eq!(server.get(&format!("/unsafe/{o}/orient6.jpg")).await.dims(), (300, 400));
    assert_eq!(server.get(&format!("/unsafe/{o}/orient8.jpg")).await.dims(), (300, 400));
    assert_eq!(server.get(&format!("/unsafe/{o}/orient3.jpg")).await.dims(), (400, 300));
    assert_eq!(server.get(&format!("/unsafe/150x0/{o}/orient6.jpg")).await.dims(), (150, 200));
    let compat = Server::start_with(Settings {
        thumbora: "  image:\n    respect_orientation: false\n".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(compat.get(&format!("/unsafe/{o}/orient6.jpg")).await.dims(), (400, 300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_url_forms() {
    let (origin, server) = setup().await;
    let o = origin.host();
    let forms = [
        format!("/unsafe/100x75/{o}/landscape.jpg"),
        format!("/unsafe/100x75/http://{o}/landscape.jpg"),
        format!("/unsafe/100x75/http%3A%2F%2F{}%2Flandscape.jpg", o.replace(':', "%3A")),
        format!("/unsafe/100x75/{o}/landscape.jpg?ignored=1"),
    ];
    for path in &forms {
        let r = server.get(path).await;
        assert_eq!((r.status, r.dims()), (200, (100, 75)), "{path}");
    }
    // Generated sources work like fixtures: a 1200x900 PNG photo.
    origin.put("/gen/photo.png", photo(1200, 900, image::ImageFormat::Png));
    let r = server.get(&format!("/unsafe/120x90/{o}/gen/photo.png")).await;
    assert_eq!((r.status, r.content_type().as_str(), r.dims()), (200, "image/png", (120, 90)));
    // The query string of the thumbor URL never reaches the origin.
    assert_eq!(origin.hits("/landscape.jpg?ignored=1"), 0);
    // A query string meant for the origin must be percent-encoded inside the image URL.
    let r = server.get(&format!("/unsafe/100x75/{o}/qs/landscape.jpg%3Fok%3D1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(origin.hits("/qs/landscape.jpg?ok=1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orig_sizes_with_upscale_filters_fail_as_in_thumbor() {
    let (origin, server) = setup().await;
    let o = origin.host();
    // thumbor compares the string 'orig' with a number in no_upscale() and upscale(): 500.
    for path in [
        format!("/unsafe/origx100/filters:no_upscale()/{o}/landscape.jpg"),
        format!("/unsafe/fit-in/100xorig/filters:no_upscale()/{o}/landscape.jpg"),
        format!("/unsafe/meta/origx400/left/filters:upscale()/{o}/landscape.jpg"),
        format!("/unsafe/fit-in/2000xorig/filters:upscale()/{o}/landscape.jpg"),
    ] {
        assert_eq!(server.get(&path).await.status, 500, "{path}");
    }
    // Where fit-in resized, the box holds numbers again and upscale() works.
    let r = server.get(&format!("/unsafe/fit-in/100xorig/filters:upscale()/{o}/landscape.jpg")).await;
    assert_eq!(r.status, 200);
}
