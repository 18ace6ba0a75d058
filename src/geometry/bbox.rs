//! Axis-aligned boxes. `BoxXyxy` (corners) is the canonical form; `BoxXywh` is COCO's.
//! Distinct types keep the two conventions from being mixed up.

use serde::{Deserialize, Serialize};

/// A box by its corners, in image pixels: `x1 ≤ x2`, `y1 ≤ y2` for a valid box.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct BoxXyxy {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

/// A box by its top-left corner and size (COCO `bbox`).
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct BoxXywh {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl BoxXyxy {
    pub const fn new(x1: f64, y1: f64, x2: f64, y2: f64) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// The same box with its corners ordered (`x1 ≤ x2`, `y1 ≤ y2`).
    pub fn normalized(self) -> Self {
        Self::new(
            self.x1.min(self.x2),
            self.y1.min(self.y2),
            self.x1.max(self.x2),
            self.y1.max(self.y2),
        )
    }

    pub fn width(&self) -> f64 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f64 {
        self.y2 - self.y1
    }

    /// Area; zero for an empty or inverted box.
    pub fn area(&self) -> f64 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn center(&self) -> (f64, f64) {
        ((self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5)
    }

    pub fn is_finite(&self) -> bool {
        self.x1.is_finite() && self.y1.is_finite() && self.x2.is_finite() && self.y2.is_finite()
    }

    /// Area of the overlap with `other` (zero when they only touch).
    pub fn intersection(&self, other: &Self) -> f64 {
        let w = self.x2.min(other.x2) - self.x1.max(other.x1);
        let h = self.y2.min(other.y2) - self.y1.max(other.y1);
        if w <= 0.0 || h <= 0.0 {
            0.0
        } else {
            w * h
        }
    }

    /// Whether `other` lies wholly inside this box (edges may touch); both normalized.
    pub fn contains(&self, other: &Self) -> bool {
        let (a, b) = (self.normalized(), other.normalized());
        b.x1 >= a.x1 && b.y1 >= a.y1 && b.x2 <= a.x2 && b.y2 <= a.y2
    }

    /// The smallest box holding this one and `other` (both normalized).
    pub fn hull(&self, other: &Self) -> Self {
        let (a, b) = (self.normalized(), other.normalized());
        Self::new(
            a.x1.min(b.x1),
            a.y1.min(b.y1),
            a.x2.max(b.x2),
            a.y2.max(b.y2),
        )
    }

    /// Intersection over union; 0 when the union is empty.
    pub fn iou(&self, other: &Self) -> f64 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The box on whole pixels (each edge rounded), as label files store it.
    pub fn rounded(&self) -> Self {
        Self::new(
            self.x1.round(),
            self.y1.round(),
            self.x2.round(),
            self.y2.round(),
        )
    }

    /// Clamps the box into `[0, width] × [0, height]`.
    pub fn clamp_to(&self, width: f64, height: f64) -> Self {
        Self::new(
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
            self.x2.clamp(0.0, width),
            self.y2.clamp(0.0, height),
        )
    }

    pub fn translated(&self, dx: f64, dy: f64) -> Self {
        Self::new(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)
    }

    pub fn to_xywh(&self) -> BoxXywh {
        BoxXywh {
            x: self.x1,
            y: self.y1,
            w: self.width(),
            h: self.height(),
        }
    }
}

impl BoxXywh {
    pub fn to_xyxy(&self) -> BoxXyxy {
        BoxXyxy::new(self.x, self.y, self.x + self.w, self.y + self.h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_and_hull() {
        let a = BoxXyxy::new(0.0, 0.0, 10.0, 10.0);
        let inner = BoxXyxy::new(10.0, 5.0, 2.0, 10.0); // not normalized, edges touching
        assert!(a.contains(&inner));
        assert!(!inner.contains(&a));
        assert!(!a.contains(&BoxXyxy::new(5.0, 5.0, 11.0, 6.0)));
        let far = BoxXyxy::new(20.0, -5.0, 30.0, 2.0);
        assert_eq!(a.hull(&far), BoxXyxy::new(0.0, -5.0, 30.0, 10.0));
        assert!(a.hull(&far).contains(&a) && a.hull(&far).contains(&far));
    }

    #[test]
    fn iou_of_identical_disjoint_and_touching_boxes() {
        let a = BoxXyxy::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BoxXyxy::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert_eq!(a.iou(&BoxXyxy::new(10.0, 0.0, 20.0, 10.0)), 0.0);
        let half = BoxXyxy::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-12);
    }

    #[test]
    fn xywh_round_trip_and_normalize() {
        let a = BoxXyxy::new(3.5, 4.0, 10.0, 20.25);
        assert_eq!(a.to_xywh().to_xyxy(), a);
        assert_eq!(
            BoxXyxy::new(10.0, 20.0, 1.0, 2.0).normalized(),
            BoxXyxy::new(1.0, 2.0, 10.0, 20.0)
        );
        assert_eq!(BoxXyxy::new(10.0, 20.0, 1.0, 2.0).area(), 0.0);
    }

    #[test]
    fn clamp_keeps_inside_image() {
        let b = BoxXyxy::new(-5.0, 3.0, 700.0, 500.0).clamp_to(640.0, 480.0);
        assert_eq!(b, BoxXyxy::new(0.0, 3.0, 640.0, 480.0));
    }
}
