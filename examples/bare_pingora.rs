//! The floor a Pingora cache hit can reach: a `ProxyHttp` that answers every request from
//! `request_filter` with the same bytes and headers Thumbora sends for a hit, with no parsing,
//! no cache and no logging. `scripts/bench/load.sh` measures it beside Thumbora's hits (same
//! threads, same run), as the anchor for "hits at >= 0.9x of bare Pingora".
//!
//! `cargo run --release --example bare_pingora -- ADDR BODY_FILE [THREADS [WORK_STEALING]]`
//!
//! WORK_STEALING (`true`/`false`) defaults to `false`, Thumbora's default, so that the floor runs
//! on the same runtime flavour as Thumbora does.

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};

// The same allocator as Thumbora, so that the floor is measured on equal terms.
#[global_allocator]
static ALLOCATOR: thumbora::allocator::SplitAllocator = thumbora::allocator::SplitAllocator;

struct Bare {
    body: Bytes,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut Self::CTX) -> pingora_core::Result<bool> {
        // The headers a Thumbora hit carries (thumbor's, pingora-cache's and X-Cache), fixed.
        let mut header = ResponseHeader::build(200, Some(8))?;
        header.insert_header("Content-Type", "image/jpeg")?;
        header.insert_header("Cache-Control", "max-age=86400,public")?;
        header.insert_header("Expires", "Mon, 07 Dec 2026 06:53:26 GMT")?;
        header.insert_header("ETag", "\"bdc391676d70bcfac672395e7734448b1bf91914\"")?;
        header.insert_header("Age", "1")?;
        header.insert_header("Accept-Ranges", "bytes")?;
        header.insert_header("Content-Length", self.body.len().to_string())?;
        header.insert_header("X-Cache", "HIT memory")?;
        session.set_keepalive(Some(60));
        session.write_response_header(Box::new(header), false).await?;
        session.write_response_body(Some(self.body.clone()), true).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut Self::CTX) -> pingora_core::Result<Box<HttpPeer>> {
        Err(pingora_core::Error::new(pingora_core::ErrorType::InternalError))
    }
}

const USAGE: &str = "usage: bare_pingora ADDR BODY_FILE [THREADS [WORK_STEALING]]";

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect(USAGE);
    let body = std::fs::read(args.next().expect(USAGE)).expect("read body");
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(2);
    let work_stealing = args.next().and_then(|w| w.parse().ok()).unwrap_or(false);
    let conf = ServerConf { threads, work_stealing, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, Bare { body: Bytes::from(body) });
    service.add_tcp(&addr);
    server.add_service(service);
    // As Thumbora does: Pingora's own fast stop can spin forever on one runtime per thread.
    thumbora::lifecycle::exit_on_sigint();
    server.run_forever();
}
