//! Rendering a request end to end: fetch the source through the loaders, then decode, transform
//! and encode on the bounded render pool. The proxy reaches this through an in-process virtual
//! upstream (`connector`), so each result is complete, with an exact Content-Length, before its
//! response header leaves, and pingora-cache stores it like any upstream response.
//!
//! Fetching comes first and holds no place on the pool: a request waiting on a slow origin
//! takes fetch memory and a fetch slot of that origin, never a render place. Once the bytes are
//! in, the header decides the memory the render needs, and the request takes a place in the
//! render queue and that memory.

pub mod connector;
pub mod pool;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::cache::shared::SharedTier;
use crate::config::ResponseConfig;
use crate::error::{ErrorKind, Fetched, Result};
use crate::filters::Assets;
use crate::job::{RenderJob, Rendered};
use crate::loader::{Loaders, Source, Validators};
use crate::pipeline::{self, RenderSettings};
use crate::response::Reply;
use pool::RenderPool;

/// What a render did, for the request's access-log line and metrics: written by the render task,
/// read when the request ends.
#[derive(Debug, Default)]
pub struct RenderReport {
    /// The render's time on its render thread.
    pub render_time: OnceLock<Duration>,
    /// The error the render answered with.
    pub error: OnceLock<ErrorKind>,
}

/// What every render needs, shared by all requests.
pub struct Services {
    pub loaders: Loaders,
    pub pool: RenderPool,
    pub settings: Arc<RenderSettings>,
    pub response: ResponseConfig,
    /// `sources.thumbor_error_statuses`, for the images filters load.
    pub thumbor_error_statuses: bool,
    /// The bucket shared by every node: asked before rendering, written after.
    pub shared: Option<Arc<SharedTier>>,
}

impl Services {
    /// The reply for one render job: the result from the shared bucket when it has a fresh one,
    /// else the image rendered (then stored in the bucket), or the error it ran into (also noted
    /// in `report`).
    ///
    /// `revalidate` carries the source validators stored with an expired result being
    /// revalidated: when the source has not changed since (see [`Loaders::load_if_changed`]), the
    /// reply is `304 Not Modified` with a fresh max-age, and nothing is rendered.
    pub async fn respond(&self, job: &RenderJob, report: &RenderReport, revalidate: &Validators) -> Reply {
        if let Some(shared) = &self.shared {
            if let Some(reply) = shared.get(job).await {
                return reply;
            }
        }
        let mut fetched = None;
        if let Some(max_age) = self.revalidation_max_age(job, revalidate) {
            match self.loaders.load_if_changed(&job.request.image, revalidate).await {
                Ok(None) => match Reply::not_modified(max_age, revalidate) {
                    Ok(reply) => return reply,
                    Err(err) => fetched = Some(Err(err)),
                },
                changed => fetched = changed.transpose(),
            }
        }
        let rendered = self.render(job, report, fetched).await;
        match rendered.and_then(|(rendered, source, made_from)| {
            let reply = Reply::image(rendered, &self.response)?.with_source_validators(&source);
            Ok((reply, made_from))
        }) {
            Ok((reply, made_from)) => {
                if let Some(shared) = &self.shared {
                    shared.put_later(job, &reply, made_from);
                }
                reply
            }
            Err(err) => {
                let _ = report.error.set(err.kind());
                if err.kind() == ErrorKind::Internal {
                    log::error!("{} -> {}: {err}", job.request.image, err.status());
                } else if err.status() >= 500 {
                    log::warn!("{} -> {}: {err}", job.request.image, err.status());
                } else {
                    log::info!("{} -> {}: {err}", job.request.image, err.status());
                }
                Reply::error(&err)
            }
        }
    }

    /// The max-age a `304 Not Modified` would refresh an expired result with, when the job can be
    /// revalidated: there are validators, the job caches (max-age > 0), it loads no image other
    /// than its source (a watermark may have changed where the source did not), and its max-age
    /// does not hang on the source's format (a `max_age()` filter is a post-transform filter,
    /// which GIF sources skip unless `image.gif_filters`).
    fn revalidation_max_age(&self, job: &RenderJob, validators: &Validators) -> Option<u64> {
        if validators.is_empty() || job.filters.iter().any(|f| f.asset_url().is_some()) {
            return None;
        }
        let options = pipeline::RequestOptions::from_filters(&job.filters, true);
        if options.max_age.is_some() && !self.settings.image.gif_filters {
            return None;
        }
        Some(options.max_age.unwrap_or(self.settings.max_age)).filter(|age| *age > 0)
    }

    /// Render `job`, from `fetched` when its source was already fetched (a revalidation that
    /// found it changed): the result and the validators of the source it was made from.
    async fn render(
        &self,
        job: &RenderJob,
        report: &RenderReport,
        fetched: Option<Result<Source>>,
    ) -> Result<(Rendered, Validators, SystemTime)> {
        let load = async {
            match fetched {
                Some(result) => result,
                None => self.loaders.load(&job.request.image).await,
            }
        };
        let (source, assets) = tokio::join!(load, self.load_assets(job));
        let source = source.map_err(|e| e.fetch_failure(Fetched::Image, self.thumbor_error_statuses))?;
        let (validators, fetched) = (source.validators().clone(), source.fetched());
        // The header decides sizes, decode scale and memory once, here; the render thread reuses it.
        let prepared = pipeline::prepare(job, &source, &self.settings)?;
        let cost = prepared.memory_estimate(job, &assets, &self.settings.image)?;
        let admission = self.pool.admit()?;
        // A fault the tests inject (a build with the `failpoints` feature only): a panic while
        // the request holds its render place and the result's cache lock.
        fail::fail_point!("render-admitted");
        let (job_copy, settings, bytes) = (job.clone(), self.settings.clone(), source.clone());
        let (rendered, render_time) = self
            .pool
            .run_admitted(admission, cost, move || {
                let started = Instant::now();
                let rendered = pipeline::render_prepared(prepared, &job_copy, &bytes, &assets, &settings)?;
                Ok((rendered, started.elapsed()))
            })
            .await?;
        let _ = report.render_time.set(render_time);
        if rendered.source_truncated {
            // The bytes may be a cut download: the next request fetches them again.
            self.loaders.forget(&job.request.image).await;
        }
        Ok((rendered, validators, fetched))
    }

    /// Fetch the images filters load (watermark, frame) concurrently, keeping each outcome: the
    /// filter decides what a failed fetch means. Their number is capped when the request is
    /// admitted (`image.max_filter_images`); a URL named twice is fetched once.
    async fn load_assets(&self, job: &RenderJob) -> Assets {
        let mut urls: Vec<&str> = job.filters.iter().filter_map(|f| f.asset_url()).collect();
        urls.sort_unstable();
        urls.dedup();
        let fetches = urls.iter().map(|url| self.loaders.load(url));
        let results = futures::future::join_all(fetches).await;
        let mut assets = Assets::default();
        assets.thumbor_statuses = self.thumbor_error_statuses;
        for (url, result) in urls.into_iter().zip(results) {
            assets.insert(url.to_string(), result);
        }
        assets
    }
}
