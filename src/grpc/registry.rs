//! `popgate.v1.RegistryAdmin`: PutCitizen.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{convert, peer};
use crate::gateway::Gateway;
use crate::pb::registry_admin_server::RegistryAdmin;
use crate::pb::{PutCitizenRequest, PutCitizenResponse};

pub struct RegistryService {
    gateway: Arc<Gateway>,
}

impl RegistryService {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        RegistryService { gateway }
    }
}

#[tonic::async_trait]
impl RegistryAdmin for RegistryService {
    async fn put_citizen(
        &self,
        req: Request<PutCitizenRequest>,
    ) -> Result<Response<PutCitizenResponse>, Status> {
        let peer = peer(&req)?;
        let answer = self
            .gateway
            .unary(peer, convert::put_request(req.into_inner()))
            .await?;
        Ok(Response::new(convert::put_response(answer)))
    }
}
