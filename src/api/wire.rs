//! Checks of every request's wire format before a service sees it, for every service the
//! daemon serves (ssprd's, health, reflection): the content type is gRPC with protobuf, every
//! message is well framed, no larger than the decode limit and valid protobuf for the
//! method's request type (varints, lengths, wire types, UTF-8 in strings — checked against
//! the same descriptors the services are generated from), a call whose request is unary
//! carries exactly one message, and nothing is compressed. Anything else is answered
//! `INVALID_ARGUMENT` / `MALFORMED_REQUEST` or `UNSUPPORTED_CONTENT_TYPE` (or
//! `RESOURCE_EXHAUSTED` / `REQUEST_TOO_LARGE`, or `UNIMPLEMENTED` /
//! `COMPRESSION_UNSUPPORTED` for a `grpc-encoding` other than `identity`) with `ErrorInfo`,
//! never `INTERNAL`.
//!
//! The request body is checked as it streams: a message is validated once it is complete,
//! before the bytes that complete it reach the service's decoder, and a failure ends the body
//! with the error status, which tonic turns into the call's answer. A streaming service may
//! end its answer with OK when its request stream fails (reflection does): the answer's
//! trailers then carry the check's status instead.

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::{Code, Status};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The gRPC message header: compressed flag and big-endian length.
const HEADER: usize = 5;

/// What the checks know of one method.
#[derive(Debug, Clone)]
struct Method {
    input: MessageDescriptor,
    /// The client may send a stream of messages (reflection); otherwise exactly one.
    client_streaming: bool,
}

/// Every method the daemon serves, by HTTP path (`/package.Service/Method`).
#[derive(Debug)]
pub struct Methods {
    by_path: HashMap<String, Method>,
}

impl Methods {
    /// ssprd's services, the health service and both reflection versions.
    pub fn served() -> Self {
        let mut pool = DescriptorPool::new();
        for set in [
            super::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            pool.decode_file_descriptor_set(set)
                .expect("the built-in descriptor sets are valid");
        }
        let by_path = pool
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .map(|m| {
                (
                    format!("/{}/{}", m.parent_service().full_name(), m.name()),
                    Method {
                        input: m.input(),
                        client_streaming: m.is_client_streaming(),
                    },
                )
            })
            .collect();
        Self { by_path }
    }

    /// Every path served here (`/package.Service/Method`).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str)
    }

    /// Whether `path` names a method served here.
    pub fn knows(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// Whether `message` (without the gRPC header) is a valid request message of `path`
    /// (`None`: not a method served here).
    pub fn check_message(&self, path: &str, message: &[u8]) -> Option<Result<(), String>> {
        let m = self.by_path.get(path)?;
        Some(
            DynamicMessage::decode(m.input.clone(), message)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        )
    }
}

fn malformed(message: impl Into<String>) -> Status {
    super::status(
        Code::InvalidArgument,
        "MALFORMED_REQUEST",
        Some("request"),
        message.into(),
    )
}

/// The content type of a gRPC request with protobuf messages: `application/grpc` or
/// `application/grpc+proto` (parameters after `;` allowed).
pub fn content_type_ok(value: Option<&[u8]>) -> bool {
    let Some(v) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
        return false;
    };
    let media = v.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/grpc")
        || media.eq_ignore_ascii_case("application/grpc+proto")
}

/// The answer to a request whose content type is not gRPC with protobuf.
pub fn unsupported_content_type() -> Status {
    super::status(
        Code::InvalidArgument,
        "UNSUPPORTED_CONTENT_TYPE",
        Some("content-type"),
        "the content type must be application/grpc (protobuf messages)".into(),
    )
}

/// The answer to a request compressed with `encoding` (a `grpc-encoding` other than
/// `identity`): the gRPC spec's UNIMPLEMENTED, with ssprd's stable reason and the encodings
/// the server accepts (`grpc-accept-encoding: identity`).
pub fn compression_unsupported(encoding: &str) -> http::Response<tonic::body::Body> {
    let mut res = super::status(
        Code::Unimplemented,
        "COMPRESSION_UNSUPPORTED",
        Some("grpc-encoding"),
        format!("requests compressed with {encoding:?} are not accepted: send them uncompressed"),
    )
    .into_http();
    res.headers_mut().insert(
        "grpc-accept-encoding",
        http::HeaderValue::from_static("identity"),
    );
    res
}

/// A request body checked as it streams (see the module docs).
pub struct CheckedBody<B> {
    inner: B,
    method: Method,
    max_message: usize,
    /// Bytes from the start of the first message not yet complete.
    partial: BytesMut,
    messages: usize,
    done: bool,
    /// Where a failure is left for the answer's trailers (see [`FailedRequest`]).
    failure: FailedRequest,
}

/// The status of a request whose body failed the checks, shared with its answer.
#[derive(Clone, Default)]
pub struct FailedRequest(Arc<Mutex<Option<Status>>>);

impl FailedRequest {
    fn set(&self, s: &Status) {
        *self.0.lock().expect("lock") = Some(s.clone());
    }

    fn get(&self) -> Option<Status> {
        self.0.lock().expect("lock").clone()
    }
}

impl<B> CheckedBody<B> {
    /// Checks the body of a call to `path`; `None` when the method is not served here (the
    /// router answers UNIMPLEMENTED).
    pub fn new(
        inner: B,
        methods: &Methods,
        path: &str,
        max_message: usize,
        failure: FailedRequest,
    ) -> Result<Self, B> {
        match methods.by_path.get(path) {
            Some(m) => Ok(Self {
                inner,
                method: m.clone(),
                max_message,
                partial: BytesMut::new(),
                messages: 0,
                done: false,
                failure,
            }),
            None => Err(inner),
        }
    }

    /// Ends the body with `s`.
    fn fail(&mut self, s: Status) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.failure.set(&s);
        Poll::Ready(Some(Err(Box::new(s))))
    }

    /// Validates the complete messages in `partial`, keeping an incomplete tail.
    fn check_complete_messages(&mut self) -> Result<(), Status> {
        loop {
            if self.partial.len() < HEADER {
                return Ok(());
            }
            let flag = self.partial[0];
            let len = u32::from_be_bytes([
                self.partial[1],
                self.partial[2],
                self.partial[3],
                self.partial[4],
            ]) as usize;
            if flag > 1 {
                return Err(malformed(format!(
                    "message {} has an invalid compressed flag {flag}",
                    self.messages + 1
                )));
            }
            if flag == 1 {
                return Err(malformed(
                    "a compressed message arrived; requests are never compressed here",
                ));
            }
            if len > self.max_message {
                return Err(super::status(
                    Code::ResourceExhausted,
                    "REQUEST_TOO_LARGE",
                    None,
                    format!(
                        "the request message has {len} bytes; at most {} are accepted",
                        self.max_message
                    ),
                ));
            }
            if self.partial.len() < HEADER + len {
                return Ok(());
            }
            self.messages += 1;
            if self.messages > 1 && !self.method.client_streaming {
                return Err(malformed(
                    "a unary call carries exactly one request message",
                ));
            }
            let frame = self.partial.split_to(HEADER + len).freeze();
            if flag == 0
                && let Err(e) =
                    DynamicMessage::decode(self.method.input.clone(), frame.slice(HEADER..))
            {
                return Err(malformed(format!(
                    "the request is not a valid {} message: {e}",
                    self.method.input.name()
                )));
            }
        }
    }

    /// What is wrong when the body ended here.
    fn check_end(&self) -> Result<(), Status> {
        if !self.partial.is_empty() {
            return Err(malformed("the request ends inside a message (truncated)"));
        }
        if self.messages == 0 && !self.method.client_streaming {
            return Err(malformed("the request carries no message"));
        }
        Ok(())
    }
}

impl<B> Body for CheckedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let frame = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => {
                return match this.check_end() {
                    Ok(()) => {
                        this.done = true;
                        Poll::Ready(None)
                    }
                    Err(s) => this.fail(s),
                };
            }
        };
        if let Some(data) = frame.data_ref() {
            this.partial.extend_from_slice(data.chunk());
            if let Err(s) = this.check_complete_messages() {
                return this.fail(s);
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// An answer whose trailers say OK although its request failed the checks gets the
/// check's status instead.
struct AnswerBody<B> {
    inner: B,
    failure: FailedRequest,
}

impl<B> Body for AnswerBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let Some(Ok(frame)) = frame else {
            return Poll::Ready(frame);
        };
        if let Some(trailers) = frame.trailers_ref()
            && trailers
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == b"0")
            && let Some(status) = self.failure.get()
        {
            let mut replaced = http::HeaderMap::new();
            if status.add_header(&mut replaced).is_ok() {
                return Poll::Ready(Some(Ok(Frame::trailers(replaced))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A tower layer applying the checks to every request.
#[derive(Clone)]
pub struct WireLayer {
    methods: Arc<Methods>,
    max_message: usize,
}

impl WireLayer {
    pub fn new(max_message: usize) -> Self {
        Self {
            methods: Arc::new(Methods::served()),
            max_message,
        }
    }
}

impl<S> tower::Layer<S> for WireLayer {
    type Service = WireService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WireService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WireService<S> {
    inner: S,
    layer: WireLayer,
}

type HttpResponse = http::Response<tonic::body::Body>;

impl<S, B> tower::Service<http::Request<B>> for WireService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = HttpResponse>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        if self.layer.methods.knows(&path)
            && !content_type_ok(parts.headers.get("content-type").map(|v| v.as_bytes()))
        {
            let status = unsupported_content_type();
            return Box::pin(async move { Ok(status.into_http()) });
        }
        if let Some(encoding) = parts
            .headers
            .get("grpc-encoding")
            .filter(|v| v.as_bytes() != b"identity")
            .filter(|_| self.layer.methods.knows(&path))
        {
            let res = compression_unsupported(&String::from_utf8_lossy(encoding.as_bytes()));
            return Box::pin(async move { Ok(res) });
        }
        let failure = FailedRequest::default();
        let body = match CheckedBody::new(
            body,
            &self.layer.methods,
            &path,
            self.layer.max_message,
            failure.clone(),
        ) {
            Ok(checked) => tonic::body::Body::new(checked),
            Err(plain) => {
                tonic::body::Body::new(http_body_util::BodyExt::map_err(plain, |e| -> BoxError {
                    e.into()
                }))
            }
        };
        let answer = self.inner.call(http::Request::from_parts(parts, body));
        Box::pin(async move {
            let res = answer.await?;
            Ok(res.map(|inner| tonic::body::Body::new(AnswerBody { inner, failure })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use prost::Message;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            out.push(0);
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    /// Feeds `chunks` through a checked body for `path`; the error reason, if any.
    async fn check(path: &str, chunks: Vec<Vec<u8>>) -> Result<usize, String> {
        let methods = Methods::served();
        let stream = tokio_stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c)))),
        );
        let body = CheckedBody::new(
            StreamBody::new(stream),
            &methods,
            path,
            1024,
            FailedRequest::default(),
        )
        .unwrap_or_else(|_| panic!("{path} is served"));
        let mut body = std::pin::pin!(body);
        let mut bytes = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => bytes += f.data_ref().map_or(0, |d| d.len()),
                Err(e) => {
                    let s = e.downcast::<Status>().expect("a status");
                    use tonic_types::StatusExt;
                    return Err(s.get_details_error_info().unwrap().reason);
                }
            }
        }
        Ok(bytes)
    }

    const START: &str = "/ssprd.v1.ResetService/StartReset";

    fn start(name: &str) -> Vec<u8> {
        crate::api::pb::StartResetRequest {
            username: name.into(),
        }
        .encode_to_vec()
    }

    #[tokio::test]
    async fn good_requests_pass_in_any_chunking() {
        let body = framed(&[&start("alice")]);
        assert_eq!(check(START, vec![body.clone()]).await, Ok(body.len()));
        let split: Vec<Vec<u8>> = body.iter().map(|b| vec![*b]).collect();
        assert_eq!(check(START, split).await, Ok(body.len()));
        // An empty message is a valid (empty) request.
        assert!(check(START, vec![framed(&[&[]])]).await.is_ok());
        // Reflection streams many messages.
        let reflect = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(check(reflect, vec![framed(&[&[], &[]])]).await.is_ok());
    }

    /// Issue 10 items 4 and 7: each malformed kind is MALFORMED_REQUEST.
    #[tokio::test]
    async fn malformed_requests_are_refused_with_a_reason() {
        let bad_utf8 = [0x0a, 0x02, 0xc3, 0x28];
        let bad_varint = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        let truncated_field = [0x0a, 0x10, b'a'];
        let wrong_wire_type = [0x0d, 1, 2, 3, 4]; // field 1 as fixed32, declared string
        let ok = start("alice");
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            ("invalid UTF-8", vec![framed(&[&bad_utf8])]),
            ("bad varint", vec![framed(&[&bad_varint])]),
            ("truncated field", vec![framed(&[&truncated_field])]),
            ("wrong wire type", vec![framed(&[&wrong_wire_type])]),
            ("two messages", vec![framed(&[&ok, &ok])]),
            ("second message later", vec![framed(&[&ok]), framed(&[&ok])]),
            ("truncated frame", vec![framed(&[&ok])[..6].to_vec()]),
            ("no message", vec![]),
            ("bad flag", vec![vec![7, 0, 0, 0, 0]]),
            ("compressed without encoding", vec![vec![1, 0, 0, 0, 0]]),
        ];
        for (what, chunks) in cases {
            assert_eq!(
                check(START, chunks).await,
                Err("MALFORMED_REQUEST".to_string()),
                "{what}"
            );
        }
        let big = vec![b'x'; 2000];
        let too_big = crate::api::pb::StartResetRequest {
            username: String::from_utf8(big).unwrap(),
        }
        .encode_to_vec();
        assert_eq!(
            check(START, vec![framed(&[&too_big])[..10].to_vec()]).await,
            Err("REQUEST_TOO_LARGE".to_string()),
            "refused from the header, before the message arrives"
        );
    }

    /// Whatever the generated decoders refuse, the check refuses first (so a service's
    /// decoder never answers INTERNAL): random and mutated inputs for every request type
    /// with fields of several kinds. The fuzz target `requests` keeps looking.
    #[test]
    fn the_check_refuses_whatever_prost_refuses() {
        use crate::api::pb;
        use rand::RngExt;
        type Decode = fn(&[u8]) -> bool;
        let methods = Methods::served();
        let targets: [(&str, Decode); 6] = [
            (START, |b| pb::StartResetRequest::decode(b).is_ok()),
            ("/ssprd.v1.ResetService/VerifyMethod", |b| {
                pb::VerifyMethodRequest::decode(b).is_ok()
            }),
            ("/ssprd.v1.RegistrationService/SetSecurityQuestions", |b| {
                pb::SetSecurityQuestionsRequest::decode(b).is_ok()
            }),
            ("/ssprd.v1.AdminService/UpdatePolicy", |b| {
                pb::UpdatePolicyRequest::decode(b).is_ok()
            }),
            ("/ssprd.v1.AdminService/QueryAudit", |b| {
                pb::QueryAuditRequest::decode(b).is_ok()
            }),
            ("/grpc.health.v1.Health/Check", |b| {
                tonic_health::pb::HealthCheckRequest::decode(b).is_ok()
            }),
        ];
        let seed = pb::VerifyMethodRequest {
            flow_id: "flow".into(),
            proof: Some(pb::verify_method_request::Proof::SecurityAnswers(
                pb::SecurityAnswers {
                    answers: vec![pb::QuestionAnswer {
                        question_id: "q".into(),
                        answer: "a".into(),
                    }],
                },
            )),
        }
        .encode_to_vec();
        let mut rng = rand::rng();
        for i in 0..20_000 {
            let input: Vec<u8> = if i % 2 == 0 {
                (0..rng.random_range(0..24)).map(|_| rng.random()).collect()
            } else {
                let mut m = seed.clone();
                let at = rng.random_range(0..m.len());
                m[at] = rng.random();
                m.truncate(rng.random_range(at..=m.len()));
                m
            };
            for (path, prost_ok) in &targets {
                let checked = methods.check_message(path, &input).unwrap();
                if !prost_ok(&input) {
                    assert!(checked.is_err(), "{path}: {input:02x?} passed the check");
                }
            }
        }
    }

    #[test]
    fn every_served_method_is_known() {
        let m = Methods::served();
        for path in [
            "/ssprd.v1.ResetService/CompleteReset",
            "/ssprd.v1.RegistrationService/BeginRegistration",
            "/ssprd.v1.AdminService/QueryAudit",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(m.knows(path), "{path}");
        }
        assert!(!m.knows("/ssprd.v1.ResetService/Nope"));
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC; charset=x",
        ] {
            assert!(content_type_ok(Some(ok.as_bytes())), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/grpc+json",
            "application/grpc-web",
            "",
        ] {
            assert!(!content_type_ok(Some(bad.as_bytes())), "{bad}");
        }
        assert!(!content_type_ok(None));
    }
}
