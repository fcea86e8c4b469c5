//! The embedded defaults, end to end through the engine.

mod offline_matrix;
