//! The embedded defaults, end to end through the engine.

mod gemini;
mod keys;
mod llm_support;
mod offline_matrix;
mod openai;
mod weather;
