//! The engine's event sequence, driven by a scripted generator (no network, no sleeps).

mod places;
mod regenerate;
mod support;
mod workflow;
