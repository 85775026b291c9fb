//! `mqload pki devices N`: a key and certificate per device, signed by a given CA (or one
//! made here), for `--cert 'DIR/device-{i}.pem.crt' --key 'DIR/device-{i}.pem.key'`.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::pki::devices::{
    self, CA_CERT_FILE, CA_KEY_FILE, DeviceCa, DevicePkiError, KeyKind, device_file_names,
};

/// Options of `mqload pki`.
#[derive(Debug, Clone, Args)]
pub struct PkiArgs {
    /// What to make.
    #[command(subcommand)]
    pub command: PkiCommand,
}

/// `mqload pki` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum PkiCommand {
    /// Make N device keys and certificates (CN device-0 .. device-<N-1>) signed by a CA.
    Devices(DevicesArgs),
}

/// Options of `mqload pki devices`.
#[derive(Debug, Clone, Args)]
pub struct DevicesArgs {
    /// How many devices.
    pub count: u64,
    /// PEM certificate of the CA that signs them; without it a CA is made and written too.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The CA's private key (unencrypted PKCS#8 PEM).
    #[arg(long)]
    pub ca_key: Option<PathBuf>,
    /// Directory the files go to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// RSA-2048 keys (made by the openssl command) instead of ECDSA P-256.
    #[arg(long)]
    pub rsa: bool,
}

/// Why `mqload pki devices` stopped; each names the fix.
#[derive(Debug)]
pub enum PkiCommandError {
    /// Only one of `--ca` and `--ca-key` was given.
    CaWithoutKey,
    /// A CA file could not be read.
    Unreadable {
        /// Which option named it.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// Making or writing the devices failed.
    Pki(DevicePkiError),
}

impl fmt::Display for PkiCommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiCommandError::CaWithoutKey => f.write_str(
                "--ca and --ca-key go together: give both (the CA and its key), or neither to make a new CA",
            ),
            PkiCommandError::Unreadable {
                option,
                path,
                reason,
            } => write!(
                f,
                "cannot read the --{option} file {}: {reason}",
                path.display()
            ),
            PkiCommandError::Pki(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PkiCommandError {}

/// Runs `mqload pki`; returns the exit code (2 for a mistake, with one line saying which).
pub fn run(args: &PkiArgs) -> u8 {
    let PkiCommand::Devices(devices) = &args.command;
    match make_devices(devices) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            0
        }
        Err(e) => {
            eprintln!("mqload pki: error: {e}");
            crate::exit_code::EXIT_CONFIG
        }
    }
}

fn read(option: &'static str, path: &Path) -> Result<Vec<u8>, PkiCommandError> {
    std::fs::read(path).map_err(|e| PkiCommandError::Unreadable {
        option,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Makes and writes the devices; returns the lines saying what was written.
pub fn make_devices(args: &DevicesArgs) -> Result<Vec<String>, PkiCommandError> {
    if args.count == 0 {
        return Err(PkiCommandError::Pki(DevicePkiError::NoDevices));
    }
    let ca = match (&args.ca, &args.ca_key) {
        (Some(cert), Some(key)) => DeviceCa::from_pem(&read("ca", cert)?, &read("ca-key", key)?)
            .map_err(PkiCommandError::Pki)?,
        (None, None) => DeviceCa::generate("mqload device CA").map_err(PkiCommandError::Pki)?,
        _ => return Err(PkiCommandError::CaWithoutKey),
    };
    let kind = if args.rsa {
        KeyKind::Rsa2048
    } else {
        KeyKind::EcdsaP256
    };
    devices::write_devices_of(&args.out, args.count, &ca, kind).map_err(PkiCommandError::Pki)?;
    let dir = &args.out;
    let last = args.count - 1;
    let (first_cert, _) = device_file_names(0);
    let (last_cert, _) = device_file_names(last);
    let mut lines = vec![format!(
        "wrote {} devices ({}, CN device-0 .. device-{last}): {} .. {}, each with its .pem.key",
        args.count,
        kind.name(),
        dir.join(first_cert).display(),
        dir.join(last_cert).display(),
    )];
    match &args.ca {
        Some(ca) => lines.push(format!("signed by the CA in {}", ca.display())),
        None => lines.push(format!(
            "made a CA: {} and {} (give the certificate to the broker as its client CA, or register it with AWS IoT)",
            dir.join(CA_CERT_FILE).display(),
            dir.join(CA_KEY_FILE).display(),
        )),
    }
    lines.push(format!(
        "use: --cert '{0}/device-{{i}}.pem.crt' --key '{0}/device-{{i}}.pem.key' --client-id 'device-{{i}}'",
        dir.display()
    ));
    Ok(lines)
}
