//! InitProducerId (0–4): ids for idempotent producers. Transactional ids are refused (no
//! transactions yet).
//!
//! Ids are the server's start time in milliseconds times 1024 plus a counter, so ids handed out
//! after a restart never repeat earlier ones (unless more than 1024 producers a millisecond of
//! uptime were started), with nothing stored.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::codes;
use super::dispatch::Request;
use super::server::Context;

fn next_producer_id() -> i64 {
    static NEXT: OnceLock<AtomicI64> = OnceLock::new();
    NEXT.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        AtomicI64::new(now.saturating_mul(1024))
    })
    .fetch_add(1, Ordering::Relaxed)
}

pub(super) async fn handle(
    _context: &Context,
    _request: &Request<'_>,
    message: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if message.transactional_id.is_some() {
        return InitProducerIdResponse::default()
            .with_error_code(codes::code(ResponseError::TransactionalIdAuthorizationFailed))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    // From v3 a producer may ask to bump the epoch of the id it has (after a fatal error).
    let (producer_id, epoch) = if message.producer_id.0 >= 0 && message.producer_epoch >= 0 {
        match message.producer_epoch.checked_add(1) {
            Some(epoch) => (message.producer_id.0, epoch),
            None => (next_producer_id(), 0),
        }
    } else {
        (next_producer_id(), 0)
    };
    InitProducerIdResponse::default()
        .with_error_code(codes::NONE)
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}
