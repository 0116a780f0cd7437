//! The one mapping from domain errors to gRPC: statuses for unary calls and whole streams,
//! `ItemError`s for stream items.

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
