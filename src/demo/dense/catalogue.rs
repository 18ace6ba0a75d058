//! The dense demo's product catalogue: ten package families, each in two label patterns
//! and two sizes, make the 40 SKU classes and their names.

/// Package silhouettes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Bottle,
    Can,
    Carton,
    Jar,
    Pouch,
    Box,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Bottle => "bottle",
            Shape::Can => "can",
            Shape::Carton => "carton",
            Shape::Jar => "jar",
            Shape::Pouch => "pouch",
            Shape::Box => "box",
        }
    }

    /// Width / height of the package.
    pub(super) fn aspect(self) -> f32 {
        match self {
            Shape::Bottle => 0.34,
            Shape::Can => 0.56,
            Shape::Carton => 0.5,
            Shape::Jar => 0.78,
            Shape::Pouch => 0.66,
            Shape::Box => 0.72,
        }
    }
}

/// Label artwork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pattern {
    Band,
    Stripes,
    Dots,
    Split,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Band => "band",
            Pattern::Stripes => "stripes",
            Pattern::Dots => "dots",
            Pattern::Split => "split",
        }
    }
}

/// One product family: a silhouette in a colour scheme. Each family comes in two label
/// patterns and two sizes: four SKUs that differ in one attribute at a time.
pub(super) struct Family {
    pub(super) shape: Shape,
    colour: &'static str,
    pub(super) body: [u8; 3],
    pub(super) accent: [u8; 3],
    patterns: [Pattern; 2],
}

pub(super) const FAMILIES: [Family; 10] = [
    Family {
        shape: Shape::Bottle,
        colour: "red",
        body: [150, 25, 30],
        accent: [235, 230, 220],
        patterns: [Pattern::Band, Pattern::Stripes],
    },
    Family {
        shape: Shape::Bottle,
        colour: "green",
        body: [35, 120, 60],
        accent: [230, 225, 90],
        patterns: [Pattern::Band, Pattern::Dots],
    },
    Family {
        shape: Shape::Can,
        colour: "red",
        body: [190, 30, 35],
        accent: [245, 245, 245],
        patterns: [Pattern::Stripes, Pattern::Split],
    },
    Family {
        shape: Shape::Can,
        colour: "blue",
        body: [30, 60, 160],
        accent: [200, 210, 225],
        patterns: [Pattern::Band, Pattern::Split],
    },
    Family {
        shape: Shape::Can,
        colour: "silver",
        body: [170, 175, 180],
        accent: [40, 110, 190],
        patterns: [Pattern::Dots, Pattern::Stripes],
    },
    Family {
        shape: Shape::Carton,
        colour: "white",
        body: [225, 228, 232],
        accent: [40, 90, 200],
        patterns: [Pattern::Band, Pattern::Dots],
    },
    Family {
        shape: Shape::Carton,
        colour: "yellow",
        body: [235, 195, 40],
        accent: [120, 60, 20],
        patterns: [Pattern::Split, Pattern::Stripes],
    },
    Family {
        shape: Shape::Jar,
        colour: "brown",
        body: [110, 70, 35],
        accent: [240, 220, 170],
        patterns: [Pattern::Band, Pattern::Split],
    },
    Family {
        shape: Shape::Pouch,
        colour: "orange",
        body: [235, 120, 25],
        accent: [250, 240, 200],
        patterns: [Pattern::Dots, Pattern::Band],
    },
    Family {
        shape: Shape::Box,
        colour: "purple",
        body: [95, 45, 130],
        accent: [240, 200, 60],
        patterns: [Pattern::Stripes, Pattern::Dots],
    },
];

/// Height of the small and the large size, as a fraction of the tallest facing a shelf
/// row holds.
const SIZES: [(&str, f32); 2] = [("S", 0.7), ("L", 0.92)];

/// Number of dense SKU classes: 10 families × 2 patterns × 2 sizes.
pub const DENSE_CLASS_COUNT: usize = FAMILIES.len() * 4;

/// One SKU (class) of the dense demo.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sku {
    pub(super) family: usize,
    pub(super) pattern: Pattern,
    /// Height as a fraction of the row's tallest facing.
    pub(super) height: f32,
}

pub(super) fn sku(class: usize) -> Sku {
    let family = class / 4;
    Sku {
        family,
        pattern: FAMILIES[family].patterns[(class / 2) % 2],
        height: SIZES[class % 2].1,
    }
}

/// The dense demo's class names, in class-id order: `shape-colour-pattern-size`, e.g.
/// `can-red-stripes-L`. Neighbouring classes differ in one attribute only.
pub fn dense_classes() -> Vec<String> {
    (0..DENSE_CLASS_COUNT)
        .map(|c| {
            let s = sku(c);
            let f = &FAMILIES[s.family];
            format!(
                "{}-{}-{}-{}",
                f.shape.name(),
                f.colour,
                s.pattern.name(),
                SIZES[c % 2].0
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_distinct_and_in_range() {
        let names = dense_classes();
        assert!((20..=60).contains(&names.len()), "{}", names.len());
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names[0], "bottle-red-band-S");
        assert_eq!(names[1], "bottle-red-band-L");
        assert_eq!(names[2], "bottle-red-stripes-S");
    }
}
