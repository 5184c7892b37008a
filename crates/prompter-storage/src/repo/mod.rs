//! Repository methods of [`crate::Store`], one module per table.

mod results;
mod templates;
mod versions;
