//! Stable class colours: a hash of the class name picks the hue, so "Cola" has the same
//! colour in every session and on every machine (a user-chosen colour wins).

use egui::Color32;

/// The colour of class `name`.
pub fn class_color(name: &str, overrides: &std::collections::HashMap<String, [u8; 3]>) -> Color32 {
    if let Some([r, g, b]) = overrides.get(name) {
        return Color32::from_rgb(*r, *g, *b);
    }
    // FNV-1a over the UTF-8 bytes, then a 64-bit finaliser so that similar names get
    // unrelated hues.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    let hue = (h >> 40) as f32 / (1u64 << 24) as f32;
    egui::ecolor::Hsva::new(hue, 0.75, 0.95, 1.0).into()
}
