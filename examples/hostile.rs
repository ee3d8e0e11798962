//! Write the hostile sources of the end-to-end tests (`tests/e2e/hostile_inputs.rs`) into a
//! directory, for `scripts/hostile.sh` (each one against a release build: time, CPU, peak
//! memory) and `scripts/soak.sh`.
//!
//! `cargo run --release --example hostile -- DIR`

#[path = "../tests/e2e/hostile_inputs.rs"]
mod hostile_inputs;

use hostile_inputs as hostile;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: hostile DIR"));
    std::fs::create_dir_all(&dir).expect("create the directory");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("icc-bomb.png", hostile::png_icc_bomb(600 << 20)),
        ("text-bomb.png", hostile::png_text_bomb(8, 64 << 20)),
        ("deep.png", hostile::png(8000, 8000, 16, 6, &[])),
        ("huge-mark.png", hostile::png(8000, 8000, 8, 6, &[])),
        ("declared-75mp.jpg", hostile::jpeg_declaring(&hostile::small_jpeg(16, 16, true), 8660, 8660)),
        ("damaged-64mp.jpg", hostile::jpeg_declaring(&hostile::small_jpeg(16, 16, false), 8000, 8000)),
        ("scans.jpg", hostile::jpeg_scan_flood(2048, 2048, 1000)),
        ("scans-64.jpg", hostile::jpeg_scan_flood(8660, 8660, 64)),
        ("frames.gif", hostile::gif_frames_beyond_screen(1, 200, 2000)),
        ("photo.jpg", hostile::photo_jpeg(1600, 1200)),
        ("anim.gif", hostile::gif_animation(100, 1000)),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), &bytes).expect("write");
        println!("{name}: {} bytes", bytes.len());
    }
}
