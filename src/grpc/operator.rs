//! `popgate.v1.Operator`: GetStats.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::peer;
use crate::gateway::{Gateway, Method};
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
        let caller = self
            .gateway
            .authenticate(peer(&req)?, Method::GetStats)
            .await?;
        let answer = self.gateway.get_stats(&caller).await?;
        Ok(Response::new(answer.value))
    }
}
