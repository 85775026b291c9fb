//! AWS IoT access, sans-IO: SigV4 presigned WebSocket URLs and the credentials that sign them.

pub mod credentials;
pub mod sigv4;

pub use credentials::{AwsIdentity, CredentialSource, Credentials, CredentialsError, ProfileFile};
pub use sigv4::{AmzDate, PresignRequest, Presigned, SessionTokenPlacement, SigningError};
