//! The one mapping from domain errors to gRPC: statuses for unary calls and whole streams,
//! `ItemError`s for stream items.

use tonic::codegen::http;
use tonic::{Code, Status};

use crate::error::Error;
use crate::pb::ItemError;

fn code(e: &Error) -> Code {
    match e {
        Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::PermissionDenied(_) => Code::PermissionDenied,
        Error::NotFound(_) => Code::NotFound,
        Error::AlreadyExists(_) => Code::AlreadyExists,
        Error::Aborted(_) => Code::Aborted,
        Error::FailedPrecondition(_) => Code::FailedPrecondition,
        Error::RateLimited { .. } => Code::ResourceExhausted,
        Error::Unavailable(_) => Code::Unavailable,
        Error::Internal(_) => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let mut status = Status::new(code(&e), e.to_string());
        if let Error::RateLimited { retry_after, .. } = &e {
            // Round up: retrying a millisecond early would be refused again.
            let ms = retry_after.as_micros().div_ceil(1000).max(1);
            if let Ok(v) = ms.to_string().parse() {
                status.metadata_mut().insert("retry-after-ms", v);
            }
        }
        status
    }
}

impl From<Error> for ItemError {
    fn from(e: Error) -> ItemError {
        let code = code(&e) as u32;
        ItemError {
            code,
            message: e.to_string(),
        }
    }
}

/// tonic answers a request message over `max_decoding_message_size` with `OUT_OF_RANGE`;
/// gRPC's status-code guide, and the clients of grpc-go, grpc-java and grpc-core, expect
/// `RESOURCE_EXHAUSTED`, with a message that says which limit and how to change it. `None`
/// for any other status.
pub(crate) fn oversized(status: &Status, limit: usize) -> Option<Status> {
    let too_large = status.code() == Code::OutOfRange
        && status
            .message()
            .starts_with("Error, decoded message length too large");
    too_large.then(|| {
        Status::resource_exhausted(format!(
            "request message larger than the gateway's limit of {limit} bytes \
             ([limits] max_message_bytes); send smaller messages (a stream takes many)"
        ))
    })
}

/// A service whose refusals of oversized unary requests come out as [`oversized`] says.
/// tonic decodes a unary request before any handler of ours runs, so the status is rewritten
/// on the way out; a stream's oversized item reaches the stream's handler, which maps it there.
#[derive(Clone)]
pub(crate) struct SizeLimitStatus<S> {
    inner: S,
    limit: usize,
}

impl<S> SizeLimitStatus<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        SizeLimitStatus { inner, limit }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for SizeLimitStatus<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tonic::codegen::Service<http::Request<B>> for SizeLimitStatus<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tonic::codegen::BoxFuture<S::Response, S::Error>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (fut, limit) = (self.inner.call(req), self.limit);
        Box::pin(async move {
            let mut resp = fut.await?;
            // Only a trailers-only answer (a status and no message) can be this refusal.
            if let Some(mapped) =
                Status::from_header_map(resp.headers()).and_then(|s| oversized(&s, limit))
            {
                let _ = mapped.add_header(resp.headers_mut());
            }
            Ok(resp)
        })
    }
}
