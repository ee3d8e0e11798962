//! The virtual upstream: a pingora L4 connector that, instead of dialling a socket, opens an
//! in-memory pipe to a task that renders one job and answers it as HTTP/1.1, then closes.
//! Nothing listens on a port or a file, so nothing outside the process can reach the renderer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::connectors::L4Connect;
use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_core::protocols::l4::stream::Stream;
use pingora_core::protocols::l4::virt::{VirtualSockOpt, VirtualSocket, VirtualSocketStream};
use pingora_core::upstreams::peer::{HttpPeer, PeerOptions, Scheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use super::{RenderReport, Services};
use crate::job::RenderJob;
use crate::loader::Validators;
use crate::response::{IF_SOURCE_MODIFIED_SINCE, IF_SOURCE_NONE_MATCH};

/// One request's render, handed to pingora as the upstream to connect to.
pub struct PendingRender {
    pub job: Arc<RenderJob>,
    pub services: Arc<Services>,
    /// What the render did, for the request's access-log line and metrics.
    pub report: RenderReport,
}

impl std::fmt::Debug for PendingRender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingRender({})", self.job.request.image)
    }
}

#[derive(Debug)]
pub struct RenderConnector {
    pending: Arc<PendingRender>,
}

/// A peer whose connection is a pipe to `pending`'s render. Each peer gets its own group key so
/// pingora never reuses one render's connection for another.
pub fn peer_for(pending: Arc<PendingRender>) -> HttpPeer {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut options = PeerOptions::new();
    options.custom_l4 = Some(Arc::new(RenderConnector { pending }));
    let mut peer = HttpPeer {
        _address: SocketAddr::Inet(std::net::SocketAddr::from(([127, 0, 0, 1], 1))),
        scheme: Scheme::HTTP,
        sni: String::new(),
        proxy: None,
        client_cert_key: None,
        group_key: NEXT.fetch_add(1, Ordering::Relaxed),
        options,
    };
    peer.options.idle_timeout = Some(Duration::from_secs(0));
    peer
}

#[async_trait]
impl L4Connect for RenderConnector {
    async fn connect(&self, _addr: &SocketAddr) -> pingora_error::Result<Stream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let pending = self.pending.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(pending, server).await {
                log::debug!("render pipe closed early: {e}");
            }
        });
        Ok(Stream::from(VirtualSocketStream::new(Box::new(Pipe(client)))))
    }
}

/// Read the request head pingora sends, render, write the reply, close. When pingora drops its
/// end first (the client left, and pingora with it), the render is dropped too: its fetch stops
/// unless another request shares it, and its place on the render pool is given up (a queued job
/// is skipped, a running one stops at its next checkpoint).
async fn serve(pending: Arc<PendingRender>, mut pipe: DuplexStream) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = pipe.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no request"));
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > 64 * 1024 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), read_head)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head"))??;
    // Pingora asks with GET even for a client's HEAD (so that the whole render can be cached),
    // and with HEAD only when it will not read a body.
    let head_only = head.starts_with(b"HEAD ");
    let revalidate = source_validators(&head);
    let reply = tokio::select! {
        reply = pending.services.respond(&pending.job, &pending.report, &revalidate) => reply,
        _ = closed(&mut pipe) => {
            log::debug!("{}: the client left; render dropped", pending.job.request.image);
            return Ok(());
        }
    };
    pipe.write_all(&reply.to_http1(head_only)).await?;
    pipe.shutdown().await
}

/// The source validators the proxy sends when it revalidates an expired result
/// ([`IF_SOURCE_NONE_MATCH`], [`IF_SOURCE_MODIFIED_SINCE`]); empty on a plain miss.
fn source_validators(head: &[u8]) -> Validators {
    let mut validators = Validators::default();
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some((name, value)) = std::str::from_utf8(line).ok().and_then(|l| l.split_once(':')) else { continue };
        let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        if name.eq_ignore_ascii_case(IF_SOURCE_NONE_MATCH) {
            validators.etag = value;
        } else if name.eq_ignore_ascii_case(IF_SOURCE_MODIFIED_SINCE) {
            validators.last_modified = value;
        }
    }
    validators
}

/// Resolves when pingora drops its end of the pipe. Nothing more arrives after the request head
/// (renders have no request body), so any read that returns is the end.
async fn closed(pipe: &mut DuplexStream) {
    let mut sink = [0u8; 256];
    loop {
        match pipe.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// One end of the in-memory pipe, as a pingora virtual socket.
#[derive(Debug)]
struct Pipe(DuplexStream);

impl AsyncRead for Pipe {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl VirtualSocket for Pipe {
    fn set_socket_option(&self, _opt: VirtualSockOpt) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_validators_come_from_the_internal_headers_only() {
        let head = b"GET /x HTTP/1.1\r\nIf-None-Match: \"ours\"\r\nX-Thumbora-If-None-Match: \"origin\"\r\n\
                     x-thumbora-if-modified-since: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n";
        let validators = source_validators(head);
        assert_eq!(validators.etag.as_deref(), Some("\"origin\""));
        assert_eq!(validators.last_modified.as_deref(), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert!(source_validators(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").is_empty());
    }
}
