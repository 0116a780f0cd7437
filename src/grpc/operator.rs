//! `popgate.v1.Operator`: GetStats.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{convert, peer};
use crate::gateway::{Gateway, StatsRequest};
use crate::pb::operator_server::Operator;
use crate::pb::{GetStatsRequest, GetStatsResponse};

pub struct OperatorService {
    gateway: Arc<Gateway>,
}

impl OperatorService {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        OperatorService { gateway }
    }
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn get_stats(
        &self,
        req: Request<GetStatsRequest>,
    ) -> Result<Response<GetStatsResponse>, Status> {
        let answer = self.gateway.unary(peer(&req)?, StatsRequest).await?;
        Ok(Response::new(convert::stats_response(answer)))
    }
}
