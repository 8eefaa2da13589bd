//! Counts and times every call: `ssprd_rpc_requests_total{method, code}` and
//! `ssprd_rpc_duration_seconds{method}`, from the request's arrival to the status that
//! ends its response (a trailers-only answer's headers, or the trailers after the message).
//!
//! `method` is the call's path when the daemon serves it, `other` for any other path (a
//! client cannot make up labels); `code` is the gRPC status code's name, `Cancelled` when the
//! client went away before the answer ended.

use crate::api::wire::Methods;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

#[derive(Clone)]
pub struct MeteredLayer {
    methods: Arc<Methods>,
}

impl MeteredLayer {
    pub fn new() -> Self {
        Self {
            methods: Arc::new(Methods::served()),
        }
    }
}

impl<S> tower::Layer<S> for MeteredLayer {
    type Service = Metered<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Metered {
            inner,
            methods: self.methods.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    methods: Arc<Methods>,
}

/// One call being measured; recorded once, when its status is known or it is dropped.
struct Call {
    method: String,
    started: Instant,
}

impl Call {
    fn record(self, code: &str) {
        metrics::counter!(
            "ssprd_rpc_requests_total",
            "method" => self.method.clone(),
            "code" => code.to_string()
        )
        .increment(1);
        metrics::histogram!("ssprd_rpc_duration_seconds", "method" => self.method)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// The name of the status code in `grpc-status`, if the map has one.
fn code_in(headers: &http::HeaderMap) -> Option<String> {
    let value = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(format!("{:?}", tonic::Code::from_i32(value)))
}

impl<S, B> tower::Service<tonic::codegen::http::Request<B>> for Metered<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let call = Call {
            method: if self.methods.knows(path) {
                path.to_string()
            } else {
                "other".to_string()
            },
            started: Instant::now(),
        };
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            // A trailers-only answer (every refusal) carries its status in the headers.
            if let Some(code) = code_in(response.headers()) {
                call.record(&code);
                return Ok(response);
            }
            Ok(response.map(|inner| {
                tonic::body::Body::new(MeteredBody {
                    inner,
                    call: Some(call),
                })
            }))
        })
    }
}

/// A response body that records its call when the trailers pass (or when it is dropped
/// before they did).
struct MeteredBody {
    inner: tonic::body::Body,
    call: Option<Call>,
}

impl Body for MeteredBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = self.call.take()
                {
                    call.record(&code_in(trailers).unwrap_or_else(|| "Unknown".into()));
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                if let Some(call) = self.call.take() {
                    call.record("Unknown");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.record("Cancelled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_named() {
        let mut h = http::HeaderMap::new();
        assert_eq!(code_in(&h), None);
        h.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(code_in(&h).as_deref(), Some("Ok"));
        h.insert("grpc-status", "3".parse().unwrap());
        assert_eq!(code_in(&h).as_deref(), Some("InvalidArgument"));
        h.insert("grpc-status", "99".parse().unwrap());
        assert_eq!(code_in(&h).as_deref(), Some("Unknown"));
        h.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(code_in(&h), None);
    }
}
