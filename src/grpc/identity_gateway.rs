//! `popgate.v1.IdentityGateway`: Lookup, Verify and their streams; Follow, Unfollow and
//! WatchChanges.

use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{convert, peer};
use crate::error::Error;
use crate::gateway::{Caller, Gateway, UnfollowRequest};
use crate::pb::identity_gateway_server::IdentityGateway;
use crate::pb::{
    ChangeEvent, FollowRequest, FollowResponse, ItemError, LookupRequest, LookupResponse,
    VerifyRequest, VerifyResponse, WatchChangesRequest,
};
use crate::policy::Method;

/// Stream items served at once per stream. Answers still go out in request order; this only
/// lets one item's audit sync overlap the next items' work.
const STREAM_WINDOW: usize = 64;

pub struct IdentityGatewayService {
    gateway: Arc<Gateway>,
    /// `[limits] max_message_bytes`, named when a stream's item is over it.
    max_message_bytes: usize,
}

impl IdentityGatewayService {
    pub fn new(gateway: Arc<Gateway>, max_message_bytes: usize) -> Self {
        IdentityGatewayService {
            gateway,
            max_message_bytes,
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Serves a request stream item by item, in order, with failed items reported in the answer
/// instead of ending the stream. A broken inbound stream (transport or decoding error), or a
/// caller removed or revoked since the stream opened, ends the stream with a status.
fn serve_stream<Req, Resp, F, Fut>(
    inbound: Streaming<Req>,
    caller: Caller,
    method: Method,
    gateway: Arc<Gateway>,
    max_message_bytes: usize,
    item: F,
) -> ResponseStream<Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Fn(Arc<Gateway>, Caller, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(STREAM_WINDOW);
    tokio::spawn(async move {
        let mut answers = inbound
            .map(|next| match next {
                Ok(req) => match gateway.recheck(&caller, method) {
                    Ok(current) => {
                        let answer = item(gateway.clone(), current, req);
                        Either::Left(async move { Ok(answer.await) })
                    }
                    Err(e) => Either::Right(ready(Err(Status::from(e)))),
                },
                Err(status) => Either::Right(ready(Err(super::status::oversized(
                    &status,
                    max_message_bytes,
                )
                .unwrap_or(status)))),
            })
            .buffered(STREAM_WINDOW);
        while let Some(answer) = answers.next().await {
            let last = answer.is_err();
            if tx.send(answer).await.is_err() || last {
                // The caller has gone, or its stream broke: nothing more to answer.
                break;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

fn item_error(e: Error) -> Option<ItemError> {
    Some(e.into())
}

#[tonic::async_trait]
impl IdentityGateway for IdentityGatewayService {
    async fn lookup(
        &self,
        req: Request<LookupRequest>,
    ) -> Result<Response<LookupResponse>, Status> {
        let peer = peer(&req)?;
        let answer = self
            .gateway
            .unary(peer, convert::lookup_request(req.into_inner()))
            .await?;
        Ok(Response::new(convert::lookup_response(answer)))
    }

    async fn verify(
        &self,
        req: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let peer = peer(&req)?;
        let answer = self
            .gateway
            .unary(peer, convert::verify_request(req.into_inner()))
            .await?;
        Ok(Response::new(convert::verify_response(answer)))
    }

    type LookupStreamStream = ResponseStream<LookupResponse>;

    async fn lookup_stream(
        &self,
        req: Request<Streaming<LookupRequest>>,
    ) -> Result<Response<Self::LookupStreamStream>, Status> {
        let caller = self
            .gateway
            .open_stream(peer(&req)?, Method::Lookup)
            .await?;
        let out = serve_stream(
            req.into_inner(),
            caller,
            Method::Lookup,
            self.gateway.clone(),
            self.max_message_bytes,
            |gw, caller, req: LookupRequest| async move {
                let request_id = req.request_id.clone();
                match gw.stream_item(&caller, convert::lookup_request(req)).await {
                    Ok(answer) => convert::lookup_response(answer),
                    Err(e) => LookupResponse {
                        request_id,
                        error: item_error(e),
                        ..Default::default()
                    },
                }
            },
        );
        Ok(Response::new(out))
    }

    type VerifyStreamStream = ResponseStream<VerifyResponse>;

    async fn verify_stream(
        &self,
        req: Request<Streaming<VerifyRequest>>,
    ) -> Result<Response<Self::VerifyStreamStream>, Status> {
        let caller = self
            .gateway
            .open_stream(peer(&req)?, Method::Verify)
            .await?;
        let out = serve_stream(
            req.into_inner(),
            caller,
            Method::Verify,
            self.gateway.clone(),
            self.max_message_bytes,
            |gw, caller, req: VerifyRequest| async move {
                let request_id = req.request_id.clone();
                match gw.stream_item(&caller, convert::verify_request(req)).await {
                    Ok(answer) => convert::verify_response(answer),
                    Err(e) => VerifyResponse {
                        request_id,
                        error: item_error(e),
                        ..Default::default()
                    },
                }
            },
        );
        Ok(Response::new(out))
    }

    async fn follow(
        &self,
        req: Request<FollowRequest>,
    ) -> Result<Response<FollowResponse>, Status> {
        let peer = peer(&req)?;
        let answer = self
            .gateway
            .unary(peer, convert::follow_request(req.into_inner()))
            .await?;
        Ok(Response::new(convert::follow_response(answer)))
    }

    async fn unfollow(
        &self,
        req: Request<FollowRequest>,
    ) -> Result<Response<FollowResponse>, Status> {
        let peer = peer(&req)?;
        let answer = self
            .gateway
            .unary(
                peer,
                UnfollowRequest(convert::follow_request(req.into_inner())),
            )
            .await?;
        Ok(Response::new(convert::follow_response(answer)))
    }

    type WatchChangesStream = ResponseStream<ChangeEvent>;

    async fn watch_changes(
        &self,
        req: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let caller = self
            .gateway
            .open_stream(peer(&req)?, Method::WatchChanges)
            .await?;
        let events = self
            .gateway
            .watch(caller, convert::watch_request(req.into_inner()))
            .await?;
        let out =
            ReceiverStream::new(events).map(|e| e.map(convert::change_event).map_err(Status::from));
        Ok(Response::new(Box::pin(out)))
    }
}
