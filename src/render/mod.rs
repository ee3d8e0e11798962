//! Rendering a request end to end: fetch the source through the loaders, then decode, transform
//! and encode on the bounded render pool. The proxy reaches this through an in-process virtual
//! upstream (`connector`), so each result is complete, with an exact Content-Length, before its
//! response header leaves, and pingora-cache stores it like any upstream response.

pub mod connector;
pub mod pool;

use std::sync::Arc;

use crate::config::ResponseConfig;
use crate::error::Result;
use crate::loader::Loaders;
use crate::pipeline::{self, RenderJob, RenderSettings, Rendered};
use crate::response::Reply;
use pool::RenderPool;

/// What every render needs, shared by all requests.
pub struct Services {
    pub loaders: Loaders,
    pub pool: RenderPool,
    pub settings: Arc<RenderSettings>,
    pub response: ResponseConfig,
}

impl Services {
    /// The reply for one render job: the image, or the error it ran into.
    pub async fn respond(&self, job: &RenderJob) -> Reply {
        match self.render(job).await {
            Ok(rendered) => Reply::image(rendered, &self.response),
            Err(err) => {
                if err.status() >= 500 {
                    log::warn!("{} -> {}: {err}", job.request.image, err.status());
                } else {
                    log::info!("{} -> {}: {err}", job.request.image, err.status());
                }
                Reply::error(&err)
            }
        }
    }

    async fn render(&self, job: &RenderJob) -> Result<Rendered> {
        let source = self.loaders.load(&job.request.image).await?;
        let cost = pipeline::estimate_memory(&source, job, &self.settings)?;
        let job = job.clone();
        let settings = self.settings.clone();
        self.pool.run(cost, move || pipeline::render(&job, &source, &settings)).await
    }
}
