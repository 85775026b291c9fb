//! Credential lookup on made-up environments and files: precedence, profiles, regions,
//! named mistakes, and secrets hidden from debug output.

use super::*;
use std::collections::HashMap;

const CREDENTIALS: &str = "\
# a comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret/default+key

[fleet]
AWS_Access_Key_Id=AKIDFLEET
aws_secret_access_key =  secret-fleet  
aws_session_token = token=fleet
s3 =
  max_concurrent_requests = 4
; another comment

[broken]
aws_access_key_id = AKIDONLY
";

const CONFIG: &str = "\
[default]
region = eu-west-1
[profile fleet]
region = ap-south-1
[sso-session corp]
region = us-west-2
[fleet]
region = not-a-profile-in-config
";

fn world(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Result<AwsIdentity, CredentialsError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(k, v)| (PathBuf::from(k), (*v).to_owned()))
        .collect();
    resolve(
        |name| vars.get(name).cloned(),
        |path| Ok(files.get(path).cloned()),
    )
}

const HOME_FILES: [(&str, &str); 2] = [
    ("/home/d/.aws/credentials", CREDENTIALS),
    ("/home/d/.aws/config", CONFIG),
];

#[test]
fn environment_wins_over_the_file() {
    let identity = world(
        &[
            ("HOME", "/home/d"),
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_REGION", "us-east-2"),
            ("AWS_DEFAULT_REGION", "us-west-1"),
        ],
        &HOME_FILES,
    )
    .unwrap();
    assert_eq!(identity.source, CredentialSource::Environment);
    assert_eq!(identity.credentials.access_key_id, "AKIDENV");
    assert_eq!(identity.credentials.secret_access_key, "envsecret");
    assert_eq!(
        identity.credentials.session_token.as_deref(),
        Some("envtoken")
    );
    assert_eq!(identity.region.as_deref(), Some("us-east-2"));
}

#[test]
fn default_region_variable_is_the_fallback() {
    let identity = world(
        &[
            ("HOME", "/home/d"),
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_DEFAULT_REGION", "us-west-1"),
        ],
        &HOME_FILES,
    )
    .unwrap();
    assert_eq!(identity.region.as_deref(), Some("us-west-1"));
    assert_eq!(identity.credentials.session_token, None);
}

#[test]
fn default_profile_from_home() {
    let identity = world(&[("HOME", "/home/d")], &HOME_FILES).unwrap();
    assert_eq!(identity.credentials.access_key_id, "AKIDDEFAULT");
    assert_eq!(identity.credentials.secret_access_key, "secret/default+key");
    assert_eq!(identity.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        identity.source,
        CredentialSource::Profile {
            profile: "default".into(),
            file: "/home/d/.aws/credentials".into()
        }
    );
}

#[test]
fn named_profile_keys_are_case_insensitive_and_trimmed() {
    let identity = world(
        &[("HOME", "/home/d"), ("AWS_PROFILE", "fleet")],
        &HOME_FILES,
    )
    .unwrap();
    assert_eq!(identity.credentials.access_key_id, "AKIDFLEET");
    assert_eq!(identity.credentials.secret_access_key, "secret-fleet");
    assert_eq!(
        identity.credentials.session_token.as_deref(),
        Some("token=fleet")
    );
    assert_eq!(identity.region.as_deref(), Some("ap-south-1"));
}

#[test]
fn file_locations_can_be_overridden() {
    let identity = world(
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", "/etc/creds"),
            ("AWS_CONFIG_FILE", "/etc/conf"),
        ],
        &[("/etc/creds", CREDENTIALS), ("/etc/conf", CONFIG)],
    )
    .unwrap();
    assert_eq!(identity.credentials.access_key_id, "AKIDDEFAULT");
    assert_eq!(identity.region.as_deref(), Some("eu-west-1"));
}

#[test]
fn mistakes_are_named() {
    let home = ("HOME", "/home/d");
    assert_eq!(
        world(&[home, ("AWS_ACCESS_KEY_ID", "A")], &HOME_FILES),
        Err(CredentialsError::HalfSetEnvironment {
            missing: "AWS_SECRET_ACCESS_KEY"
        })
    );
    assert_eq!(
        world(&[home, ("AWS_SECRET_ACCESS_KEY", "S")], &HOME_FILES),
        Err(CredentialsError::HalfSetEnvironment {
            missing: "AWS_ACCESS_KEY_ID"
        })
    );
    assert_eq!(
        world(&[home, ("AWS_PROFILE", "nope")], &HOME_FILES),
        Err(CredentialsError::NoSuchProfile {
            profile: "nope".into(),
            file: "/home/d/.aws/credentials".into()
        })
    );
    assert_eq!(
        world(&[home, ("AWS_PROFILE", "broken")], &HOME_FILES),
        Err(CredentialsError::IncompleteProfile {
            profile: "broken".into(),
            file: "/home/d/.aws/credentials".into(),
            missing: "aws_secret_access_key"
        })
    );
    assert_eq!(
        world(&[home], &[]),
        Err(CredentialsError::NotFound {
            file: "/home/d/.aws/credentials".into()
        })
    );
    assert_eq!(world(&[], &[]), Err(CredentialsError::NoHome));
    assert_eq!(
        world(
            &[home],
            &[("/home/d/.aws/credentials", "[default]\nno equals here\n")]
        ),
        Err(CredentialsError::Syntax {
            file: "/home/d/.aws/credentials".into(),
            line: 2
        })
    );
}

#[test]
fn config_sections_need_the_profile_prefix() {
    let config = ProfileFile::parse(CONFIG, ProfileFileKind::Config).unwrap();
    assert_eq!(config.get("fleet", "region"), Some("ap-south-1"));
    assert!(!config.has_profile("sso-session corp"));
    assert!(!config.has_profile("corp"));
    assert_eq!(
        ProfileFile::parse("[open\n", ProfileFileKind::Config),
        Err(1)
    );
    assert_eq!(ProfileFile::parse("= v\n", ProfileFileKind::Config), Err(1));
}

#[test]
fn debug_output_hides_secrets() {
    let creds = Credentials {
        access_key_id: "AKID".into(),
        secret_access_key: "very-secret".into(),
        session_token: Some("very-token".into()),
    };
    let shown = format!("{creds:?}");
    assert!(shown.contains("AKID"));
    assert!(!shown.contains("very-secret") && !shown.contains("very-token"));
}
