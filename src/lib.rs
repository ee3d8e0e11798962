//! Thumbora: a thumbor-compatible image server on Cloudflare's Pingora.
//!
//! A request goes `url` (parse the thumbor grammar) -> `security` (signature, sources) ->
//! `cache` (pingora-cache, keyed by the canonical request) -> on a miss `render` (fetch through
//! `loader`, then `pipeline` on the bounded render pool) -> `response`. `proxy` is the Pingora
//! glue; `server` builds the whole from a `config`.
//!
//! The entry points are [`config::FileConfig::load`] and [`server::build_server`]; [`cli`] holds
//! the subcommands (`thumbora sign`, `thumbora config`).

// The unsafe blocks (lowering render threads' priority with setpriority; the global allocator)
// carry their own allow.
#![deny(unsafe_code)]

pub(crate) mod access_log;
pub(crate) mod admin;
pub(crate) mod admission;
pub mod allocator;
pub(crate) mod budget;
pub(crate) mod cache;
pub mod cli;
pub mod codec;
pub mod config;
pub(crate) mod connections;
pub(crate) mod disk;
pub mod error;
pub(crate) mod fast_hit;
pub(crate) mod fetched;
pub mod filters;
pub mod fuzzing;
pub mod geometry;
pub mod imaging;
pub mod job;
pub mod lifecycle;
pub(crate) mod limits;
pub mod loader;
pub mod log_limit;
pub(crate) mod metrics;
pub(crate) mod negotiate;
pub mod pipeline;
pub mod preflight;
pub(crate) mod proxy;
pub(crate) mod render;
pub(crate) mod response;
pub mod s3;
pub mod security;
pub mod server;
pub(crate) mod site;
pub(crate) mod tls;
pub mod url;
