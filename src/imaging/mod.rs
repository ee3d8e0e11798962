//! Pixel primitives on bitmaps that the pipeline steps and the filters share: resampling and EXIF
//! orientation. Below both (imports `codec` and `geometry` only), so a filter never reaches up
//! into the pipeline that sequences it.

pub mod orient;
pub mod resize;
