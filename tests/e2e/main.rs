//! Thumbora's end-to-end tests: one integration binary. Each test starts the real `thumbora`
//! binary on an ephemeral loopback port and an in-process origin, and asserts what a client sees.

mod app;
mod cache;
mod cli;
mod compat;
mod errors;
mod filters_color;
mod filters_composition;
mod formats;
mod fuzz_regressions;
mod grammar;
mod harness;
mod hostile;
mod hostile_inputs;
mod http;
mod https;
mod memory;
mod metrics;
mod migrate;
mod origin;
mod playground;
mod revalidate;
mod robustness;
mod s3;
mod seaweed;
mod security;
mod service;
mod shared;
mod signing;
mod site;
mod site_forward;
mod slow;
mod smart;
mod smuggling;
mod tiers;
mod tls;
