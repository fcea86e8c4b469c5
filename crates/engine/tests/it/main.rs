//! The engine's event sequence, driven by a scripted generator (no network, no sleeps).

mod support;
mod workflow;
