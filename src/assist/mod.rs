//! Labelling assistants: the tools that turn one human action into a finished box.
//!
//! * [`click_box`]: one click → the box of the object under it (the model's best
//!   candidate there, else a region grown from the click);
//! * [`tighten`]: a box's edges snapped to the object's edges;
//! * [`similar`]: every facing like the selected one, as proposals to review;
//! * [`known`]: every facing like any of the labelled products, each with its class;
//! * [`queue`]: which unlabelled image to label next.
//!
//! Pure functions over pixels and boxes (no UI, no network): the app runs them on
//! background threads and the simulated labeller (`detlab bench labelling`) calls them
//! through the app's commands.

pub mod click_box;
mod correlation;
mod example_fit;
pub mod known;
pub mod queue;
pub mod region;
mod segments;
pub mod shelf_row;
pub mod similar;
pub mod tighten;
