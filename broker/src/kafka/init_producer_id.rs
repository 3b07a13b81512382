//! InitProducerId (0–4): ids for idempotent producers. Transactional ids are refused (no
//! transactions yet).
//!
//! Ids come from the log's [`ProducerIds`](super::producer_ids): never one handed out before,
//! even across restarts.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::codes;
use super::dispatch::Request;
use super::produce::blocking;
use super::server::Context;

fn refused(error: ResponseError) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(codes::code(error))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

pub(super) async fn handle(
    context: &Context,
    _request: &Request<'_>,
    message: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if message.transactional_id.is_some() {
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let next_producer_id = || match blocking(|| context.producer_ids.allocate()) {
        Ok(id) => Ok(id),
        Err(error) => {
            tracing::warn!(%error, "cannot reserve producer ids");
            Err(refused(ResponseError::CoordinatorNotAvailable))
        }
    };
    // From v3 a producer may ask to bump the epoch of the id it has (after a fatal error).
    let fresh = || next_producer_id().map(|id| (id, 0));
    let allocated = if message.producer_id.0 >= 0 && message.producer_epoch >= 0 {
        match message.producer_epoch.checked_add(1) {
            Some(epoch) => Ok((message.producer_id.0, epoch)),
            None => fresh(),
        }
    } else {
        fresh()
    };
    let (producer_id, epoch) = match allocated {
        Ok(allocated) => allocated,
        Err(response) => return response,
    };
    InitProducerIdResponse::default()
        .with_error_code(codes::NONE)
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}
