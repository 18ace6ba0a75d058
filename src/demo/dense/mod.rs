//! Dense retail shelves (`detlab demo --dense`): 3000–4000 px photos with 80–250 facings
//! of 40 similar SKUs, touching and partly occluding one another, price tags on the shelf
//! edges, empty gaps, perspective, a slight rotation, a lighting gradient, blur and noise.
//!
//! The scene is laid out in a flat "shelf" plane ([`dense_layout`], no pixels), then
//! rendered by inverse mapping: every image pixel is mapped back onto the shelf plane
//! (rotation about the centre, then a keystone division, [`Camera::to_shelf`]) and takes
//! the colour of the front-most facing whose silhouette covers that point, or of the
//! shelf, price tag or back wall. The same lookup fills an owner map, and each box is the
//! bounding box of the pixels its facing owns: the exact visible extent after occlusion
//! and perspective. The camera's 3×3 blur spreads edges by at most one pixel.
//!
//! Everything is a function of `(seed, index, width, height)`; rows render in parallel.
//!
//! The parts: `catalogue` (the SKU classes), `layout` (facings, shelves, camera and
//! lighting of one photo), `package` (silhouettes and label artwork) and `render`
//! (the pixels, the owner map and the boxes).

mod catalogue;
mod layout;
mod package;
mod render;

pub use catalogue::{dense_classes, DENSE_CLASS_COUNT};
pub use layout::{dense_layout, Camera, DenseLayout, Facing};
pub use render::{render_dense, render_layout};

/// Default size of a dense shelf photo (a 9-megapixel phone photo, landscape).
pub const DENSE_WIDTH: u32 = 3500;
/// Default height of a dense shelf photo.
pub const DENSE_HEIGHT: u32 = 2600;
/// Fewest and most facings on one dense photo.
pub const DENSE_FACINGS: std::ops::RangeInclusive<usize> = 80..=250;
