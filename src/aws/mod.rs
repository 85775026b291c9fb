//! AWS IoT access, sans-IO: SigV4 presigned WebSocket URLs and the credentials that sign
//! them, and custom authorizers' fields.

pub mod credentials;
pub mod custom_authorizer;
pub mod sigv4;

pub use credentials::{AwsIdentity, CredentialSource, Credentials, CredentialsError, ProfileFile};
pub use custom_authorizer::{CustomAuthorizer, CustomAuthorizerError};
pub use sigv4::{AmzDate, PresignRequest, Presigned, SessionTokenPlacement, SigningError};
