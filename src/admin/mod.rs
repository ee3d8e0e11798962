//! The admin listener (`thumbora.metrics.listen`): `/metrics` always, and the URL playground
//! (`/playground`, its assets and its renders) when `thumbora.playground.enabled`.
//!
//! It runs as a Pingora service of its own with one thread, apart from the proxy: nothing here
//! is reachable on the public listeners. It has no authentication, so it belongs on a loopback
//! or private address.

pub mod playground;

use async_trait::async_trait;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

use crate::config::Config;
use crate::error::Result;
use crate::metrics::MetricsApp;

use self::playground::Playground;

/// The admin listener's HTTP app: the playground's paths when it is on, everything else to
/// [`MetricsApp`] (`/metrics`, 404 elsewhere).
pub struct AdminApp {
    playground: Option<Playground>,
}

impl AdminApp {
    /// The app for `config`: with the playground when `playground.enabled`.
    pub fn new(config: &Config) -> Result<AdminApp> {
        let playground = match config.playground.enabled {
            true => Some(Playground::new(config)?),
            false => None,
        };
        Ok(AdminApp { playground })
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        if let Some(playground) = &self.playground {
            if let Some(response) = playground.response(session.req_header()).await {
                return response;
            }
        }
        MetricsApp.response(session).await
    }
}
