//! `popgate.v1.RegistryAdmin`: PutCitizen.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::peer;
use crate::gateway::{Gateway, Method};
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
        let caller = self
            .gateway
            .authenticate(peer(&req)?, Method::PutCitizen)
            .await?;
        let answer = self.gateway.put_citizen(&caller, req.into_inner()).await?;
        Ok(Response::new(answer.value))
    }
}
