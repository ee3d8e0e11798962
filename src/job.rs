//! What one image request asks for once it is parsed and admitted ([`RenderJob`]), and what its
//! render gives back ([`Rendered`]): the types the proxy, the cache key, the render pool and the
//! pipeline pass between them, apart from the code that sequences the steps.

use crate::config::ImageConfig;
use crate::error::Result;
use crate::filters::Filter;
pub use crate::negotiate::Accepts;
use crate::url::ImageRequest;

/// One render: the request, its parsed filters, and the negotiated formats.
#[derive(Debug, Clone)]
pub struct RenderJob {
    pub request: ImageRequest,
    pub filters: Vec<Filter>,
    pub accepts: Accepts,
    /// JSONP callback for `meta/` (already checked to be an identifier).
    pub meta_callback: Option<String>,
}

/// A finished response body.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Seconds for `Cache-Control`/`Expires`; 0 sends neither (and is not cached).
    pub max_age: u64,
    /// Send `Vary: Accept`.
    pub vary_accept: bool,
    /// The source ended early and was rendered from what arrived: neither it nor the result is
    /// kept for other requests.
    pub source_truncated: bool,
}

impl RenderJob {
    /// Refuse, from the URL alone, requests whose output must exceed the caps (before the source
    /// is fetched): see [`crate::limits::check_requested_sides`].
    pub fn check_limits(&self, cfg: &ImageConfig) -> Result<()> {
        let grows = self.filters.iter().any(Filter::grows_output);
        crate::limits::check_requested_sides(&self.request, grows, cfg)
    }
}
