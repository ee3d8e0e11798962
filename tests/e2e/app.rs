//! An in-process app server for the site-proxy tests: answers every request with `app <name>`
//! and what it received, keeps connections alive, reads Content-Length and chunked bodies, and
//! records every request head. Binds 127.0.0.1 only; every wait is bounded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A running app server; stops, with every connection it holds, when dropped.
pub struct App {
    addr: SocketAddr,
    /// Each request's head: the request line, then the header lines as received.
    requests: Arc<Mutex<Vec<Vec<String>>>>,
    task: tokio::task::JoinHandle<()>,
    /// Connection tasks, aborted with the app so that kept-alive connections die too.
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl App {
    pub async fn start(name: &'static str) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (log, tasks) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                let connection = tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(30), serve(stream, name, log)).await;
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        App { addr, requests, task, connections }
    }

    /// `127.0.0.1:PORT`, for `site.upstreams`.
    pub fn upstream(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received.
    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// The request lines received, in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().map(|head| head[0].clone()).collect()
    }

    /// The request heads received, in order: the request line, then each header line.
    pub fn heads(&self) -> Vec<Vec<String>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A chunked body, bounded at 1 MiB.
async fn read_chunked<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader).await?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        if size == 0 {
            // Trailer fields up to the empty line.
            while !read_line(reader).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > 1 << 20 {
            return Err(std::io::Error::other("body too large"));
        }
        let mut chunk = vec![0; size];
        reader.read_exact(&mut chunk).await?;
        body.extend_from_slice(&chunk);
        read_line(reader).await?;
    }
}

async fn serve(stream: tokio::net::TcpStream, name: &str, log: Arc<Mutex<Vec<Vec<String>>>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    for _ in 0..100 {
        let request_line = read_line(&mut reader).await?;
        if request_line.is_empty() {
            return Ok(());
        }
        let mut headers = Vec::new();
        let mut head = vec![request_line.clone()];
        loop {
            let line = read_line(&mut reader).await?;
            if line.is_empty() {
                break;
            }
            head.push(line.clone());
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
        let body = if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
            read_chunked(&mut reader).await?
        } else {
            let mut body = vec![0; header("content-length").parse::<usize>().unwrap_or(0).min(1 << 20)];
            reader.read_exact(&mut body).await?;
            body
        };
        log.lock().unwrap().push(head);
        let text = format!(
            "app {name}\n{request_line}\nhost={}\nxff={}\nreal-ip={}\nproto={}\nbody={}\n",
            header("host"),
            header("x-forwarded-for"),
            header("x-real-ip"),
            header("x-forwarded-proto"),
            String::from_utf8_lossy(&body)
        );
        let status = if request_line.contains("/missing") { "404 Not Found" } else { "200 OK" };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-App: {name}\r\n\r\n{text}",
            text.len()
        );
        reader.get_mut().write_all(response.as_bytes()).await?;
    }
    Ok(())
}
