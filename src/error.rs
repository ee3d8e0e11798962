//! Thumbora's error type: a kind, a one-line context and an optional source; the kind alone
//! decides the HTTP status and the short public message (in [`ErrorKind::status`]).

use std::fmt;

/// What went wrong, as far as a client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The path is not a thumbor URL (no route).
    NoRoute,
    /// The URL is malformed, or a segment is not valid UTF-8.
    BadUrl,
    /// Missing, malformed or wrong signature; `unsafe/` with a signature; unsafe URLs disabled.
    BadSignature,
    /// The image URL is not allowed by `sources.allowed` or points at a refused address.
    SourceNotAllowed,
    /// The origin has no such image (HTTP 404/403/410, missing file).
    SourceNotFound,
    /// The origin answered with a 5xx status.
    OriginError,
    /// The fetch broke: a reset connection, a short or malformed body, a bad redirect, an unreadable
    /// file (and an origin's `599`, which tornado cannot tell from its own failed connection).
    UpstreamFailed,
    /// No connection to the origin could be made (refused, unreachable).
    UpstreamUnreachable,
    /// The origin answered 200 with an empty body.
    EmptySource,
    /// The origin did not answer within the configured timeouts.
    UpstreamTimeout,
    /// The image URL's host does not resolve, or is not a valid host (thumbor: 504, as tornado
    /// reports both as a timeout).
    SourceUnresolved,
    /// The source bytes are not an image Thumbora decodes, or are corrupt.
    UndecodableImage,
    /// The source or the requested output exceeds a configured cap (bytes, pixels, frames).
    TooLarge,
    /// The request asks for more work than the configured caps allow (filters, their cost, the
    /// images they load).
    TooComplex,
    /// A filter argument was refused while `strict_filters` is on.
    BadFilter,
    /// The image `watermark()` loads is missing (or, with thumbor's statuses, failed to load).
    WatermarkNotLoaded,
    /// thumbor 7.8 fails on this request with an exception (a filter's ZeroDivisionError or
    /// OverflowError, `orig` in size arithmetic, a frame image that cannot load) and answers 500;
    /// so does Thumbora, for compatibility. Not a bug: logged as a refusal.
    ThumborFails,
    /// HTTP method other than GET and HEAD on an image route.
    MethodNotAllowed,
    /// A `PURGE` without an accepted token, from an address not allowed to purge.
    Forbidden,
    /// The request's header block is larger than `max_request_header_bytes`.
    HeadersTooLarge,
    /// The render queue or an origin's fetch slots are full; retry shortly.
    Overloaded,
    /// The render memory budget or the fetch memory is taken by requests in flight; retry shortly.
    MemoryBudget,
    /// The render ran past `render.deadline_ms` and was stopped.
    RenderTimeout,
    /// The client left before its render finished; the work was dropped (nobody reads the status).
    Cancelled,
    /// The request came back to this server through its own fetches (a loop).
    LoopDetected,
    /// A bug or an unexpected failure inside Thumbora (logged as an error).
    Internal,
}

impl ErrorKind {
    /// The one place an error kind becomes an HTTP status.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::NoRoute | ErrorKind::SourceNotFound => 404,
            ErrorKind::BadUrl
            | ErrorKind::BadSignature
            | ErrorKind::SourceNotAllowed
            | ErrorKind::UndecodableImage
            | ErrorKind::TooLarge
            | ErrorKind::TooComplex
            | ErrorKind::BadFilter
            | ErrorKind::WatermarkNotLoaded => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::HeadersTooLarge => 431,
            ErrorKind::OriginError
            | ErrorKind::UpstreamFailed
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::EmptySource => 502,
            ErrorKind::Overloaded | ErrorKind::MemoryBudget | ErrorKind::RenderTimeout => 503,
            ErrorKind::LoopDetected => 508,
            // nginx's "client closed request": only logs ever see it.
            ErrorKind::Cancelled => 499,
            ErrorKind::UpstreamTimeout | ErrorKind::SourceUnresolved => 504,
            ErrorKind::ThumborFails | ErrorKind::Internal => 500,
        }
    }

    /// The short text a client sees; details stay in the log.
    pub fn public_message(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "not found",
            ErrorKind::BadUrl => "malformed thumbor URL",
            ErrorKind::BadSignature => "invalid or missing URL signature",
            ErrorKind::SourceNotAllowed => "image source not allowed",
            ErrorKind::SourceNotFound => "source image not found",
            ErrorKind::OriginError
            | ErrorKind::UpstreamFailed
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::EmptySource => "source image could not be fetched",
            ErrorKind::UpstreamTimeout => "source image fetch timed out",
            ErrorKind::SourceUnresolved => "source image host could not be resolved",
            ErrorKind::UndecodableImage => "source is not a supported image",
            ErrorKind::TooLarge => "image exceeds the configured limits",
            ErrorKind::TooComplex => "request exceeds the configured processing limits",
            ErrorKind::BadFilter => "invalid filter arguments",
            ErrorKind::WatermarkNotLoaded => "watermark image could not be loaded",
            ErrorKind::ThumborFails => "image could not be processed",
            ErrorKind::MethodNotAllowed => "method not allowed",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::HeadersTooLarge => "request header fields too large",
            ErrorKind::Overloaded | ErrorKind::MemoryBudget => "server busy, retry shortly",
            ErrorKind::RenderTimeout => "image took too long to render",
            ErrorKind::Cancelled => "request cancelled",
            ErrorKind::LoopDetected => "request loops back to this server",
            ErrorKind::Internal => "internal error",
        }
    }
}

/// Which image a fetch was for: thumbor answers the same failure differently for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The image the URL names.
    Image,
    /// The image of a `watermark()` filter.
    Watermark,
    /// The image of a `frame()` filter.
    Frame,
}

/// An error with its kind, a one-line context for the log, and the underlying cause if any.
pub struct Error {
    kind: ErrorKind,
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Error { kind, context: context.into(), source: None }
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The one place a failed fetch gets thumbor's answer: with `sources.thumbor_error_statuses`,
    /// origin failures of the main image as thumbor 7.8 reports them (a 5xx status is "not
    /// found", a broken fetch a timeout, a refused connection a 500), and always thumbor's fixed
    /// answers for filter images (a missing watermark 400, a missing frame image 500). Failures of
    /// Thumbora's own making (overload, deadline, cancellation, bugs) keep their kind.
    pub fn fetch_failure(mut self, fetched: Fetched, thumbor_statuses: bool) -> Error {
        use ErrorKind::*;
        self.kind = match (fetched, thumbor_statuses, self.kind) {
            (_, _, kind @ (Overloaded | MemoryBudget | RenderTimeout | Cancelled | Internal)) => kind,
            (Fetched::Image, true, OriginError) => SourceNotFound,
            (Fetched::Image, true, UpstreamFailed) => UpstreamTimeout,
            (Fetched::Image, true, UpstreamUnreachable) => ThumborFails,
            (Fetched::Image, _, kind) => kind,
            (Fetched::Watermark, _, SourceNotFound) => WatermarkNotLoaded,
            (Fetched::Watermark, true, UpstreamUnreachable) => ThumborFails,
            (Fetched::Watermark, true, _) => WatermarkNotLoaded,
            (Fetched::Watermark, false, kind) => kind,
            (Fetched::Frame, _, SourceNotFound) | (Fetched::Frame, true, _) => ThumborFails,
            (Fetched::Frame, false, kind) => kind,
        };
        self
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.context)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Thumbora's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(ErrorKind::BadSignature.status(), 400);
        assert_eq!(ErrorKind::SourceNotFound.status(), 404);
        assert_eq!(ErrorKind::UpstreamFailed.status(), 502);
        assert_eq!(ErrorKind::UpstreamTimeout.status(), 504);
        assert_eq!(ErrorKind::MethodNotAllowed.status(), 405);
        assert_eq!(ErrorKind::Overloaded.status(), 503);
        assert_eq!(ErrorKind::MemoryBudget.status(), 503);
    }

    #[test]
    fn fetch_failures_get_thumbors_statuses_only_when_asked() {
        let status = |kind, fetched, thumbor| Error::new(kind, "x").fetch_failure(fetched, thumbor).status();
        use ErrorKind::*;
        use Fetched::*;
        // Thumbora's own statuses.
        assert_eq!(status(OriginError, Image, false), 502);
        assert_eq!(status(UpstreamUnreachable, Image, false), 502);
        assert_eq!(status(SourceNotFound, Watermark, false), 400);
        assert_eq!(status(OriginError, Watermark, false), 502);
        assert_eq!(status(SourceNotFound, Frame, false), 500);
        assert_eq!(status(UpstreamTimeout, Frame, false), 504);
        // thumbor's.
        assert_eq!(status(OriginError, Image, true), 404);
        assert_eq!(status(UpstreamFailed, Image, true), 504);
        assert_eq!(status(UpstreamUnreachable, Image, true), 500);
        assert_eq!(status(EmptySource, Image, true), 502);
        assert_eq!(status(EmptySource, Watermark, true), 400);
        assert_eq!(status(UpstreamUnreachable, Watermark, true), 500);
        assert_eq!(status(EmptySource, Frame, true), 500);
        // Never the origin's fault.
        assert_eq!(status(Overloaded, Watermark, true), 503);
        assert_eq!(status(MemoryBudget, Image, true), 503);
        assert_eq!(Error::new(Internal, "x").fetch_failure(Frame, true).kind(), Internal);
    }

    #[test]
    fn display_carries_context_and_source() {
        let io = std::io::Error::other("boom");
        let e = Error::new(ErrorKind::UpstreamFailed, "fetching h/i.jpg").with_source(io);
        assert_eq!(e.to_string(), "UpstreamFailed: fetching h/i.jpg: boom");
    }
}
