//! The HTTP contract of API.md, over a real socket with a real SSE parser.

mod admission;
mod auth;
mod calendar;
mod helpers;
mod intake;
mod openapi;
mod page;
mod plans;
mod providers;
mod regenerate;
mod replicas;
mod requests;
mod resume;
mod saved;
mod stores;
mod streams;
mod takeover;
