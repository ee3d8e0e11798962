//! Building the Pingora server from a configuration: services, listeners, cache, render pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::net::SocketAddr;
use std::time::Duration;

use pingora_core::server::configuration::Opt;
use pingora_core::server::{ExecutionPhase, Server};
use pingora_core::services::background::GenBackgroundService;
use pingora_core::services::listening::Service;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::LoadBalancer;

use crate::cache::ResultCache;
use crate::config::FileConfig;
use crate::connections::{Guarded, Limits};
use crate::error::Result;
use crate::loader::http::OwnAddresses;
use crate::loader::Loaders;
use crate::pipeline::RenderSettings;
use crate::proxy::ThumboraProxy;
use crate::render::pool::RenderPool;
use crate::render::Services;
use crate::security::{SourcePolicy, UrlPolicy};
use crate::site::Site;

/// The site's health-check service, to run beside the proxy.
pub type SiteHealthCheck = GenBackgroundService<LoadBalancer<RoundRobin>>;

/// The proxy and everything it shares, built from Thumbora's section of the configuration, and
/// the health check of the site's app servers when there are any.
pub fn build_proxy(config: &crate::config::Config) -> Result<(ThumboraProxy, Option<SiteHealthCheck>)> {
    let policy = SourcePolicy::new(&config.sources);
    let listen: Vec<SocketAddr> = config.listen.iter().filter_map(|a| a.parse().ok()).collect();
    let own = OwnAddresses::new(&listen);
    let loaders = Loaders::with_own_addresses(&config.sources, policy, own.clone())?;
    if let Some(root) = &config.sources.file_root {
        if !root.is_dir() {
            log::warn!("sources.file_root {} is not a directory: the file loader finds nothing", root.display());
        }
    }
    let pool = RenderPool::with_deadline(
        config.render.effective_threads(),
        config.render.effective_queue(),
        config.render.memory_budget_bytes,
        config.render.nice,
        (config.render.deadline_ms > 0).then(|| Duration::from_millis(config.render.deadline_ms)),
    );
    let services = Arc::new(Services {
        loaders,
        pool,
        settings: Arc::new(RenderSettings { image: config.image.clone(), max_age: config.response.max_age }),
        response: config.response.clone(),
        thumbor_error_statuses: config.sources.thumbor_error_statuses,
    });
    let cache = config.cache.enabled.then(|| ResultCache::new(&config.cache));
    let (site, health_check) = match Site::new(&config.site)? {
        Some((site, check)) => (Some(Arc::new(site)), Some(check)),
        None => (None, None),
    };
    let proxy =
        ThumboraProxy::new(Arc::new(config.clone()), UrlPolicy::new(&config.security), services, cache, site, own);
    Ok((proxy, health_check))
}

/// A flag raised when the server starts handing its listeners to a new process (graceful
/// upgrade) or shutting down, so that responses close their connections and clients reconnect to
/// the process that keeps running instead of losing a request to a closing keep-alive connection.
fn draining_flag(server: &Server) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut phases = server.watch_execution_phase();
    let raised = flag.clone();
    std::thread::Builder::new()
        .name("thumbora-phase".into())
        .spawn(move || {
            while let Ok(phase) = phases.blocking_recv() {
                if matches!(
                    phase,
                    ExecutionPhase::GracefulUpgradeTransferringFds
                        | ExecutionPhase::GracefulUpgradeCloseTimeout
                        | ExecutionPhase::GracefulTerminate
                        | ExecutionPhase::ShutdownStarted
                ) {
                    raised.store(true, Ordering::Relaxed);
                }
                if matches!(phase, ExecutionPhase::Terminated) {
                    break;
                }
            }
        })
        .expect("spawning the phase watcher");
    flag
}

/// A ready-to-run Pingora server with Thumbora listening on every configured address.
pub fn build_server(opt: Option<Opt>, file: FileConfig) -> Result<Server> {
    let mut server = Server::new_with_opt_and_conf(opt, file.server);
    server.bootstrap();
    let (mut proxy, site_health_check) = build_proxy(&file.thumbora)?;
    proxy.set_draining_flag(draining_flag(&server));
    let limits = Limits {
        max_connections: file.thumbora.max_connections,
        head_timeout: Duration::from_millis(file.thumbora.request_head_timeout_ms),
        keepalive_seconds: file.thumbora.keepalive_seconds,
    };
    let app = Guarded::new(pingora_proxy::http_proxy(&server.configuration, proxy), limits);
    let mut service = Service::new("thumbora".to_string(), app);
    for addr in &file.thumbora.listen {
        service.add_tcp(addr);
    }
    server.add_service(service);
    if let Some(check) = site_health_check {
        server.add_service(check);
    }
    add_metrics_service(&mut server, &file.thumbora);
    Ok(server)
}

/// The Prometheus metrics listener (`thumbora.metrics.listen`; empty: none): a service of its
/// own with one thread, so scrapes never take a proxy thread.
fn add_metrics_service(server: &mut Server, config: &crate::config::Config) {
    if config.metrics.listen.is_empty() {
        return;
    }
    crate::metrics::init();
    let mut service = Service::new("thumbora metrics".to_string(), crate::metrics::MetricsApp);
    service.add_tcp(&config.metrics.listen);
    service.threads = Some(1);
    server.add_service(service);
}
