//! Formats beyond thumbor: AVIF output (explicit and by `Accept`) and sources, animated WebP, ICC profiles
//! kept, stripped or converted to sRGB, `max_bytes()`, and AUTO_PNG_TO_JPG / `autojpg()`.

use std::io::Cursor;

use super::harness::*;

/// Width and height from an AVIF file's `ispe` property, after checking its `ftyp` brand.
fn avif_size(body: &[u8]) -> (u32, u32) {
    assert_eq!(&body[4..12], b"ftypavif", "an AVIF file");
    let at = body.windows(4).position(|w| w == b"ispe").expect("ispe box");
    let be = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
    (be(at + 8), be(at + 12))
}

/// An animated WebP's frame count and canvas size, read by image-webp.
fn webp_animation(body: &[u8]) -> (u32, (u32, u32)) {
    let decoder = image_webp::WebPDecoder::new(Cursor::new(body)).expect("a WebP file");
    assert!(decoder.is_animated(), "an animated WebP");
    (decoder.num_frames(), decoder.dimensions())
}

/// The ICC profile a JPEG, PNG or WebP body carries.
fn icc_of(body: &[u8]) -> Option<Vec<u8>> {
    use image::ImageDecoder;
    match thumbora::codec::sniff(body) {
        thumbora::codec::Sniffed::Supported(thumbora::codec::Format::Jpeg) => {
            thumbora::codec::jpeg_markers::read_metadata(body).icc
        }
        thumbora::codec::Sniffed::Supported(thumbora::codec::Format::Png) => {
            image::codecs::png::PngDecoder::new(Cursor::new(body)).unwrap().icc_profile().unwrap()
        }
        _ => image_webp::WebPDecoder::new(Cursor::new(body)).unwrap().icc_profile().unwrap(),
    }
}

fn display_p3() -> Vec<u8> {
    moxcms::ColorProfile::new_display_p3().encode().unwrap()
}

/// A 400x300 JPEG tagged Display P3: a flat saturated green.
fn p3_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(400, 300, image::Rgb([40, 200, 60]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    thumbora::codec::jpeg_markers::insert_icc(out.into_inner(), &display_p3())
}

/// The content type of a 300x200 render of `file` with `filters` (`""` or `filters:...:/`).
async fn content_type(server: &Server, host: &str, filters: &str, file: &str) -> String {
    server.get(&format!("/unsafe/300x200/{filters}{host}/{file}")).await.content_type()
}

fn with_image(yaml: &str) -> Settings {
    Settings { thumbora: format!("  image:\n{yaml}"), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_avif_writes_avif_of_the_requested_size() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let host = origin.host();
    let r = server.get(&format!("/unsafe/300x200/filters:format(avif)/{host}/landscape.jpg")).await;
    assert_eq!((r.status, r.content_type().as_str(), r.header("vary")), (200, "image/avif", None));
    assert_eq!(avif_size(&r.body), (300, 200));
    // Alpha is an auxiliary image with the alpha URN.
    let alpha = server.get(&format!("/unsafe/150x100/filters:format(avif)/{host}/rgba.png")).await;
    assert_eq!(avif_size(&alpha.body), (150, 100));
    let urn = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
    assert!(alpha.body.windows(urn.len()).any(|w| w == urn), "an alpha plane");
    // quality() beats image.avif_quality, which beats image.quality.
    let low = Server::start_with(with_image("    avif_quality: 20\n    quality: 95\n")).await;
    let by_config = low.get(&format!("/unsafe/300x200/filters:format(avif)/{host}/landscape.jpg")).await;
    let by_filter = low.get(&format!("/unsafe/300x200/filters:format(avif):quality(90)/{host}/landscape.jpg")).await;
    assert!(by_config.body.len() < r.body.len(), "avif_quality 20 < quality 80");
    assert!(by_filter.body.len() > r.body.len(), "quality(90) > quality 80");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avif_sources_are_decoded() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let host = origin.host();
    let avif = server.get(&format!("/unsafe/400x300/filters:format(avif):quality(90)/{host}/landscape.jpg")).await;
    origin.put("/photo.avif", avif.body);
    let same = server.get(&format!("/unsafe/200x150/{host}/photo.avif")).await;
    assert_eq!((same.status, same.content_type().as_str()), (200, "image/avif"), "the source's format");
    assert_eq!(avif_size(&same.body), (200, 150));
    let png = server.get(&format!("/unsafe/200x150/filters:format(png)/{host}/photo.avif")).await;
    assert_eq!(png.dims(), (200, 150));
    let reference = server.get(&format!("/unsafe/200x150/filters:format(png)/{host}/landscape.jpg")).await;
    let d = distance(dhash(&png.image()), dhash(&reference.image()));
    assert!(d <= 6, "the AVIF looks like its JPEG source (dhash distance {d})");
    let meta = server.get(&format!("/unsafe/meta/{host}/photo.avif")).await.text();
    assert!(meta.contains("\"width\": 400, \"height\": 300"), "{meta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_avif_by_accept_with_vary() {
    let origin = Origin::start().await;
    let server = Server::start_with(with_image("    auto_avif: true\n")).await;
    let path = format!("/unsafe/300x200/{}/landscape.jpg", origin.host());
    let avif = server.request(reqwest::Method::GET, &path, &[("Accept", "image/avif,image/*,*/*;q=0.8")]).await;
    assert_eq!((avif.content_type().as_str(), avif.header("vary").as_deref()), ("image/avif", Some("Accept")));
    assert_eq!(avif_size(&avif.body), (300, 200));
    let jpeg = server.request(reqwest::Method::GET, &path, &[("Accept", "image/jpeg,*/*")]).await;
    assert_eq!((jpeg.content_type().as_str(), jpeg.header("vary").as_deref()), ("image/jpeg", Some("Accept")));
    // Never for animations; no Vary for an animated GIF (thumbor's rule).
    let gif_path = format!("/unsafe/60x40/{}/animated.gif", origin.host());
    let gif = server.request(reqwest::Method::GET, &gif_path, &[("Accept", "image/avif,*/*")]).await;
    assert_eq!((gif.content_type().as_str(), gif.header("vary")), ("image/gif", None));
    assert_eq!(gif.gif_frames(), 3);
    // WebP first when both are on and accepted (thumbor's order).
    let both = Server::start_with(with_image("    auto_avif: true\n    auto_webp: true\n")).await;
    let webp = both.request(reqwest::Method::GET, &path, &[("Accept", "image/avif,image/webp,*/*")]).await;
    assert_eq!(webp.content_type(), "image/webp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_sent_on_two_lines_counts_both() {
    // As tornado joins them for thumbor: `image/jpeg` then `image/webp` on separate lines is a
    // client that takes WebP.
    let origin = Origin::start().await;
    let server = Server::start_with(with_image("    auto_webp: true\n")).await;
    let path = format!("/unsafe/300x200/{}/rgb.png", origin.host());
    let two = [("Accept", "image/jpeg"), ("Accept", "image/webp")];
    for _ in 0..2 {
        // The second time from the admission memo.
        let webp = server.request(reqwest::Method::GET, &path, &two).await;
        assert_eq!((webp.content_type().as_str(), webp.header("vary").as_deref()), ("image/webp", Some("Accept")));
    }
    let png = server.request(reqwest::Method::GET, &path, &[("Accept", "image/jpeg")]).await;
    assert_eq!(png.content_type(), "image/png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_thumbor_does_not_write_takes_back_an_earlier_one() {
    // The last format() counts: `format(xyz)` after `format(png)` leaves the format to the
    // client's `Accept` again, with `Vary: Accept` (thumbor 7.8 does the same).
    let origin = Origin::start().await;
    let server = Server::start_with(with_image("    auto_webp: true\n")).await;
    let path = format!("/unsafe/300x200/filters:format(png):format(xyz)/{}/landscape.jpg", origin.host());
    let webp = server.request(reqwest::Method::GET, &path, &[("Accept", "image/webp,*/*")]).await;
    assert_eq!((webp.content_type().as_str(), webp.header("vary").as_deref()), ("image/webp", Some("Accept")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_format_over_the_encode_cap_gives_way_to_the_sources() {
    // A WebP costs 6 a pixel, a JPEG 1: at 400x400 (160 000 pixels) a WebP would pass a cap of
    // 600 000, a JPEG not. A client that takes WebP then gets the JPEG every other client gets,
    // not a 400 that a cache keyed by the URL would hand to everyone.
    let origin = Origin::start().await;
    let server = Server::start_with(with_image(
        "    auto_webp: true
    auto_avif: true
    max_encode_cost: 600000
",
    ))
    .await;
    let path = |size: &str, filters: &str| format!("/unsafe/{size}/{filters}{}/landscape.jpg", origin.host());
    for accept in ["image/webp,*/*", "image/avif,image/webp,*/*", "image/jpeg", "*/*"] {
        let big = server.request(reqwest::Method::GET, &path("400x400", ""), &[("Accept", accept)]).await;
        assert_eq!(big.status, 200, "{accept}: {}", big.text());
        assert_eq!((big.content_type().as_str(), big.header("vary").as_deref()), ("image/jpeg", Some("Accept")));
        let image = big.image();
        assert_eq!((image.width(), image.height()), (400, 400));
        // An explicit format() is refused whatever the client takes (its answer has no Vary).
        let asked = server
            .request(reqwest::Method::GET, &path("400x400", "filters:format(webp)/"), &[("Accept", accept)])
            .await;
        assert_eq!((asked.status, asked.header("vary")), (400, None), "{accept}");
    }
    // Under the cap, the client's format as before.
    let small = server.request(reqwest::Method::GET, &path("200x200", ""), &[("Accept", "image/webp,*/*")]).await;
    assert_eq!((small.content_type().as_str(), small.header("vary").as_deref()), ("image/webp", Some("Accept")));
}

/// The EXIF payload of a JPEG (its `Exif` APP1 segment) or WebP (its EXIF chunk), if any.
fn result_exif(body: &[u8]) -> Option<Vec<u8>> {
    if body.starts_with(b"RIFF") {
        return thumbora::codec::webp_container::exif(body);
    }
    if body.starts_with(b"\x89PNG") {
        use image::ImageDecoder;
        let mut png = image::codecs::png::PngDecoder::new(Cursor::new(body)).unwrap();
        return png.exif_metadata().unwrap();
    }
    thumbora::codec::jpeg_markers::read_metadata(body).exif
}

/// thumbor's `PRESERVE_EXIF_INFO` (`image.preserve_exif`): the source's EXIF goes into JPEG, WebP
/// and PNG results, saying orientation 1 once the pixels are upright (thumbor's `reorientate`);
/// `strip_exif()` drops it; by default, as in thumbor, results carry none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preserve_exif_copies_the_source_exif_upright() {
    let origin = Origin::start().await;
    let host = origin.host();
    let source = std::fs::read(fixture("orient6.jpg")).unwrap();
    let source_exif = thumbora::codec::jpeg_markers::read_metadata(&source).exif.unwrap();
    assert_eq!(thumbora::codec::jpeg_markers::exif_orientation(&source_exif), 6);
    let server = Server::start_with(with_image("    preserve_exif: true\n")).await;
    for filters in ["", "filters:format(webp)/", "filters:format(png)/"] {
        let r = server.get(&format!("/unsafe/100x0/{filters}{host}/orient6.jpg")).await;
        assert_eq!(r.status, 200);
        let exif = result_exif(&r.body).unwrap_or_else(|| panic!("{filters}: no EXIF"));
        assert_eq!(thumbora::codec::jpeg_markers::exif_orientation(&exif), 1, "{filters}");
        assert_eq!(exif.len(), source_exif.len(), "the rest as it was");
    }
    // Not turned (respect_orientation off): the orientation stays for the viewer to apply.
    let thumbor = Server::start_with(with_image("    preserve_exif: true\n    respect_orientation: false\n")).await;
    let r = thumbor.get(&format!("/unsafe/100x0/{host}/orient6.jpg")).await;
    assert_eq!(result_exif(&r.body), Some(source_exif));
    let stripped = server.get(&format!("/unsafe/100x0/filters:strip_exif()/{host}/orient6.jpg")).await;
    assert_eq!(result_exif(&stripped.body), None);
    let plain = Server::start().await.get(&format!("/unsafe/100x0/{host}/orient6.jpg")).await;
    assert_eq!(result_exif(&plain.body), None);
}

/// thumbor's `ALLOW_ANIMATED_GIFS = False` (recorded from thumbor 7.8): an animated GIF is
/// rendered as its first frame, exactly as a one-frame GIF is, so automatic WebP applies to it
/// (with `Vary: Accept`) and `meta/` counts one frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_gifs_off_renders_the_first_frame_as_a_still_gif() {
    let origin = Origin::start().await;
    let host = origin.host();
    let server = Server::start_with(with_image("    animated_gifs: false\n    auto_webp: true\n")).await;
    let gif = server.get(&format!("/unsafe/60x40/{host}/animated.gif")).await;
    assert_eq!((gif.status, gif.content_type().as_str(), gif.gif_frames()), (200, "image/gif", 1));
    assert_eq!((gif.dims(), gif.header("vary").as_deref()), ((60, 40), Some("Accept")));
    let accept = [("Accept", "image/webp,*/*")];
    let webp = server.request(reqwest::Method::GET, &format!("/unsafe/60x40/{host}/animated.gif"), &accept).await;
    assert_eq!((webp.content_type().as_str(), webp.header("vary").as_deref()), ("image/webp", Some("Accept")));
    let decoder = image_webp::WebPDecoder::new(Cursor::new(&webp.body)).unwrap();
    assert_eq!((decoder.is_animated(), decoder.dimensions()), (false, (60, 40)));
    let meta = server.get(&format!("/unsafe/meta/60x40/{host}/animated.gif")).await.text();
    assert!(meta.contains("\"frameCount\": 1"), "{meta}");
    // The default keeps the animation.
    let animated = Server::start().await.get(&format!("/unsafe/60x40/{host}/animated.gif")).await;
    assert_eq!(animated.gif_frames(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_gif_becomes_animated_webp_and_animated_webp_stays_animated() {
    let origin = Origin::start().await;
    let host = origin.host();
    // As in thumbor 7.8, format() is a post-transform filter and GIFs skip those by default.
    let thumbor_like = Server::start().await;
    let r = thumbor_like.get(&format!("/unsafe/300x200/filters:format(webp)/{host}/animated.gif")).await;
    assert_eq!((r.content_type().as_str(), r.gif_frames()), ("image/gif", 3));
    // With image.gif_filters, format(webp) turns the animated GIF into an animated WebP.
    let server = Server::start_with(with_image("    auto_webp: true\n    gif_filters: true\n")).await;
    let r = server.get(&format!("/unsafe/300x200/filters:format(webp)/{host}/animated.gif")).await;
    assert_eq!((r.status, r.content_type().as_str(), r.header("vary")), (200, "image/webp", None));
    assert_eq!(webp_animation(&r.body), (3, (300, 200)));

    // An animated WebP source keeps its frames, also under automatic WebP (Vary as thumbor: only
    // animated GIFs go without it).
    let accept = [("Accept", "image/webp,*/*")];
    let r = server.request(reqwest::Method::GET, &format!("/unsafe/60x40/{host}/animated.webp"), &accept).await;
    assert_eq!((r.content_type().as_str(), r.header("vary").as_deref()), ("image/webp", Some("Accept")));
    assert_eq!(webp_animation(&r.body), (3, (60, 40)));
    // ... and becomes an animated GIF under format(gif), a still PNG under format(png).
    let gif = server.get(&format!("/unsafe/60x40/filters:format(gif)/{host}/animated.webp")).await;
    assert_eq!((gif.content_type().as_str(), gif.gif_frames()), ("image/gif", 3));
    let png = server.get(&format!("/unsafe/60x40/filters:format(png)/{host}/animated.webp")).await;
    assert_eq!((png.content_type().as_str(), png.dims()), ("image/png", (60, 40)));
    // image.max_frames still bounds the frames.
    let strict = Server::start_with(with_image("    max_frames: 2\n")).await;
    assert_eq!(strict.get(&format!("/unsafe/60x40/{host}/animated.webp")).await.status, 400);

    // thumbor's behaviour on request: GIF stays GIF, animated WebP gives its first frame.
    let thumbor = Server::start_with(with_image("    animated_webp: false\n")).await;
    let gif = thumbor.get(&format!("/unsafe/300x200/filters:format(webp)/{host}/animated.gif")).await;
    assert_eq!((gif.content_type().as_str(), gif.gif_frames()), ("image/gif", 3));
    let still = thumbor.get(&format!("/unsafe/60x40/{host}/animated.webp")).await;
    let decoder = image_webp::WebPDecoder::new(Cursor::new(&still.body)).unwrap();
    assert!(!decoder.is_animated());
    assert_eq!(decoder.dimensions(), (60, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_bytes_lowers_quality_until_the_result_fits() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let host = origin.host();
    // WebP at quality 100 is lossless (as in thumbor); the first retry, 75, is lossy.
    for (format, quality) in [("jpeg", ""), ("webp", "quality(100):")] {
        let path =
            |extra: &str| format!("/unsafe/300x200/filters:{quality}{extra}format({format})/{host}/landscape.jpg");
        let full = server.get(&path("")).await;
        assert!(full.body.len() > 5000, "{format}: the test needs a result above 5000 bytes ({})", full.body.len());
        let fit = server.get(&path("max_bytes(5000):")).await;
        assert_eq!(fit.content_type(), format!("image/{format}"));
        assert!(fit.body.len() <= 5000, "{format}: {} bytes", fit.body.len());
        assert_eq!(fit.dims(), (300, 200));
        // Unreachable: thumbor gives the first result back.
        let tiny = server.get(&path("max_bytes(100):")).await;
        assert_eq!(tiny.body, full.body, "{format}");
    }
    // PNG is never re-encoded.
    let png = server.get(&format!("/unsafe/300x200/{host}/rgba.png")).await;
    let png_limited = server.get(&format!("/unsafe/300x200/filters:max_bytes(1000)/{host}/rgba.png")).await;
    assert_eq!(png.body, png_limited.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icc_profiles_are_kept_stripped_or_converted() {
    let origin = Origin::start().await;
    origin.put("/p3.jpg", p3_jpeg());
    let host = origin.host();
    let p3 = display_p3();
    let server = Server::start().await;
    for format in ["jpeg", "png", "webp"] {
        let kept = server.get(&format!("/unsafe/200x150/filters:format({format})/{host}/p3.jpg")).await;
        assert_eq!(icc_of(&kept.body).as_deref(), Some(p3.as_slice()), "{format} keeps the profile");
        let stripped = server.get(&format!("/unsafe/200x150/filters:format({format}):strip_icc()/{host}/p3.jpg")).await;
        assert_eq!(icc_of(&stripped.body), None, "{format}: strip_icc()");
        // Stripping does not convert: the same pixels, read without their profile.
        let (a, b) = (kept.image().to_rgb8(), stripped.image().to_rgb8());
        assert!(a.get_pixel(100, 75).0.iter().zip(b.get_pixel(100, 75).0).all(|(x, y)| x.abs_diff(y) <= 3));
    }

    let srgb = Server::start_with(with_image("    icc: srgb\n")).await;
    let kept = server.get(&format!("/unsafe/200x150/filters:format(png)/{host}/p3.jpg")).await.image().to_rgb8();
    let converted = srgb.get(&format!("/unsafe/200x150/filters:format(png)/{host}/p3.jpg")).await;
    assert_eq!(icc_of(&converted.body), None, "icc: srgb drops the profile");
    let (before, after) = (kept.get_pixel(100, 75).0, converted.image().to_rgb8().get_pixel(100, 75).0);
    assert_ne!(before, after, "P3 green expressed in sRGB");
    assert!(after[1] > before[1].saturating_sub(10) && after[0] < before[0], "{before:?} -> {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_results_are_written_as_gray_pngs() {
    // As Pillow writes its L images: `grayscale()` of a colour photo, and a gray source, come
    // out as gray PNGs (IHDR colour type 0), with the pixels an RGB PNG would have had.
    let origin = Origin::start().await;
    let host = origin.host();
    let server = Server::start().await;
    let colour_type = |body: &[u8]| body[25];
    let gray = server.get(&format!("/unsafe/300x200/filters:grayscale():format(png)/{host}/landscape.jpg")).await;
    assert_eq!((gray.status, gray.content_type().as_str(), colour_type(&gray.body)), (200, "image/png", 0));
    let pixels = gray.image().to_rgb8();
    assert_eq!(pixels.dimensions(), (300, 200));
    // The same pixels as the colour-typed result of the same steps (a hair of colour keeps it RGB).
    let tinted =
        server.get(&format!("/unsafe/300x200/filters:grayscale():rgb(0,0,1):format(png)/{host}/landscape.jpg")).await;
    assert_eq!(colour_type(&tinted.body), 2);
    assert!(gray.body.len() * 2 < tinted.body.len(), "{} vs {} bytes", gray.body.len(), tinted.body.len());
    let colour = server.get(&format!("/unsafe/300x200/filters:format(png)/{host}/landscape.jpg")).await;
    assert_eq!(colour_type(&colour.body), 2, "a colour result stays RGB");
    let source = server.get(&format!("/unsafe/{host}/gray.png")).await;
    assert_eq!((source.content_type().as_str(), colour_type(&source.body)), ("image/png", 0));
    assert!(pixels.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autojpg_and_auto_png_to_jpg() {
    let origin = Origin::start().await;
    let host = origin.host();
    // Defaults: thumbor 7.8 ignores autojpg() (not a builtin filter) and AUTO_PNG_TO_JPG is off.
    let default = Server::start().await;
    assert_eq!(content_type(&default, &host, "", "rgb.png").await, "image/png");
    assert_eq!(content_type(&default, &host, "filters:autojpg()/", "rgb.png").await, "image/png");

    // The filter loaded: it turns the conversion on for opaque PNGs only.
    let filter = Server::start_with(with_image("    autojpg_filter: true\n")).await;
    assert_eq!(content_type(&filter, &host, "", "rgb.png").await, "image/png");
    assert_eq!(content_type(&filter, &host, "filters:autojpg()/", "rgb.png").await, "image/jpeg");
    assert_eq!(content_type(&filter, &host, "filters:autojpg(true)/", "rgb.png").await, "image/jpeg");
    assert_eq!(content_type(&filter, &host, "filters:autojpg(false)/", "rgb.png").await, "image/png");
    assert_eq!(content_type(&filter, &host, "filters:autojpg()/", "rgba.png").await, "image/png");
    assert_eq!(content_type(&filter, &host, "filters:autojpg()/", "landscape.jpg").await, "image/jpeg");

    // AUTO_PNG_TO_JPG on, filter not loaded: every opaque PNG, whatever the URL says.
    let auto = Server::start_with(with_image("    auto_png_to_jpg: true\n")).await;
    assert_eq!(content_type(&auto, &host, "", "rgb.png").await, "image/jpeg");
    assert_eq!(content_type(&auto, &host, "", "rgba.png").await, "image/png");
    assert_eq!(content_type(&auto, &host, "filters:autojpg(false)/", "rgb.png").await, "image/jpeg");
    assert_eq!(content_type(&auto, &host, "filters:format(png)/", "rgb.png").await, "image/png");

    // Both: thumbor converts only when the URL has no autojpg() at all (`request_override is
    // None`), so autojpg(true) turns it off as autojpg(false) does.
    let both = Server::start_with(with_image("    auto_png_to_jpg: true\n    autojpg_filter: true\n")).await;
    assert_eq!(content_type(&both, &host, "", "rgb.png").await, "image/jpeg");
    assert_eq!(content_type(&both, &host, "filters:autojpg(false)/", "rgb.png").await, "image/png");
    assert_eq!(content_type(&both, &host, "filters:autojpg(true)/", "rgb.png").await, "image/png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_formats_only_when_switched_on() {
    let origin = Origin::start().await;
    let host = origin.host();
    let strict = Server::start().await;
    assert_eq!(strict.get(&format!("/unsafe/100x100/{host}/image.bmp")).await.status, 400);
    assert_eq!(strict.get(&format!("/unsafe/100x100/{host}/image.tiff")).await.status, 400);
    let legacy = Server::start_with(with_image("    legacy_formats: true\n")).await;
    let bmp = legacy.get(&format!("/unsafe/100x100/{host}/image.bmp")).await;
    assert_eq!((bmp.status, bmp.content_type().as_str(), bmp.dims()), (200, "image/jpeg", (100, 100)));
    let tiff = legacy.get(&format!("/unsafe/{host}/image.tiff")).await;
    assert_eq!((tiff.status, tiff.content_type().as_str(), tiff.dims()), (200, "image/png", (120, 90)));
    assert_eq!(legacy.get(&format!("/unsafe/100x100/{host}/image.svg")).await.status, 400, "never SVG");
}
