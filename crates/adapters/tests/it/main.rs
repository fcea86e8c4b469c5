//! The embedded defaults, end to end through the engine.

mod db;
mod faults;
mod gemini;
mod keys;
mod llm_support;
mod offline_matrix;
mod openai;
mod places;
mod plans;
mod regenerate;
mod weather;
