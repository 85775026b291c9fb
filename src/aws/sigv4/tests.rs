//! SigV4 presigning against known values: dates, URI encoding, the session token's place,
//! refused requests, and the region from an IoT endpoint.

use super::*;

fn example_credentials(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: token.map(str::to_owned),
    }
}

#[test]
fn amz_date_from_unix_seconds_matches_the_calendar() {
    // 2015-08-30T12:36:00Z, the time of AWS's test suite.
    let date = AmzDate::from_unix_seconds(1_440_938_160).unwrap();
    assert_eq!(date.as_str(), "20150830T123600Z");
    assert_eq!(date.date(), "20150830");
    assert_eq!(
        AmzDate::from_unix_seconds(0).unwrap().as_str(),
        "19700101T000000Z"
    );
    // A leap day, and the last second of a leap year.
    assert_eq!(
        AmzDate::from_unix_seconds(951_782_400).unwrap().as_str(),
        "20000229T000000Z"
    );
    assert_eq!(
        AmzDate::from_unix_seconds(1_735_689_599).unwrap().as_str(),
        "20241231T235959Z"
    );
    assert_eq!(
        AmzDate::from_unix_seconds(LAST_FOUR_DIGIT_YEAR_SECOND)
            .unwrap()
            .as_str(),
        "99991231T235959Z"
    );
    assert_eq!(
        AmzDate::from_unix_seconds(LAST_FOUR_DIGIT_YEAR_SECOND + 1),
        Err(SigningError::TimeOutOfRange(
            LAST_FOUR_DIGIT_YEAR_SECOND + 1
        ))
    );
}

#[test]
fn amz_date_from_system_time_drops_the_fraction() {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_440_938_160_999);
    assert_eq!(
        AmzDate::from_system_time(time).unwrap().as_str(),
        "20150830T123600Z"
    );
}

#[test]
fn amz_date_parse_refuses_other_shapes() {
    assert!(AmzDate::parse("20150830T123600Z").is_ok());
    for bad in [
        "",
        "20150830T123600",
        "2015-08-30T12:36:00Z",
        "2015083OT123600Z",
    ] {
        assert!(AmzDate::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn encoding_keeps_only_the_unreserved_set() {
    assert_eq!(uri_encode("AZaz09-_.~"), "AZaz09-_.~");
    assert_eq!(uri_encode("a/b c+=&"), "a%2Fb%20c%2B%3D%26");
    assert_eq!(uri_encode("ሴ"), "%E1%88%B4");
    assert_eq!(uri_encode_path("/a b/c"), "/a%20b/c");
}

#[test]
fn iot_url_appends_the_token_after_the_signature_and_leaves_it_unsigned() {
    let time = AmzDate::parse("20261205T120000Z").unwrap();
    let host = "abc123-ats.iot.us-east-1.amazonaws.com";
    let without = iot_websocket_url(host, "us-east-1", &example_credentials(None), time).unwrap();
    let with = iot_websocket_url(
        host,
        "us-east-1",
        &example_credentials(Some("tok/en+=")),
        time,
    )
    .unwrap();
    assert!(without.starts_with("wss://abc123-ats.iot.us-east-1.amazonaws.com/mqtt?"));
    assert_eq!(
        with,
        format!("{without}&X-Amz-Security-Token=tok%2Fen%2B%3D")
    );
    assert!(without.contains("X-Amz-Expires=86400&"));
    assert!(without.contains("%2Fus-east-1%2Fiotdevicegateway%2Faws4_request&"));
}

#[test]
fn a_signed_token_changes_the_signature() {
    let time = AmzDate::parse("20261205T120000Z").unwrap();
    let request = PresignRequest::iot_websocket("h.example", "us-east-1", time);
    let creds = example_credentials(Some("token"));
    let signed = presign(&request, &creds, SessionTokenPlacement::Signed).unwrap();
    let appended = presign(
        &request,
        &creds,
        SessionTokenPlacement::AppendedAfterSignature,
    )
    .unwrap();
    assert_ne!(signed.signature, appended.signature);
    assert!(
        signed
            .canonical_request
            .contains("X-Amz-Security-Token=token&")
    );
    assert!(!appended.canonical_request.contains("Security-Token"));
}

#[test]
fn bad_requests_are_named() {
    let time = AmzDate::parse("20261205T120000Z").unwrap();
    let creds = example_credentials(None);
    let base = PresignRequest::iot_websocket("h.example", "us-east-1", time);
    let cases = [
        (
            PresignRequest {
                host: "h/x",
                ..base
            },
            SigningError::BadHost("h/x".into()),
        ),
        (
            PresignRequest {
                path: "mqtt",
                ..base
            },
            SigningError::PathNotAbsolute("mqtt".into()),
        ),
        (
            PresignRequest {
                region: "US East",
                ..base
            },
            SigningError::BadRegion("US East".into()),
        ),
        (
            PresignRequest {
                service: "",
                ..base
            },
            SigningError::BadService(String::new()),
        ),
        (
            PresignRequest {
                expires_secs: MAX_EXPIRES_SECS + 1,
                ..base
            },
            SigningError::ExpiresOutOfRange(MAX_EXPIRES_SECS + 1),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            presign(&request, &creds, SessionTokenPlacement::Signed),
            Err(expected)
        );
    }
}

#[test]
fn region_comes_from_an_iot_endpoint() {
    assert_eq!(
        region_from_iot_endpoint("abc-ats.iot.eu-west-1.amazonaws.com"),
        Some("eu-west-1")
    );
    assert_eq!(
        region_from_iot_endpoint("abc-ats.iot.cn-north-1.amazonaws.com.cn"),
        Some("cn-north-1")
    );
    assert_eq!(region_from_iot_endpoint("localhost"), None);
    assert_eq!(region_from_iot_endpoint("iot.example.com"), None);
}
