//! Write the load benchmark's sources: photo-like 2K JPEGs (2048x1536), 12 MP JPEGs (4000x3000)
//! and 1080p JPEGs (1920x1080), q90, deterministic. `cargo run --release --example gen_sources -- DIR`

#[path = "../benches/support/photo.rs"]
mod support;

use thumbora::codec::{Channels, Format};

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: gen_sources DIR"));
    std::fs::create_dir_all(&dir).expect("create dir");
    for i in 0..10u32 {
        let path = dir.join(format!("2k_{i}.jpg"));
        if !path.exists() {
            std::fs::write(&path, support::encoded(support::photo(2048, 1536, Channels::Rgb, i), Format::Jpeg, 90))
                .expect("write");
        }
    }
    for i in 0..4u32 {
        let path = dir.join(format!("12mp_{i}.jpg"));
        if !path.exists() {
            std::fs::write(&path, support::encoded(support::photo(4000, 3000, Channels::Rgb, i), Format::Jpeg, 90))
                .expect("write");
        }
    }
    for i in 0..4u32 {
        let path = dir.join(format!("1080p_{i}.jpg"));
        if !path.exists() {
            std::fs::write(&path, support::encoded(support::photo(1920, 1080, Channels::Rgb, i), Format::Jpeg, 90))
                .expect("write");
        }
    }
    println!("sources in {}", dir.display());
}
