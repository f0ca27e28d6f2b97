//! `countersign-vkey`: the virtual USB security key, run inside the test VM.
//!
//! `countersign-vkey selftest` plugs the key in through `/dev/uhid`, then talks to it through
//! the `/dev/hidraw*` node the kernel made, as a host's FIDO library would: CTAPHID INIT on the
//! broadcast channel, then a PING long enough to need continuation packets. It checks the
//! uhid events and the CTAPHID transport against a real kernel.
#![forbid(unsafe_code)]

use countersign_vkey::ctaphid::{self, Cid, Command, DeviceInfo, Report, Transport};
use countersign_vkey::uhid::{self, Device, Event, Identity};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Why the self-test failed.
#[derive(Debug, thiserror::Error)]
enum SelftestError {
    #[error("uhid: {0}")]
    Uhid(#[from] uhid::UhidError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no /dev/hidraw* node appeared for the virtual key within 5 s")]
    NoHidraw,
    #[error("the key answered {0}")]
    Unexpected(String),
    #[error("the key's thread stopped")]
    KeyStopped,
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SelftestError {
    move |source| SelftestError::Io { what, source }
}

const IDENTITY: Identity<'static> = Identity {
    name: "Countersign virtual key",
    vendor: 0x1209,
    product: 0xc5c5,
    version: 0x0100,
};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("selftest") => match selftest() {
            Ok(()) => {
                println!("countersign-vkey selftest: ok");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("countersign-vkey selftest: {error}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: countersign-vkey selftest");
            ExitCode::from(2)
        }
    }
}

/// Serves CTAPHID on the uhid device until the host closes it or the device fails.
fn serve(mut device: Device<File>) -> Result<(), uhid::UhidError> {
    let mut transport = Transport::new(DeviceInfo {
        version: [0, 1, 0],
        msg: false,
    });
    loop {
        match device.next_event()? {
            Event::Output(bytes) => {
                let Ok(report) = Report::try_from(bytes.as_slice()) else {
                    continue;
                };
                let received = transport.receive(&report, Instant::now());
                for reply in received.replies {
                    device.send(&reply)?;
                }
                // No authenticator yet: every CTAP2 command is "invalid command" (0x01).
                if let Some(ctaphid::Request::Cbor { cid, .. }) = received.request {
                    for reply in transport.response(cid, &[0x01]).unwrap_or_default() {
                        device.send(&reply)?;
                    }
                }
            }
            Event::Close => return Ok(()),
            Event::Start | Event::Stop | Event::Open | Event::Ignored => {}
        }
    }
}

fn find_hidraw() -> Option<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let found = std::fs::read_dir("/dev")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("hidraw"))
            });
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Writes one message to hidraw and reads the whole answer back.
fn exchange(
    hidraw: &mut File,
    cid: Cid,
    command: Command,
    payload: &[u8],
) -> Result<(u8, Vec<u8>), SelftestError> {
    let reports = ctaphid::fragment(cid, command as u8, payload)
        .map_err(|e| SelftestError::Unexpected(e.to_string()))?;
    for report in reports {
        // hidraw: the report number first (0: the key has no numbered reports).
        let mut out = vec![0u8];
        out.extend_from_slice(&report);
        hidraw.write_all(&out).map_err(io("writing to hidraw"))?;
    }
    let mut first = [0u8; ctaphid::REPORT_LEN];
    hidraw
        .read_exact(&mut first)
        .map_err(io("reading hidraw"))?;
    if first[..4] != cid.0.to_be_bytes() {
        return Err(SelftestError::Unexpected(format!(
            "on another channel: {:02x?}",
            &first[..8]
        )));
    }
    let length = usize::from(u16::from_be_bytes([first[5], first[6]]));
    let mut data = first[7..].to_vec();
    while data.len() < length {
        let mut next = [0u8; ctaphid::REPORT_LEN];
        hidraw.read_exact(&mut next).map_err(io("reading hidraw"))?;
        data.extend_from_slice(&next[5..]);
    }
    data.truncate(length);
    Ok((first[4] & 0x7f, data))
}

fn selftest() -> Result<(), SelftestError> {
    let uhid = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/uhid")
        .map_err(io("opening /dev/uhid"))?;
    let device = Device::create(uhid, &IDENTITY, &uhid::FIDO_REPORT_DESCRIPTOR)?;
    let key = std::thread::spawn(move || serve(device));
    let path = find_hidraw().ok_or(SelftestError::NoHidraw)?;
    println!("countersign-vkey selftest: the key is {}", path.display());
    let mut hidraw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io("opening the hidraw node"))?;

    let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
    let (command, answer) = exchange(&mut hidraw, Cid::BROADCAST, Command::Init, &nonce)?;
    if command != Command::Init as u8 || answer.len() != 17 || answer[..8] != nonce {
        return Err(SelftestError::Unexpected(format!(
            "INIT with {command:#x} {answer:02x?}"
        )));
    }
    let cid = Cid(u32::from_be_bytes([
        answer[8], answer[9], answer[10], answer[11],
    ]));
    println!(
        "countersign-vkey selftest: INIT gave channel {:#010x}",
        cid.0
    );

    let ping: Vec<u8> = (0..300u16).map(|i| (i % 256) as u8).collect();
    let (command, echo) = exchange(&mut hidraw, cid, Command::Ping, &ping)?;
    if command != Command::Ping as u8 || echo != ping {
        return Err(SelftestError::Unexpected(format!(
            "PING with {command:#x}, {} bytes",
            echo.len()
        )));
    }
    println!("countersign-vkey selftest: PING of 300 bytes came back whole");

    let (command, status) = exchange(&mut hidraw, cid, Command::Cbor, &[0x04])?;
    if command != Command::Cbor as u8 || status != [0x01] {
        return Err(SelftestError::Unexpected(format!(
            "CBOR with {command:#x} {status:02x?}"
        )));
    }
    drop(hidraw);
    match key.join() {
        Ok(served) => served?,
        Err(_) => return Err(SelftestError::KeyStopped),
    }
    Ok(())
}
