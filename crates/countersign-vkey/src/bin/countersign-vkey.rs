//! `countersign-vkey`: the virtual USB security key, run inside the test VM (scripts/vm.sh).
//!
//! - `selftest`: plugs the key in through `/dev/uhid`, then talks to it through the
//!   `/dev/hidraw*` node the kernel made, as a host's FIDO library would: CTAPHID INIT on the
//!   broadcast channel, a PING long enough to need continuation packets, CTAP2 getInfo.
//! - `usb-roundtrip`: plugs the key in, then the approver's own `UsbSigner` (the
//!   `authenticator` crate over hidraw, as with a physical key) makes a credential and signs
//!   with it; both are checked with the server's verifiers.
//! - `usb-no-touch`: the key is never touched: the signer gives up at its timeout.
//! - `usb-cancel`: the person cancels while the key waits: the key gets CTAPHID_CANCEL.
//! - `usb-two-keys`: two keys, only the second touched: the credential is made there.
//! - `usb-removed`: the key is pulled out while it waits: the signer says the key was
//!   removed, nothing is made.
#![forbid(unsafe_code)]

use countersign_approver::signer::{KeyEvent, KeyPrompt, Signer, SignerError, UsbSigner};
use countersign_core::webauthn::{
    verify_assertion, verify_registration, AssertionInput, AssertionPolicy, CeremonyType,
    ClientData, RegisteredCredential, RegistrationPolicy,
};
use countersign_vkey::ctaphid::{self, Assembled, Assembler, Cid, Command};
use countersign_vkey::device::{self, PluggedKey, Touch};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
enum ScenarioError {
    #[error("uhid: {0}")]
    Uhid(#[from] countersign_vkey::uhid::UhidError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no /dev/hidraw* node appeared for the virtual key within 5 s")]
    NoHidraw,
    #[error("{0}")]
    Unexpected(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ScenarioError {
    move |source| ScenarioError::Io { what, source }
}

fn unexpected(what: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::Unexpected(what.to_string())
}

const RP: &str = "approvals.example.com";
const ORIGIN: &str = "https://approvals.example.com";

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    let outcome = match name.as_str() {
        "selftest" => selftest(),
        "usb-roundtrip" => usb_roundtrip(),
        "usb-no-touch" => usb_no_touch(),
        "usb-cancel" => usb_cancel(),
        "usb-two-keys" => usb_two_keys(),
        "usb-removed" => usb_removed(),
        _ => {
            eprintln!(
                "usage: countersign-vkey selftest|usb-roundtrip|usb-no-touch|usb-cancel|usb-two-keys|usb-removed"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => {
            println!("countersign-vkey {name}: ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("countersign-vkey {name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Plugs a virtual key in and waits until the guest has `count` hidraw nodes; returns the key
/// and the newest node.
fn plug(touch: Touch, count: usize) -> Result<(PluggedKey, PathBuf), ScenarioError> {
    let uhid = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/uhid")
        .map_err(io("opening /dev/uhid"))?;
    let key = device::plug(uhid, touch)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("hidraw"))
            })
            .collect();
        nodes.sort();
        if nodes.len() >= count {
            let path = nodes.pop().ok_or(ScenarioError::NoHidraw)?;
            println!("a virtual key is {}", path.display());
            return Ok((key, path));
        }
        if Instant::now() > deadline {
            return Err(ScenarioError::NoHidraw);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 10 s) until the key is waiting for its touch.
fn until_waiting(key: &PluggedKey) -> Result<(), ScenarioError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while key.stats.keepalives.load(Ordering::SeqCst) == 0 {
        if Instant::now() > deadline {
            return Err(unexpected("the key never started waiting for a touch"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Writes one message to hidraw and reads the whole answer back (keep-alives skipped), through
/// the same reassembler the key uses.
fn exchange(
    hidraw: &mut File,
    cid: Cid,
    command: Command,
    payload: &[u8],
) -> Result<(u8, Vec<u8>), ScenarioError> {
    for report in ctaphid::fragment(cid, command as u8, payload).map_err(unexpected)? {
        // hidraw: the report number first (0: the key has no numbered reports).
        let mut out = vec![0u8];
        out.extend_from_slice(&report);
        hidraw.write_all(&out).map_err(io("writing to hidraw"))?;
    }
    let mut answer = Assembler::default();
    loop {
        let mut report = [0u8; ctaphid::REPORT_LEN];
        hidraw
            .read_exact(&mut report)
            .map_err(io("reading hidraw"))?;
        match answer.push(&report, Instant::now()) {
            Assembled::Message(m) if m.command == Command::Keepalive as u8 => {}
            Assembled::Message(m) if m.cid != cid => {
                return Err(unexpected(format!("an answer on another channel: {m:?}")))
            }
            Assembled::Message(m) => return Ok((m.command, m.payload)),
            Assembled::Incomplete | Assembled::Ignored => {}
            Assembled::Error(_, code) => {
                return Err(unexpected(format!("the key's answer broke off: {code:?}")))
            }
        }
    }
}

fn selftest() -> Result<(), ScenarioError> {
    let (_key, path) = plug(Touch::Now, 1)?;
    let mut hidraw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io("opening the hidraw node"))?;
    let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
    let (command, answer) = exchange(&mut hidraw, Cid::BROADCAST, Command::Init, &nonce)?;
    if command != Command::Init as u8 || answer.len() != 17 || answer[..8] != nonce {
        return Err(unexpected(format!(
            "INIT answered {command:#x} {answer:02x?}"
        )));
    }
    let cid = Cid(u32::from_be_bytes([
        answer[8], answer[9], answer[10], answer[11],
    ]));
    println!("INIT gave channel {:#010x}", cid.0);
    let ping: Vec<u8> = (0..300u16).map(|i| (i % 256) as u8).collect();
    let (command, echo) = exchange(&mut hidraw, cid, Command::Ping, &ping)?;
    if command != Command::Ping as u8 || echo != ping {
        return Err(unexpected(format!(
            "PING answered {command:#x}, {} bytes",
            echo.len()
        )));
    }
    println!("PING of 300 bytes came back whole");
    let (command, info) = exchange(&mut hidraw, cid, Command::Cbor, &[0x04])?;
    if command != Command::Cbor as u8 || info.first() != Some(&0) {
        return Err(unexpected(format!(
            "getInfo answered {command:#x} {info:02x?}"
        )));
    }
    println!("getInfo answered {} bytes", info.len());
    Ok(())
}

/// Says what the key waits for; there is no PIN to give.
struct Console;

impl KeyPrompt for Console {
    fn show(&self, event: &KeyEvent) {
        println!("key event: {event:?}");
    }
    fn pin(&self, _event: &KeyEvent) -> Option<zeroize::Zeroizing<String>> {
        None
    }
}

fn client_data(ceremony: CeremonyType, challenge: &[u8]) -> Vec<u8> {
    ClientData {
        ceremony,
        challenge: challenge.to_vec(),
        origin: ORIGIN.into(),
    }
    .to_json()
    .into_bytes()
}

/// Makes a credential through the signer and checks it as the server does.
fn register(signer: &UsbSigner) -> Result<RegisteredCredential, ScenarioError> {
    let challenge = [7u8; 32];
    let create = client_data(CeremonyType::Create, &challenge);
    let registration = signer
        .make_credential(RP, &create, false)
        .map_err(unexpected)?;
    let policy = RegistrationPolicy {
        rp_id: RP,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: false,
    };
    let registered = verify_registration(&policy, &registration.attestation_object, &create)
        .map_err(|e| unexpected(format!("the registration does not verify: {e}")))?;
    if registered.credential_id != registration.credential_id {
        return Err(unexpected("the signer reported another credential id"));
    }
    Ok(registered)
}

fn usb_roundtrip() -> Result<(), ScenarioError> {
    let (key, _) = plug(Touch::After(Duration::from_millis(300)), 1)?;
    let signer = UsbSigner::new(Duration::from_secs(20), Arc::new(Console));
    let registered = register(&signer)?;
    println!(
        "registered credential {} bytes, {:?}",
        registered.credential_id.len(),
        registered.public_key.algorithm()
    );

    let mut stored = registered.sign_count;
    for round in 1..=2u8 {
        let challenge = [round; 32];
        let get = client_data(CeremonyType::Get, &challenge);
        let assertion = signer
            .get_assertion(RP, &get, &registered.credential_id, false)
            .map_err(unexpected)?;
        let policy = AssertionPolicy {
            rp_id: RP,
            origin: ORIGIN,
            challenge: &challenge,
            require_user_verification: false,
        };
        let input = AssertionInput {
            authenticator_data: &assertion.authenticator_data,
            client_data_json: &get,
            signature: &assertion.signature,
        };
        let verified = verify_assertion(&registered.public_key, stored, &policy, &input)
            .map_err(|e| unexpected(format!("assertion {round} does not verify: {e}")))?;
        println!(
            "assertion {round} verifies, counter {}",
            verified.sign_count
        );
        stored = verified.sign_count;
    }
    if key.stats.keepalives.load(Ordering::SeqCst) == 0 {
        return Err(unexpected("the key never said it was waiting for a touch"));
    }
    Ok(())
}

fn usb_no_touch() -> Result<(), ScenarioError> {
    let (_key, _) = plug(Touch::Never, 1)?;
    let signer = UsbSigner::new(Duration::from_secs(3), Arc::new(Console));
    let create = client_data(CeremonyType::Create, &[7; 32]);
    let started = Instant::now();
    match signer.make_credential(RP, &create, false) {
        Err(SignerError::Cancelled) => {
            println!("no touch: cancelled after {:?}", started.elapsed());
            Ok(())
        }
        other => Err(unexpected(format!(
            "without a touch the signer gave {other:?}"
        ))),
    }
}

/// The person presses Cancel while the key waits: the signer cancels the key's request.
fn usb_cancel() -> Result<(), ScenarioError> {
    let (key, _) = plug(Touch::Never, 1)?;
    let signer = Arc::new(UsbSigner::new(Duration::from_secs(60), Arc::new(Console)));
    let create = client_data(CeremonyType::Create, &[7; 32]);
    let outcome = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| signer.make_credential(RP, &create, false));
        until_waiting(&key)?;
        signer.cancel();
        waiting
            .join()
            .map_err(|_| unexpected("the signer's thread panicked"))
    })?;
    let stats = &key.stats;
    println!("after cancel: {outcome:?}, {stats:?}");
    match outcome {
        Err(SignerError::Cancelled)
            if stats.cancels.load(Ordering::SeqCst) >= 1
                && stats.credentials_made.load(Ordering::SeqCst) == 0 =>
        {
            Ok(())
        }
        other => Err(unexpected(format!("cancel gave {other:?} with {stats:?}"))),
    }
}

/// Two keys plugged in; the person touches only the second: the credential is made there.
fn usb_two_keys() -> Result<(), ScenarioError> {
    let (first, _) = plug(Touch::Never, 1)?;
    let (second, _) = plug(Touch::After(Duration::from_millis(500)), 2)?;
    let signer = UsbSigner::new(Duration::from_secs(20), Arc::new(Console));
    register(&signer)?;
    let made = |key: &PluggedKey| key.stats.credentials_made.load(Ordering::SeqCst);
    println!("first key {:?}, second key {:?}", first.stats, second.stats);
    if made(&first) != 0 || made(&second) != 1 {
        return Err(unexpected(
            "the credential was not made on the touched key alone",
        ));
    }
    Ok(())
}

/// The key is pulled out while it waits for a touch.
fn usb_removed() -> Result<(), ScenarioError> {
    let (key, _) = plug(Touch::Never, 1)?;
    let signer = UsbSigner::new(Duration::from_secs(20), Arc::new(Console));
    let create = client_data(CeremonyType::Create, &[7; 32]);
    let started = Instant::now();
    let outcome = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| signer.make_credential(RP, &create, false));
        until_waiting(&key)?;
        key.unplug()?;
        waiting
            .join()
            .map_err(|_| unexpected("the signer's thread panicked"))
    })?;
    println!("key removed: {outcome:?} after {:?}", started.elapsed());
    match outcome {
        Err(SignerError::KeyRemoved) if key.stats.credentials_made.load(Ordering::SeqCst) == 0 => {
            Ok(())
        }
        other => Err(unexpected(format!("a key pulled out gave {other:?}"))),
    }
}
