//! AWS credentials and region as the AWS CLI and SDKs find them: the standard environment
//! variables first, then a profile of the shared credentials and config files. The rules
//! are pure functions over an environment lookup and a file reader; [`load`] is the thin
//! shell that hands them the real process environment and file system.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An access key, its secret, and a session token for temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID` / `aws_access_key_id`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY` / `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` / `aws_session_token`, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where the credentials were found (for a startup line such as "signing as profile x").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile of the shared credentials file.
    Profile {
        /// The profile's name.
        profile: String,
        /// The file it came from.
        file: PathBuf,
    },
}

/// Credentials and, when one was set, the region to sign for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsIdentity {
    /// The keys.
    pub credentials: Credentials,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the profile's `region` in the config file.
    pub region: Option<String>,
    /// Where the keys came from.
    pub source: CredentialSource,
}

/// Why no credentials could be loaded; each names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsError {
    /// One of `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` is set without the other.
    HalfSetEnvironment {
        /// The variable that is missing.
        missing: &'static str,
    },
    /// Neither the environment nor a credentials file holds credentials.
    NotFound {
        /// The credentials file that was looked for.
        file: PathBuf,
    },
    /// The credentials file has no such profile.
    NoSuchProfile {
        /// The profile asked for.
        profile: String,
        /// The file looked in.
        file: PathBuf,
    },
    /// The profile lacks a key.
    IncompleteProfile {
        /// The profile.
        profile: String,
        /// The file.
        file: PathBuf,
        /// The key it lacks.
        missing: &'static str,
    },
    /// A line of a profile file is neither a `[section]`, a `key = value`, a comment nor blank.
    Syntax {
        /// The file.
        file: PathBuf,
        /// The line, counting from 1.
        line: usize,
    },
    /// A profile file exists but could not be read.
    Read {
        /// The file.
        file: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// `HOME` is not set, so `~/.aws` cannot be found.
    NoHome,
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::HalfSetEnvironment { missing } => write!(
                f,
                "AWS credentials in the environment are incomplete: set {missing} as well"
            ),
            CredentialsError::NotFound { file } => write!(
                f,
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add a \
                 profile to {} (or point AWS_SHARED_CREDENTIALS_FILE at one)",
                file.display()
            ),
            CredentialsError::NoSuchProfile { profile, file } => write!(
                f,
                "AWS profile {profile:?} is not in {}: fix AWS_PROFILE or add a [{profile}] section",
                file.display()
            ),
            CredentialsError::IncompleteProfile {
                profile,
                file,
                missing,
            } => write!(
                f,
                "AWS profile {profile:?} in {} has no {missing}: add it",
                file.display()
            ),
            CredentialsError::Syntax { file, line } => write!(
                f,
                "{}:{line}: not a [section], key = value or comment line: fix or remove it",
                file.display()
            ),
            CredentialsError::Read { file, reason } => {
                write!(f, "cannot read {}: {reason}", file.display())
            }
            CredentialsError::NoHome => f.write_str(
                "HOME is not set, so ~/.aws/credentials cannot be found: set HOME or \
                 AWS_SHARED_CREDENTIALS_FILE",
            ),
        }
    }
}

impl std::error::Error for CredentialsError {}

/// Which of the two AWS profile files a text is: they name their sections differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileFileKind {
    /// `~/.aws/credentials`: sections are `[name]`.
    Credentials,
    /// `~/.aws/config`: sections are `[default]` and `[profile name]`; others are skipped.
    Config,
}

/// A parsed AWS profile file: profiles in file order, each with its `key = value` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFile {
    profiles: Vec<(String, Vec<(String, String)>)>,
}

impl ProfileFile {
    /// Parses `text`. On a line that is not a section, `key = value`, comment (`#`, `;`),
    /// blank, or an indented continuation of a nested setting, returns that line's number.
    pub fn parse(text: &str, kind: ProfileFileKind) -> Result<ProfileFile, usize> {
        let mut file = ProfileFile::default();
        // None while inside a section this kind ignores (or before any section).
        let mut current: Option<usize> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                // A nested setting's continuation (`s3 =` then `  max_concurrent_requests = 4`).
                continue;
            }
            if let Some(inner) = line.strip_prefix('[') {
                let name = inner.strip_suffix(']').ok_or(index + 1)?.trim();
                current = profile_name(name, kind).map(|name| file.section(name));
                continue;
            }
            let (key, value) = line.split_once('=').ok_or(index + 1)?;
            let key = key.trim();
            if key.is_empty() {
                return Err(index + 1);
            }
            if let Some(section) = current {
                let pairs = &mut file.profiles[section].1;
                let value = value.trim().to_owned();
                match pairs.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                    Some(pair) => pair.1 = value,
                    None => pairs.push((key.to_ascii_lowercase(), value)),
                }
            }
        }
        Ok(file)
    }

    /// The value of `key` (case-insensitive) in `profile`, when both exist and it is not empty.
    pub fn get(&self, profile: &str, key: &str) -> Option<&str> {
        self.profiles
            .iter()
            .find(|(name, _)| name == profile)?
            .1
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether `profile` has a section.
    pub fn has_profile(&self, profile: &str) -> bool {
        self.profiles.iter().any(|(name, _)| name == profile)
    }

    /// The index of section `name`, made if new (a repeated section merges into the first).
    fn section(&mut self, name: &str) -> usize {
        match self.profiles.iter().position(|(n, _)| n == name) {
            Some(index) => index,
            None => {
                self.profiles.push((name.to_owned(), Vec::new()));
                self.profiles.len() - 1
            }
        }
    }
}

fn profile_name(section: &str, kind: ProfileFileKind) -> Option<&str> {
    match kind {
        ProfileFileKind::Credentials => Some(section),
        ProfileFileKind::Config if section == "default" => Some(section),
        ProfileFileKind::Config => section
            .strip_prefix("profile")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map(str::trim),
    }
}

/// Finds credentials and region the way the AWS CLI does, with `env` as the environment
/// and `read` as the file system (`Ok(None)` for a file that does not exist).
pub fn resolve(
    env: impl Fn(&str) -> Option<String>,
    read: impl Fn(&Path) -> io::Result<Option<String>>,
) -> Result<AwsIdentity, CredentialsError> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let home = env("HOME");
    let aws_file = |override_var: &str, name: &str| -> Result<PathBuf, CredentialsError> {
        match (env(override_var), &home) {
            (Some(path), _) => Ok(PathBuf::from(path)),
            (None, Some(home)) => Ok(Path::new(home).join(".aws").join(name)),
            (None, None) => Err(CredentialsError::NoHome),
        }
    };
    let load = |file: &Path, kind| -> Result<Option<ProfileFile>, CredentialsError> {
        let text = read(file).map_err(|e| CredentialsError::Read {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        text.map(|text| {
            ProfileFile::parse(&text, kind).map_err(|line| CredentialsError::Syntax {
                file: file.to_owned(),
                line,
            })
        })
        .transpose()
    };

    let from_env = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: env("AWS_SESSION_TOKEN"),
        }),
        (Some(_), None) => {
            return Err(CredentialsError::HalfSetEnvironment {
                missing: "AWS_SECRET_ACCESS_KEY",
            });
        }
        (None, Some(_)) => {
            return Err(CredentialsError::HalfSetEnvironment {
                missing: "AWS_ACCESS_KEY_ID",
            });
        }
        (None, None) => None,
    };
    let (credentials, source) = match from_env {
        Some(credentials) => (credentials, CredentialSource::Environment),
        None => {
            let file = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")?;
            let parsed = load(&file, ProfileFileKind::Credentials)?
                .ok_or_else(|| CredentialsError::NotFound { file: file.clone() })?;
            let credentials = profile_credentials(&parsed, &profile, &file)?;
            (
                credentials,
                CredentialSource::Profile {
                    profile: profile.clone(),
                    file,
                },
            )
        }
    };

    let region = match env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        Some(region) => Some(region),
        // The config file only matters when the environment names no region; a missing
        // HOME or file then just means "no region".
        None => match aws_file("AWS_CONFIG_FILE", "config") {
            Ok(file) => load(&file, ProfileFileKind::Config)?
                .and_then(|config| config.get(&profile, "region").map(str::to_owned)),
            Err(_) => None,
        },
    };
    Ok(AwsIdentity {
        credentials,
        region,
        source,
    })
}

fn profile_credentials(
    file_text: &ProfileFile,
    profile: &str,
    file: &Path,
) -> Result<Credentials, CredentialsError> {
    if !file_text.has_profile(profile) {
        return Err(CredentialsError::NoSuchProfile {
            profile: profile.to_owned(),
            file: file.to_owned(),
        });
    }
    let required = |key: &'static str| {
        file_text
            .get(profile, key)
            .map(str::to_owned)
            .ok_or_else(|| CredentialsError::IncompleteProfile {
                profile: profile.to_owned(),
                file: file.to_owned(),
                missing: key,
            })
    };
    Ok(Credentials {
        access_key_id: required("aws_access_key_id")?,
        secret_access_key: required("aws_secret_access_key")?,
        session_token: file_text
            .get(profile, "aws_session_token")
            .map(str::to_owned),
    })
}

/// [`resolve`] over this process's environment and file system.
pub fn load() -> Result<AwsIdentity, CredentialsError> {
    load_profile(None)
}

/// [`load`], with `profile` (when given) in place of `AWS_PROFILE` (a `--aws-profile` flag).
pub fn load_profile(profile: Option<&str>) -> Result<AwsIdentity, CredentialsError> {
    resolve(
        |name| match (name, profile) {
            ("AWS_PROFILE", Some(profile)) => Some(profile.to_owned()),
            _ => std::env::var(name).ok(),
        },
        |path| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        },
    )
}

#[cfg(test)]
mod tests;
