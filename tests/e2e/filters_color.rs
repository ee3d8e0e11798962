//! The colour and convolution filters end to end (brightness, contrast, rgb, saturation,
//! grayscale, equalize, colorize, curve, noise, convolution, sharpen, blur): the server's
//! lossless output against thumbor 7.8's own filter code on the same pixels, what a photo looks
//! like after each, and the statuses thumbor gives to arguments its code cannot handle.

use image::AnimationDecoder;

use super::harness::*;

/// The noise images: 48x40, RGB (LCG seed 7) and RGBA with varied alpha (seed 9).
const WIDTH: u32 = 48;
const HEIGHT: u32 = 40;

const CURVE: &str = "curve([(0,0),(255,255)],[(0,50),(16,51),(32,69),(58,85),(92,120),(128,170),(140,186),(167,225),(192,245),(225,255),(244,255),(255,254)],[(0,0),(16,2),(32,18),(64,59),(92,116),(128,182),(167,211),(192,227),(224,240),(244,247),(255,252)],[(0,48),(16,50),(62,77),(92,110),(128,144),(140,153),(167,180),(192,192),(224,217),(244,225),(255,225)])";

/// FNV-1a of thumbor 7.8's output (its C filters, Pillow for grayscale, run by
/// /opt/thumbor-venv on the same bytes) for the RGB and the RGBA noise image.
const THUMBOR: &[(&str, u64, u64)] = &[
    ("brightness(40)", 0x05b806b000ad6de4, 0x2beb41dab4eb55be),
    ("contrast(40)", 0x7782d0fe6b5f1921, 0x7650832bf42fa9e9),
    ("rgb(10,-10,20)", 0xc0a1b25cbe2de80a, 0xc1fe1ab477781268),
    ("saturation(1.5)", 0x181a7497d452fc94, 0x2a7efd731f6fbd5e),
    ("grayscale()", 0xd992507242076d01, 0x234d0119ea543cb9),
    ("equalize()", 0x29603f3baefc4956, 0x2e76b8d0004e2c38),
    ("colorize(10,20,30,ff0000)", 0x588c73b8ea952507, 0x1d3a479afec233f0),
    (CURVE, 0x0d353eaf3ce3171f, 0x2383eee63827a8f5),
    ("noise(30,42)", 0xf2acbc83a647190b, 0x8cb026dbb20f82bd),
    ("convolution(1;2;1;2;4;2;1;2;1,3,true)", 0x6ee4afcb91f3a8b4, 0x0906ea2da97a6c1e),
    ("convolution(-1;-1;-1;-1;8;-1;-1;-1;-1,3,false)", 0xdc831beaaab1d8aa, 0x60c461f71b5ede64),
    ("sharpen(2,1,true)", 0x5f47806cbd763152, 0x6ac82a828b4e9002),
    ("sharpen(1.5,0.5,false)", 0xbb5ab0e6ac7ee319, 0x513c18dda35bd847),
    ("blur(5)", 0x8c3220658dcab0ca, 0x28bda77f913e9400),
    ("blur(2,1.5)", 0x9420d8db874e99f6, 0x9c9c29fecdd2eb39),
    ("brightness(40):contrast(40):blur(2,1.5):grayscale()", 0xc29aebada3cb0939, 0x060804e1eee56190),
];

/// `n` bytes of a 32-bit LCG (the oracle script generates the same).
fn lcg(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (s >> 16) as u8
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An origin serving the two noise images and the fixtures.
async fn noise_origin() -> Origin {
    let origin = Origin::start().await;
    let rgb = image::RgbImage::from_raw(WIDTH, HEIGHT, lcg((WIDTH * HEIGHT * 3) as usize, 7)).unwrap();
    let rgba = image::RgbaImage::from_raw(WIDTH, HEIGHT, lcg((WIDTH * HEIGHT * 4) as usize, 9)).unwrap();
    origin.put("/noise-rgb.png", png(image::DynamicImage::ImageRgb8(rgb)));
    origin.put("/noise-rgba.png", png(image::DynamicImage::ImageRgba8(rgba)));
    origin
}

/// The RGB bytes of a 200 answer.
async fn rgb_of(server: &Server, path: &str) -> image::RgbImage {
    let r = server.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.image().to_rgb8()
}

fn mean(img: &image::RgbImage) -> f64 {
    img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / img.as_raw().len() as f64
}

fn std_dev(img: &image::RgbImage) -> f64 {
    let m = mean(img);
    (img.as_raw().iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / img.as_raw().len() as f64).sqrt()
}

/// Mean absolute difference between horizontal neighbours: high-frequency energy.
fn roughness(img: &image::RgbImage) -> f64 {
    let (w, h) = img.dimensions();
    let mut sum = 0.0;
    for y in 0..h {
        for x in 1..w {
            let (a, b) = (img.get_pixel(x - 1, y), img.get_pixel(x, y));
            sum += (0..3).map(|c| (f64::from(a[c]) - f64::from(b[c])).abs()).sum::<f64>();
        }
    }
    sum / f64::from((w - 1) * h * 3)
}

/// Every filter, and a chain, through the real server with PNG output: the pixels are
/// thumbor's, bit for bit (alpha included: blur and convolution change it, the others keep it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixels_match_thumbor() {
    let origin = noise_origin().await;
    let server = Server::start().await;
    let o = origin.host();
    let plain = server.get(&format!("/unsafe/filters:format(png)/{o}/noise-rgb.png")).await.image();
    assert_eq!(fnv(plain.to_rgb8().as_raw()), 0x255138c250bc7015, "the source passes through unchanged");
    let plain = server.get(&format!("/unsafe/filters:format(png)/{o}/noise-rgba.png")).await.image();
    assert_eq!(fnv(plain.to_rgba8().as_raw()), 0xd6469e411cfcda83, "the source passes through unchanged");
    for (filters, rgb, rgba) in THUMBOR {
        let r = server.get(&format!("/unsafe/filters:{filters}:format(png)/{o}/noise-rgb.png")).await;
        assert_eq!(r.status, 200, "{filters}: {}", r.text());
        assert_eq!(r.content_type(), "image/png", "{filters}");
        let img = r.image();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT), "{filters}");
        assert_eq!(fnv(img.to_rgb8().as_raw()), *rgb, "{filters} on RGB");
        let img = server.get(&format!("/unsafe/filters:{filters}:format(png)/{o}/noise-rgba.png")).await.image();
        assert!(img.color().has_alpha(), "{filters} keeps the alpha channel");
        assert_eq!(fnv(img.to_rgba8().as_raw()), *rgba, "{filters} on RGBA");
    }
}

/// What each filter does to a photo (landscape.jpg resized to 300x200, PNG output).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_looks_right() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    let path = |filters: &str| format!("/unsafe/300x200/filters:{filters}format(png)/{o}/landscape.jpg");
    let plain = rgb_of(&server, &path("")).await;

    let gray = rgb_of(&server, &path("grayscale():")).await;
    assert!(gray.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "grayscale: r == g == b");
    assert!((mean(&gray) - mean(&plain)).abs() < 10.0);
    // saturation(0) collapses every pixel onto its perceived brightness.
    let desaturated = rgb_of(&server, &path("saturation(0):")).await;
    assert!(desaturated.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "saturation(0): r == g == b");

    let bright = rgb_of(&server, &path("brightness(50):")).await;
    assert!(mean(&bright) > mean(&plain) + 40.0, "{} vs {}", mean(&bright), mean(&plain));
    let dark = rgb_of(&server, &path("brightness(-50):")).await;
    assert!(mean(&dark) < mean(&plain) - 40.0);

    let contrasted = rgb_of(&server, &path("contrast(40):")).await;
    assert!(std_dev(&contrasted) > std_dev(&plain) * 1.3);
    let flat = rgb_of(&server, &path("contrast(-100):")).await;
    assert!(flat.as_raw().iter().all(|&v| v == 128), "contrast(-100) is mid grey");

    let red = rgb_of(&server, &path("rgb(100,-100,-100):")).await;
    assert!(red.pixels().all(|p| p.0 == [255, 0, 0]));
    let filled = rgb_of(&server, &path("colorize(100,100,100,336699):")).await;
    assert!(filled.pixels().all(|p| p.0 == [0x33, 0x66, 0x99]));

    let equalized = rgb_of(&server, &path("equalize():")).await;
    let range = |img: &image::RgbImage| {
        let (lo, hi) = img.as_raw().iter().fold((255, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        hi - lo
    };
    assert!(range(&equalized) >= range(&plain));
    assert!(std_dev(&equalized) > std_dev(&plain));

    // Identity curve and identity kernel change nothing.
    let identity = "[(0,0),(255,255)]";
    let curved = rgb_of(&server, &path(&format!("curve({identity},{identity},{identity},{identity}):"))).await;
    assert_eq!(curved, plain);
    let convolved = rgb_of(&server, &path("convolution(0;0;0;0;1;0;0;0;0,3,false):")).await;
    assert_eq!(convolved, plain);

    let blurred = rgb_of(&server, &path("blur(3):")).await;
    let sharpened = rgb_of(&server, &path("sharpen(2,1,false):")).await;
    assert!(roughness(&blurred) < roughness(&plain) * 0.8);
    assert!(roughness(&sharpened) > roughness(&plain) * 1.1);
    // Both keep the picture: dHash within 6 of 64 bits.
    for (name, img) in [("blur", &blurred), ("sharpen", &sharpened)] {
        let d = distance(dhash(&image::DynamicImage::ImageRgb8(img.clone())), dhash(&plain.clone().into()));
        assert!(d <= 6, "{name}: dhash distance {d}");
    }
}

/// The default (JPEG) output of each filter is the lossless one within a perceptual tolerance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_output_within_dhash_tolerance() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    for filters in [
        "brightness(20)",
        "contrast(30)",
        "rgb(10,-10,20)",
        "saturation(1.5)",
        "grayscale()",
        "equalize()",
        "colorize(10,20,30,ff0000)",
        CURVE,
        "noise(20,7)",
        "convolution(1;2;1;2;4;2;1;2;1,3,true)",
        "sharpen(2,1,true)",
        "blur(2)",
    ] {
        let jpeg = server.get(&format!("/unsafe/300x200/filters:{filters}/{o}/landscape.jpg")).await;
        assert_eq!(jpeg.status, 200, "{filters}");
        assert_eq!(jpeg.content_type(), "image/jpeg", "{filters}");
        let lossless = server.get(&format!("/unsafe/300x200/filters:{filters}:format(png)/{o}/landscape.jpg")).await;
        let d = distance(dhash(&jpeg.image()), dhash(&lossless.image()));
        assert!(d <= 4, "{filters}: dhash distance {d}");
    }
}

/// noise() is seeded: the same URL gives the same bytes, another seed other pixels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_is_deterministic() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    let get = |filters: &'static str| {
        let path = format!("/unsafe/300x200/filters:{filters}:format(png)/{o}/landscape.jpg");
        let server = &server;
        async move { server.get(&path).await.body }
    };
    assert_eq!(get("noise(30,42)").await, get("noise(30,42)").await);
    assert_ne!(get("noise(30,42)").await, get("noise(30,43)").await);
    assert_eq!(get("noise(30)").await, get("noise(30,0)").await, "no seed is glibc's default sequence");
    assert_eq!(get("noise(0,5)").await, get("noise(0)").await, "noise(0) changes nothing");
}

/// With `image.gif_filters`, each frame of an animated GIF is filtered and the animation stays;
/// by default, as in thumbor 7.8, post-transform filters leave GIFs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_gif_frames_are_filtered() {
    let origin = Origin::start().await;
    let o = origin.host();
    let thumbor_like = Server::start().await;
    let r = thumbor_like.get(&format!("/unsafe/300x200/filters:grayscale()/{o}/animated.gif")).await;
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let first = decoder.into_frames().next().unwrap().unwrap();
    let coloured = first.buffer().pixels().filter(|p| p[0].abs_diff(p[1]) > 20 || p[1].abs_diff(p[2]) > 20).count();
    assert!(coloured > 1000, "thumbor does not filter GIFs: the frames keep their colours");

    let settings = Settings { thumbora: "  image:\n    gif_filters: true\n".into(), ..Default::default() };
    let server = Server::start_with(settings).await;
    let r = server.get(&format!("/unsafe/300x200/filters:grayscale()/{o}/animated.gif")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "image/gif");
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let frames = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    for frame in &frames {
        // Palette quantisation may nudge a channel; grey stays (nearly) grey.
        let coloured =
            frame.buffer().pixels().filter(|p| p[3] > 0 && (p[0].abs_diff(p[1]) > 2 || p[1].abs_diff(p[2]) > 2));
        assert_eq!(coloured.count(), 0);
    }
}

/// Arguments that match the filter's pattern but crash thumbor's code: 500, as thumbor answers
/// (and no Cache-Control). Arguments that do not match are ignored: 200, the plain image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_follow_thumbor() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    for filters in [
        "colorize(10,20,30,red)",
        "colorize(10,20,30,ff00)",
        "convolution(1;2;1;2,3)",
        "convolution(1;2;3;4,2)",
        "curve([(1,2)(3,4)],[],[],[])",
        "curve([(01,2)],[],[],[])",
        "brightness(99999999999)",
        "noise(10,99999999999)",
    ] {
        let r = server.get(&format!("/unsafe/300x200/filters:{filters}/{o}/landscape.jpg")).await;
        assert_eq!(r.status, 500, "{filters}");
        assert_eq!(r.header("cache-control"), None, "{filters}");
    }
    let plain = server.get(&format!("/unsafe/300x200/filters:format(png)/{o}/landscape.jpg")).await.body;
    for filters in ["sharpen(2,1)", "blur(0)", "noise(-1)", "saturation(abc)", "convolution(1;2;1,0)"] {
        let r = server.get(&format!("/unsafe/300x200/filters:{filters}:format(png)/{o}/landscape.jpg")).await;
        assert_eq!(r.status, 200, "{filters}");
        assert_eq!(r.body, plain, "{filters} is ignored");
    }
    // An empty curve (which corrupts thumbor's heap) changes nothing here.
    let r = server.get(&format!("/unsafe/300x200/filters:curve([],[],[],[]):format(png)/{o}/landscape.jpg")).await;
    assert_eq!((r.status, r.body), (200, plain));
}

/// The largest blur on the full 800x600 photo stays quick (separable, O(pixels x radius)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_blur_is_bounded() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    let start = std::time::Instant::now();
    let r = server.get(&format!("/unsafe/filters:blur(1000)/{o}/landscape.jpg")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.dims(), (800, 600));
    assert!(start.elapsed() < std::time::Duration::from_secs(15), "{:?}", start.elapsed());
}
