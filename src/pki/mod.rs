//! Certificates mqload makes for a fleet: one key and certificate per device, under one CA.

pub mod devices;

pub use devices::{DeviceCa, DeviceCertificate, DevicePkiError, write_devices};
