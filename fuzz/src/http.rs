//! `http_incoming`: an API Gateway HTTP API (payload v2) event, as JSON bytes, through
//! webhook-verify's own `incoming` and `route`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;

use crate::received_at;

/// Deserialises `bytes` as the Lambda runtime would, then adapts the request as the handler
/// does. Also routes the raw bytes as a path, so `route` is fuzzed on its own.
pub fn incoming(bytes: &[u8]) {
    if let Ok(path) = std::str::from_utf8(bytes) {
        check_route(path);
    }
    let Ok(request) = serde_json::from_slice::<ApiGatewayV2httpRequest>(bytes) else { return };
    if let Some(path) = &request.raw_path {
        check_route(path);
    }
    let Ok(incoming) = crate::webhook_verify::incoming(&request, received_at()) else { return };
    assert!(
        incoming.headers.iter().all(|(name, _)| !name.bytes().any(|b| b.is_ascii_uppercase())),
        "header names are lower-cased"
    );
    assert_eq!(incoming.received_at, received_at());
}

fn check_route(path: &str) {
    if let Some((source, shop)) = crate::webhook_verify::route(path) {
        for segment in [&source, &shop] {
            assert!(!segment.is_empty() && !segment.contains('/'), "route yielded {segment:?} from {path:?}");
        }
    }
}
