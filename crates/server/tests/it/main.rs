//! The HTTP contract of API.md, over a real socket with a real SSE parser.

mod admission;
mod auth;
mod helpers;
mod page;
mod plans;
mod providers;
mod replicas;
mod requests;
mod resume;
mod stores;
mod streams;
