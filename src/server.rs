//! Building the Pingora server from a configuration: services, listeners, cache, render pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::net::SocketAddr;
use std::time::Duration;

use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::ListenerConfig;
use pingora_core::protocols::http::v2::server::{default_h2_options, H2Options};
use pingora_core::protocols::l4::stream::L4BufferSettings;
use pingora_core::server::configuration::Opt;
use pingora_core::server::Server;
use pingora_core::services::background::{background_service, GenBackgroundService};
use pingora_core::services::listening::Service;
use pingora_core::services::ServiceHandle;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::LoadBalancer;

use crate::cache::ResultCache;
use crate::config::FileConfig;
use crate::connections::{Guarded, Limits};
use crate::error::Result;
use crate::lifecycle::PhaseWatcher;
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
    let tls_listen = config.tls.iter().map(|tls| &tls.listen);
    let listen: Vec<SocketAddr> = config.listen.iter().chain(tls_listen).filter_map(|a| a.parse().ok()).collect();
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
    let cache = match config.cache.enabled {
        true => Some(ResultCache::new(&config.cache).map_err(|e| {
            let dir = config.cache.disk.as_ref().map(|d| d.dir.display().to_string()).unwrap_or_default();
            crate::error::Error::new(crate::error::ErrorKind::Internal, format!("thumbora.cache.disk.dir: {dir}: {e}"))
        })?),
        false => None,
    };
    let services = Arc::new(Services {
        loaders,
        pool,
        settings: Arc::new(RenderSettings { image: config.image.clone(), max_age: config.response.max_age }),
        response: config.response.clone(),
        thumbor_error_statuses: config.sources.thumbor_error_statuses,
        shared: cache.as_ref().and_then(|c| c.shared.clone()),
    });
    watch_levels(&services, cache.as_ref());
    let (site, health_check) = match Site::new(&config.site)? {
        Some((site, check)) => (Some(Arc::new(site)), Some(check)),
        None => (None, None),
    };
    let proxy =
        ThumboraProxy::new(Arc::new(config.clone()), UrlPolicy::new(&config.security), services, cache, site, own);
    Ok((proxy, health_check))
}

/// Let each scrape read how full the caches and memory budgets are.
fn watch_levels(services: &Arc<Services>, cache: Option<&ResultCache>) {
    use crate::metrics::{watch, Level};
    if let Some(cache) = cache {
        let memory = cache.storage.memory();
        watch(Level::MemoryTierEntries, move || memory.stats().entries as u64);
        watch(Level::MemoryTierBytes, move || memory.stats().bytes as u64);
    }
    let s = services.clone();
    watch(Level::OriginalsEntries, move || s.loaders.originals_cached().0);
    let s = services.clone();
    watch(Level::OriginalsBytes, move || s.loaders.originals_cached().1);
    let s = services.clone();
    watch(Level::RenderMemoryInUse, move || s.pool.memory_in_use_bytes());
    let s = services.clone();
    watch(Level::FetchMemoryInUse, move || s.loaders.fetch_memory_in_use());
}

/// A ready-to-run Pingora server with Thumbora listening on every configured address.
///
/// Nothing here starts a thread or a runtime: `run_forever` may fork (`-d`), and a fork keeps
/// only the calling thread. Taking the listeners over from an old process (`-u`) and watching
/// the server's phases run as services, after the fork; the render threads start on the first
/// render.
pub fn build_server(opt: Option<Opt>, file: FileConfig) -> Result<Server> {
    // The configuration is already read (`file`): Pingora must not read `-c` again.
    let opt = opt.map(|opt| Opt { conf: None, ..opt });
    let mut conf = file.server;
    let threads = conf.threads;
    // Pingora's proxy (site requests with a body or an upgrade) keeps one pool for all threads:
    // sized so that it holds as many idle app connections per thread as the short path does.
    conf.upstream_keepalive_pool_size = file.thumbora.site.keepalive.saturating_mul(threads.max(1));
    let adopt_sockets = !conf.work_stealing && threads > 1;
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    let bootstrap = server.bootstrap_as_a_service();
    let (mut proxy, site_health_check) = build_proxy(&file.thumbora)?;
    let journal =
        proxy.shared_tier().map(|shared| crate::cache::shared::JournalPoller(shared.clone(), proxy.loaders().clone()));
    let draining = Arc::new(AtomicBool::new(false));
    proxy.set_draining_flag(draining.clone());
    let limits = Limits {
        max_connections: file.thumbora.max_connections,
        head_timeout: Duration::from_millis(file.thumbora.request_head_timeout_ms),
        keepalive_seconds: file.thumbora.keepalive_seconds,
        write_buffer_bytes: file.thumbora.write_buffer_bytes,
        send_timeout: Duration::from_secs(file.thumbora.send_timeout_seconds),
        adopt_sockets,
    };
    let fast_path = proxy.fast_path();
    let mut http = pingora_proxy::http_proxy(&server.configuration, proxy);
    // HTTP/2 connections with no stream open close after the keep-alive timeout, as idle
    // HTTP/1 ones do (Pingora's default keeps them for ever).
    let mut options = HttpServerOptions::default();
    options.h2_idle_timeout = Some(Duration::from_secs(file.thumbora.keepalive_seconds));
    http.server_options = Some(options);
    http.h2_options = Some(h2_options(&file.thumbora));
    let mut app = Guarded::new(http, limits);
    if let Some(fast_path) = fast_path {
        app = app.with_fast_path(Arc::new(fast_path));
    }
    let open = app.open_connections();
    crate::metrics::watch(crate::metrics::Level::ClientConnections, move || open.load(Ordering::Relaxed) as u64);
    let watcher = PhaseWatcher::new(server.watch_execution_phase(), draining, app.open_connections());
    let gate = (!file.thumbora.tls.is_empty()).then(|| app.handshake_gate());
    let mut service = Service::new("thumbora".to_string(), app);
    if let Some(gate) = gate {
        service.endpoints().set_pre_tls_callback(gate);
    }
    let buffers = L4BufferSettings::default().write(file.thumbora.write_buffer_bytes);
    for addr in &file.thumbora.listen {
        service.add_listener(ListenerConfig::tcp(addr.as_str()).l4_buffer(buffers));
    }
    for (i, tls) in file.thumbora.tls.iter().enumerate() {
        let settings = crate::tls::listener_settings(&format!("thumbora.tls[{i}]"), tls)
            .map_err(|e| crate::error::Error::new(crate::error::ErrorKind::Internal, e.to_string()))?;
        service.add_listener(ListenerConfig::tcp(tls.listen.as_str()).tls(settings).l4_buffer(buffers));
    }
    server.add_service(service).add_dependency(&bootstrap);
    server.add_service(background_service("thumbora phases", watcher));
    if let Some(check) = site_health_check {
        server.add_service(check);
    }
    if let Some(journal) = journal {
        server.add_service(background_service("shared tier purge journal", journal));
    }
    add_admin_service(&mut server, &file.thumbora, &bootstrap)?;
    Ok(server)
}

/// HTTP/2 settings from the config: a decoded header list over `max_request_header_bytes` gets
/// 431 (h2 answers it), as an HTTP/1 head over it does; at most `http2_max_streams` requests under
/// way per connection.
fn h2_options(config: &crate::config::Config) -> H2Options {
    let mut options = default_h2_options();
    options.max_header_list_size(u32::try_from(config.max_request_header_bytes).unwrap_or(u32::MAX));
    options.max_concurrent_streams(config.http2_max_streams);
    options
}

/// Run a server from [`build_server`] until it exits (daemonizing first under `-d`, returning
/// from the command once the daemon accepts connections on every address of `listen`).
pub fn run_forever(server: Server, listen: &[String]) -> ! {
    if server.configuration.daemon && server.configuration.daemon_wait_for_ready {
        if !server.options.as_ref().is_some_and(|o| o.upgrade) {
            crate::lifecycle::wait_until_serving(listen);
        }
        crate::lifecycle::catch_early_ready_signal();
    }
    server.run_forever()
}

/// The admin listener (`thumbora.metrics.listen`; empty: none): Prometheus metrics and, when
/// enabled, the URL playground (src/admin). A service of its own with one thread, so scrapes and
/// the page never take a proxy thread. Like the proxy's, its socket is taken over from the old
/// process on `-u`, so it starts after `bootstrap`.
fn add_admin_service(server: &mut Server, config: &crate::config::Config, bootstrap: &ServiceHandle) -> Result<()> {
    if config.metrics.listen.is_empty() {
        return Ok(());
    }
    crate::metrics::init();
    let mut service = Service::new("thumbora admin".to_string(), crate::admin::AdminApp::new(config)?);
    service.add_tcp(&config.metrics.listen);
    service.threads = Some(1);
    server.add_service(service).add_dependency(bootstrap);
    Ok(())
}
