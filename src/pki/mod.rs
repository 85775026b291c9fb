//! Certificates mqload makes for a fleet: one key and certificate per device, under one CA.

pub mod devices;
pub mod rsa;

pub use devices::{
    DeviceCa, DeviceCertificate, DevicePkiError, KeyKind, write_devices, write_devices_of,
};
