//! Malformed requests over raw HTTP: each gets the error AWS would give, never a panic or hang.

use std::time::Duration;

use cloudpg_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/cloudcontrolapi/aws4_request, SignedHeaders=host, Signature=00";

/// Sends one HTTP/1.1 request and returns (status, body).
async fn send(emu: &Emulator, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(emu.addr()).await.unwrap();
    let mut req = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        emu.addr(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    // A very large body may be refused before it is fully sent.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("no hang")
        .ok();
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn op(name: &str) -> String {
    format!("CloudApiService.{name}")
}

#[tokio::test]
async fn malformed_requests_get_aws_errors() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let list = op("ListResources");
    let hdrs = [("authorization", AUTH), ("x-amz-target", list.as_str())];

    let (status, body) = send(&emu, &hdrs, b"{not json").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("SerializationException")));

    let (status, body) = send(&emu, &hdrs, b"[1,2]").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("SerializationException")));

    let (status, body) = send(&emu, &hdrs, b"{}").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("ValidationException")));
    assert!(body["Message"]
        .as_str()
        .unwrap()
        .contains("'typeName' failed to satisfy constraint: Member must not be null"));

    let (status, body) = send(&emu, &[("authorization", AUTH)], b"{}").await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("UnknownOperationException")));
    let (status, body) = send(
        &emu,
        &[("authorization", AUTH), ("x-amz-target", "CloudApiService.DropTables")],
        b"{}",
    )
    .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("UnknownOperationException")));

    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, body) = send(&emu, &hdrs, &big).await;
    assert_eq!((status, body["__type"].as_str()), (413, Some("RequestEntityTooLargeException")));

    let create = op("CreateResource");
    let (status, body) = send(
        &emu,
        &[("authorization", AUTH), ("x-amz-target", create.as_str())],
        br#"{"TypeName":"AWS::Logs::LogGroup","DesiredState":"{oops"}"#,
    )
    .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidRequestException")));

    let (status, body) = send(
        &emu,
        &[("authorization", AUTH), ("x-amz-target", list.as_str())],
        br#"{"TypeName":"AWS::S3::Bucket","NextToken":"bm90IGEgdG9rZW4="}"#,
    )
    .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidRequestException")));

    let (status, body) = send(
        &emu,
        &[("authorization", AUTH), ("x-amz-target", list.as_str())],
        br#"{"TypeName":"not-a-type"}"#,
    )
    .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("ValidationException")));

    let update = op("UpdateResource");
    let (status, body) = send(
        &emu,
        &[("authorization", AUTH), ("x-amz-target", update.as_str())],
        br#"{"TypeName":"AWS::Logs::LogGroup","Identifier":"x","PatchDocument":"{\"op\":1}"}"#,
    )
    .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidRequestException")));

    // The server is still fine after all that.
    let (status, body) = send(
        &emu,
        &[("authorization", AUTH), ("x-amz-target", list.as_str())],
        br#"{"TypeName":"AWS::S3::Bucket"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    emu.shutdown().await;
}

/// `POST /_emulator/config` with `body`; (status, body text).
async fn post_config(emu: &Emulator, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(emu.addr()).await.unwrap();
    let req = format!(
        "POST /_emulator/config HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        emu.addr(),
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("no hang")
        .ok();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// A key at the wrong level (or misspelt) is refused, naming it, instead of being ignored so
/// a test believes it injected faults it did not.
#[tokio::test]
async fn config_keys_that_mean_nothing_are_refused() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let (status, body) = post_config(&emu, r#"{"global": {"throttle": 1.0}}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("global"), "{body}");
    let (status, body) = post_config(&emu, r#"{"faults": {"global": {"throtle": 1.0}}}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("throtle"), "{body}");
    let (status, body) = post_config(&emu, r#"{"faults": {"rules": {"ListResources": {"throttle": 0.5}}}}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emu.config().faults.rules["ListResources"].throttle, Some(0.5));
    emu.shutdown().await;
}
