//! The SigV4 presigner against two outside references: AWS's published SigV4 test suite
//! (its presigned-URL cases, in tests/data/sigv4_query_vectors.json), and botocore, an
//! independent implementation, asked to presign the same AWS IoT WebSocket URLs at the same
//! times with the same credentials.
//!
//! botocore lives in a test venv, `target/aws-venv` (made by scripts/test.sh). Without it
//! the botocore test is a failure under `CI=true` and a skip elsewhere.

mod common;

use std::path::PathBuf;
use std::process::Command;

use mqload::aws::Credentials;
use mqload::aws::sigv4::{self, AmzDate, PresignRequest, SessionTokenPlacement};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = common::repo_root().join("tests/data/sigv4_query_vectors.json");
    let text = std::fs::read_to_string(&path).expect("read the SigV4 test vectors");
    let doc: Value = serde_json::from_str(&text).expect("the SigV4 test vectors are JSON");
    doc["vectors"].as_array().expect("a vectors array").clone()
}

fn text<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} is a string"))
}

#[test]
fn presigned_requests_match_aws_sigv4_test_suite() {
    let vectors = vectors();
    assert!(vectors.len() >= 5, "the vector file lost its vectors");
    for vector in &vectors {
        let name = text(vector, "name");
        let query: Vec<(&str, &str)> = vector["query"]
            .as_array()
            .expect("query is an array")
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().expect("query key"),
                    pair[1].as_str().expect("query value"),
                )
            })
            .collect();
        let credentials = Credentials {
            access_key_id: text(vector, "access_key_id").to_owned(),
            secret_access_key: text(vector, "secret_access_key").to_owned(),
            session_token: vector["session_token"].as_str().map(str::to_owned),
        };
        let request = PresignRequest {
            host: text(vector, "host"),
            path: text(vector, "path"),
            query: &query,
            region: text(vector, "region"),
            service: text(vector, "service"),
            expires_secs: vector["expires_secs"].as_u64().expect("expires_secs") as u32,
            time: AmzDate::parse(text(vector, "amz_date")).expect("amz_date"),
        };
        let signed = sigv4::presign(&request, &credentials, SessionTokenPlacement::Signed)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            signed.canonical_request,
            text(vector, "canonical_request"),
            "{name}: canonical request"
        );
        assert_eq!(
            signed.string_to_sign,
            text(vector, "string_to_sign"),
            "{name}: string to sign"
        );
        assert_eq!(
            signed.signature,
            text(vector, "signature"),
            "{name}: signature"
        );
        assert!(
            signed
                .path_and_query
                .ends_with(&format!("&X-Amz-Signature={}", signed.signature)),
            "{name}: the signature ends the query"
        );
    }
}

/// One URL for botocore and us to presign.
struct Case {
    endpoint: &'static str,
    region: &'static str,
    unix_seconds: u64,
    token: Option<&'static str>,
    placement: SessionTokenPlacement,
}

const CASES: &[Case] = &[
    Case {
        endpoint: "abc123example-ats.iot.us-east-1.amazonaws.com",
        region: "us-east-1",
        unix_seconds: 1_796_472_000, // 2026-12-05T12:00:00Z
        token: None,
        placement: SessionTokenPlacement::AppendedAfterSignature,
    },
    Case {
        endpoint: "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com",
        region: "eu-west-1",
        unix_seconds: 951_782_399, // 2000-02-28T23:59:59Z, the eve of a leap day
        token: Some("FwoGZXIvYXdzEJr//////////wEaDN+example/token=="),
        placement: SessionTokenPlacement::AppendedAfterSignature,
    },
    Case {
        endpoint: "xyz-ats.iot.ap-southeast-2.amazonaws.com",
        region: "ap-southeast-2",
        unix_seconds: 1_735_689_599, // 2024-12-31T23:59:59Z
        token: Some("IQoJb3JpZ2luX2VjE+/=token with spaces"),
        placement: SessionTokenPlacement::AppendedAfterSignature,
    },
    Case {
        endpoint: "xyz-ats.iot.us-west-2.amazonaws.com",
        region: "us-west-2",
        unix_seconds: 1_440_938_160, // 2015-08-30T12:36:00Z
        token: Some("signed/token+value="),
        placement: SessionTokenPlacement::Signed,
    },
];

/// botocore's SigV4QueryAuth at a fixed time: the same presign AWS's Python tools use.
/// A token to append after signing (AWS IoT's way) is appended here, percent-encoded
/// with SigV4's unreserved set; a token to sign goes into botocore's credentials.
const BOTOCORE_PRESIGN: &str = r#"
import datetime, json, sys, urllib.parse
from unittest import mock
import botocore.auth, botocore.awsrequest, botocore.credentials
for case in json.loads(sys.argv[1]):
    credentials = botocore.credentials.Credentials(
        case["access_key_id"], case["secret_access_key"], case["signed_token"])
    auth = botocore.auth.SigV4QueryAuth(
        credentials, "iotdevicegateway", case["region"], expires=case["expires"])
    request = botocore.awsrequest.AWSRequest(method="GET", url=case["url"])
    at = datetime.datetime.fromtimestamp(case["unix"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        auth.add_auth(request)
    url = request.url
    if case["appended_token"] is not None:
        url += "&X-Amz-Security-Token=" + urllib.parse.quote(case["appended_token"], safe="-_.~")
    print(url)
"#;

fn botocore_python() -> Option<PathBuf> {
    let python = common::repo_root().join("target/aws-venv/bin/python");
    let has_botocore = python.exists()
        && Command::new(&python)
            .args(["-c", "import botocore"])
            .status()
            .is_ok_and(|status| status.success());
    if has_botocore {
        return Some(python);
    }
    let install = "python3 -m venv target/aws-venv && target/aws-venv/bin/pip install botocore";
    if common::in_ci() {
        panic!(
            "botocore is missing from target/aws-venv, and under CI=true that is a failure: \
             run `{install}` (scripts/test.sh does)"
        );
    }
    eprintln!("skipping: botocore is not in target/aws-venv (run `{install}`)");
    None
}

fn signature_of(url: &str) -> &str {
    url.split(['?', '&'])
        .find_map(|param| param.strip_prefix("X-Amz-Signature="))
        .unwrap_or_else(|| panic!("no signature in {url}"))
}

#[test]
fn iot_websocket_urls_match_botocore_byte_for_byte() {
    let Some(python) = botocore_python() else {
        return;
    };
    let credentials = |token: Option<&str>| Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        session_token: token.map(str::to_owned),
    };
    let ours: Vec<String> = CASES
        .iter()
        .map(|case| {
            let time = AmzDate::from_unix_seconds(case.unix_seconds).expect("a valid time");
            let request = PresignRequest::iot_websocket(case.endpoint, case.region, time);
            let signed = sigv4::presign(&request, &credentials(case.token), case.placement)
                .expect("presign");
            format!("wss://{}{}", case.endpoint, signed.path_and_query)
        })
        .collect();
    let botocore_cases: Vec<Value> = CASES
        .iter()
        .map(|case| {
            let signed = case.placement == SessionTokenPlacement::Signed;
            serde_json::json!({
                "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "signed_token": if signed { case.token } else { None },
                "appended_token": if signed { None } else { case.token },
                "region": case.region,
                "expires": sigv4::IOT_DEFAULT_EXPIRES_SECS,
                "url": format!("wss://{}{}", case.endpoint, sigv4::IOT_WEBSOCKET_PATH),
                "unix": case.unix_seconds,
            })
        })
        .collect();
    let out = Command::new(&python)
        .args(["-c", BOTOCORE_PRESIGN])
        .arg(Value::Array(botocore_cases).to_string())
        .output()
        .expect("run botocore");
    assert!(
        out.status.success(),
        "botocore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("botocore prints UTF-8");
    let theirs: Vec<&str> = stdout.lines().collect();
    assert_eq!(theirs.len(), CASES.len(), "one URL per case from botocore");
    for ((case, ours), theirs) in CASES.iter().zip(&ours).zip(&theirs) {
        match case.placement {
            // AWS IoT's form: the whole URL, byte for byte.
            SessionTokenPlacement::AppendedAfterSignature => assert_eq!(ours, theirs),
            // botocore writes the signed token before X-Amz-SignedHeaders rather than in
            // sorted order; both sign the same canonical (sorted) query.
            SessionTokenPlacement::Signed => assert_eq!(signature_of(ours), signature_of(theirs)),
        }
    }
    // The convenience wrapper is the first case's form.
    let first = &CASES[0];
    let url = sigv4::iot_websocket_url(
        first.endpoint,
        first.region,
        &credentials(None),
        AmzDate::from_unix_seconds(first.unix_seconds).expect("a valid time"),
    )
    .expect("presign");
    assert_eq!(url, theirs[0]);
}
