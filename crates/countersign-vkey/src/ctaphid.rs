//! CTAPHID, the framing a FIDO security key speaks over USB HID (CTAP 2.1 §11.2): messages cut
//! into 64-byte reports, each report naming its channel; one initialisation packet (command and
//! length) and up to 128 continuation packets (sequence numbers). This module is the device's
//! side: it parses reports, reassembles requests one transaction at a time, allocates
//! channels, answers the transport's own commands (INIT, PING, WINK) and hands CBOR and MSG
//! requests, and CANCELs, to the authenticator above it.

use std::time::{Duration, Instant};

/// The size of every HID report (the key's report descriptor says 64 bytes each way).
pub const REPORT_LEN: usize = 64;
/// One report.
pub type Report = [u8; REPORT_LEN];
/// Payload bytes in an initialisation packet (after CID, CMD, BCNTH, BCNTL).
const INIT_DATA: usize = REPORT_LEN - 7;
/// Payload bytes in a continuation packet (after CID, SEQ).
const CONT_DATA: usize = REPORT_LEN - 5;
/// The longest message: one initialisation packet and sequence numbers 0..=127 (§11.2.4).
pub const MAX_MESSAGE: usize = INIT_DATA + 128 * CONT_DATA;
/// How long a device waits for the next packet of a message before it gives up (§11.2.5.3
/// leaves it to the device; 500 ms as common keys do).
pub const PACKET_TIMEOUT: Duration = Duration::from_millis(500);

/// A channel identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cid(pub u32);

impl Cid {
    /// The broadcast channel, for INIT only (§11.2.3).
    pub const BROADCAST: Cid = Cid(0xffff_ffff);
    /// Reserved; never valid (§11.2.3).
    pub const RESERVED: Cid = Cid(0);
}

/// The transport's commands (§11.2.9), as sent without the initialisation bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::FromRepr)]
#[repr(u8)]
pub enum Command {
    Ping = 0x01,
    Msg = 0x03,
    Lock = 0x04,
    Init = 0x06,
    Wink = 0x08,
    Cbor = 0x10,
    Cancel = 0x11,
    Keepalive = 0x3b,
    Error = 0x3f,
}

/// CTAPHID_ERROR codes (§11.2.9.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    InvalidCommand = 0x01,
    InvalidParameter = 0x02,
    InvalidLength = 0x03,
    InvalidSequence = 0x04,
    MessageTimeout = 0x05,
    ChannelBusy = 0x06,
    LockRequired = 0x0a,
    InvalidChannel = 0x0b,
    Other = 0x7f,
}

/// CTAPHID_KEEPALIVE status (§11.2.9.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeepaliveStatus {
    Processing = 1,
    UserPresenceNeeded = 2,
}

/// One report, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Packet<'a> {
    Init {
        cid: Cid,
        /// The command byte without the initialisation bit.
        command: u8,
        length: usize,
        data: &'a [u8],
    },
    Continuation {
        cid: Cid,
        sequence: u8,
        data: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    fn parse(report: &'a Report) -> Packet<'a> {
        let cid = Cid(u32::from_be_bytes([
            report[0], report[1], report[2], report[3],
        ]));
        if report[4] & 0x80 != 0 {
            Packet::Init {
                cid,
                command: report[4] & 0x7f,
                length: usize::from(u16::from_be_bytes([report[5], report[6]])),
                data: &report[7..],
            }
        } else {
            Packet::Continuation {
                cid,
                sequence: report[4],
                data: &report[5..],
            }
        }
    }
}

/// A message longer than CTAPHID can carry.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a CTAPHID message holds at most {MAX_MESSAGE} bytes, not {0}")]
pub struct TooLong(pub usize);

/// Cuts a message into reports: an initialisation packet, then continuation packets numbered
/// from 0; the last one padded with zeros.
pub fn fragment(cid: Cid, command: u8, payload: &[u8]) -> Result<Vec<Report>, TooLong> {
    let length = u16::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= MAX_MESSAGE)
        .ok_or(TooLong(payload.len()))?;
    let mut reports = Vec::with_capacity(1 + payload.len().saturating_sub(INIT_DATA) / CONT_DATA);
    let mut first = [0u8; REPORT_LEN];
    first[..4].copy_from_slice(&cid.0.to_be_bytes());
    first[4] = command | 0x80;
    first[5..7].copy_from_slice(&length.to_be_bytes());
    let (head, rest) = payload.split_at(payload.len().min(INIT_DATA));
    first[7..7 + head.len()].copy_from_slice(head);
    reports.push(first);
    for (sequence, chunk) in (0u8..).zip(rest.chunks(CONT_DATA)) {
        let mut report = [0u8; REPORT_LEN];
        report[..4].copy_from_slice(&cid.0.to_be_bytes());
        report[4] = sequence;
        report[5..5 + chunk.len()].copy_from_slice(chunk);
        reports.push(report);
    }
    Ok(reports)
}

/// The reports of a CTAPHID_ERROR answer.
pub fn error_report(cid: Cid, code: ErrorCode) -> Report {
    single(cid, Command::Error, &[code as u8])
}

/// The report of a CTAPHID_KEEPALIVE, sent while a request waits (at most every 100 ms).
pub fn keepalive_report(cid: Cid, status: KeepaliveStatus) -> Report {
    single(cid, Command::Keepalive, &[status as u8])
}

fn single(cid: Cid, command: Command, payload: &[u8]) -> Report {
    let mut report = [0u8; REPORT_LEN];
    report[..4].copy_from_slice(&cid.0.to_be_bytes());
    report[4] = command as u8 | 0x80;
    report[6] = payload.len() as u8; // at most a few bytes: BCNTH stays 0
    report[7..7 + payload.len()].copy_from_slice(payload);
    report
}

/// A whole request, reassembled.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub cid: Cid,
    /// The command byte without the initialisation bit.
    pub command: u8,
    pub payload: Vec<u8>,
}

/// A message being received.
#[derive(Debug)]
struct Partial {
    message: Message,
    length: usize,
    next_sequence: u8,
    last_packet: Instant,
}

/// What a report (or the passing of time) meant to the reassembler.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// A whole message.
    Message(Message),
    /// More packets are needed.
    Incomplete,
    /// Nothing to do (a stray continuation packet, §11.2.4).
    Ignored,
    /// Answer this channel with this error.
    Error(Cid, ErrorCode),
}

/// Reassembles one message at a time, as a key does: another channel's initialisation packet
/// meanwhile is told the channel is busy. A test host reads the key's answers with it too.
#[derive(Debug, Default)]
pub struct Assembler {
    partial: Option<Partial>,
}

impl Assembler {
    /// Reads one report.
    pub fn push(&mut self, report: &Report, now: Instant) -> Assembled {
        if let Some(timed_out) = self.expire(now) {
            // The old transaction is over; the new report is read on its own below, and the
            // timeout is reported only if nothing else is.
            let next = self.push(report, now);
            return match next {
                Assembled::Ignored => timed_out,
                other => other,
            };
        }
        match Packet::parse(report) {
            Packet::Init {
                cid,
                command,
                length,
                data,
            } => {
                if let Some(partial) = &self.partial {
                    if partial.message.cid != cid {
                        return Assembled::Error(cid, ErrorCode::ChannelBusy);
                    }
                    // The same channel starts again: INIT resynchronises it (§11.2.9.1.3),
                    // anything else breaks the sequence.
                    self.partial = None;
                    if command != Command::Init as u8 {
                        return Assembled::Error(cid, ErrorCode::InvalidSequence);
                    }
                }
                if length > MAX_MESSAGE {
                    return Assembled::Error(cid, ErrorCode::InvalidLength);
                }
                let take = length.min(INIT_DATA);
                let partial = Partial {
                    message: Message {
                        cid,
                        command,
                        payload: data[..take].to_vec(),
                    },
                    length,
                    next_sequence: 0,
                    last_packet: now,
                };
                self.complete_or_keep(partial)
            }
            Packet::Continuation {
                cid,
                sequence,
                data,
            } => {
                let Some(mut partial) = self.partial.take() else {
                    return Assembled::Ignored;
                };
                if partial.message.cid != cid {
                    self.partial = Some(partial);
                    return Assembled::Ignored;
                }
                if sequence != partial.next_sequence {
                    return Assembled::Error(cid, ErrorCode::InvalidSequence);
                }
                let take = (partial.length - partial.message.payload.len()).min(CONT_DATA);
                partial.message.payload.extend_from_slice(&data[..take]);
                partial.next_sequence = partial.next_sequence.wrapping_add(1);
                partial.last_packet = now;
                self.complete_or_keep(partial)
            }
        }
    }

    fn complete_or_keep(&mut self, partial: Partial) -> Assembled {
        if partial.message.payload.len() == partial.length {
            Assembled::Message(partial.message)
        } else {
            self.partial = Some(partial);
            Assembled::Incomplete
        }
    }

    /// Drops a message whose next packet is late, and says so to its channel.
    fn expire(&mut self, now: Instant) -> Option<Assembled> {
        let late = self
            .partial
            .as_ref()
            .is_some_and(|p| now.saturating_duration_since(p.last_packet) > PACKET_TIMEOUT);
        if !late {
            return None;
        }
        let partial = self.partial.take()?;
        Some(Assembled::Error(
            partial.message.cid,
            ErrorCode::MessageTimeout,
        ))
    }
}

/// What the device's version and abilities are, as INIT reports them.
#[derive(Clone, Copy, Debug)]
pub struct DeviceInfo {
    /// Major, minor and build version.
    pub version: [u8; 3],
    /// Whether the key speaks U2F (CTAPHID_MSG); without it INIT sets NMSG.
    pub msg: bool,
}

/// What the authenticator above the transport must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A CTAP2 request (CTAPHID_CBOR): answer with [`Transport::response`].
    Cbor { cid: Cid, payload: Vec<u8> },
    /// A U2F request (CTAPHID_MSG).
    Msg { cid: Cid, payload: Vec<u8> },
    /// The host cancels the request in progress on this channel (no answer is sent to the
    /// CANCEL itself; the cancelled request answers CTAP2_ERR_KEEPALIVE_CANCEL).
    Cancel { cid: Cid },
}

/// What one report asks of the device: reports to send back at once, and perhaps a request
/// for the authenticator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub replies: Vec<Report>,
    pub request: Option<Request>,
}

/// The device's side of CTAPHID: channels, reassembly, and the transport's own commands.
#[derive(Debug)]
pub struct Transport {
    info: DeviceInfo,
    assembler: Assembler,
    next_cid: u32,
    /// Whether channel numbers went round once (every number but 0 and broadcast is then
    /// taken).
    wrapped: bool,
    /// The channel whose CBOR or MSG request the authenticator is working on.
    busy: Option<Cid>,
}

/// INIT's capability flags (§11.2.9.1.3).
const CAPABILITY_WINK: u8 = 0x01;
const CAPABILITY_CBOR: u8 = 0x04;
const CAPABILITY_NMSG: u8 = 0x08;
/// The CTAPHID protocol version INIT reports.
const PROTOCOL_VERSION: u8 = 2;

impl Transport {
    pub fn new(info: DeviceInfo) -> Transport {
        Transport {
            info,
            assembler: Assembler::default(),
            next_cid: 1,
            wrapped: false,
            busy: None,
        }
    }

    /// The channel whose request is in progress, if any.
    pub fn busy(&self) -> Option<Cid> {
        self.busy
    }

    /// Reads one report from the host.
    pub fn receive(&mut self, report: &Report, now: Instant) -> Received {
        match self.assembler.push(report, now) {
            Assembled::Message(message) => self.dispatch(message),
            Assembled::Incomplete | Assembled::Ignored => Received::default(),
            Assembled::Error(cid, code) => Received {
                replies: vec![error_report(cid, code)],
                request: None,
            },
        }
    }

    /// Gives up on a message whose next packet is late (call it every few tens of ms).
    pub fn tick(&mut self, now: Instant) -> Vec<Report> {
        match self.assembler.expire(now) {
            Some(Assembled::Error(cid, code)) => vec![error_report(cid, code)],
            _ => Vec::new(),
        }
    }

    /// The authenticator's answer to the request in progress; the channel is free again.
    pub fn response(&mut self, cid: Cid, payload: &[u8]) -> Result<Vec<Report>, TooLong> {
        self.release(cid);
        fragment(cid, Command::Cbor as u8, payload)
    }

    /// The U2F answer to the request in progress.
    pub fn msg_response(&mut self, cid: Cid, payload: &[u8]) -> Result<Vec<Report>, TooLong> {
        self.release(cid);
        fragment(cid, Command::Msg as u8, payload)
    }

    fn release(&mut self, cid: Cid) {
        if self.busy == Some(cid) {
            self.busy = None;
        }
    }

    fn dispatch(&mut self, message: Message) -> Received {
        let cid = message.cid;
        let reply = |reports: Vec<Report>| Received {
            replies: reports,
            request: None,
        };
        let error = |code| reply(vec![error_report(cid, code)]);
        if cid == Cid::RESERVED {
            return error(ErrorCode::InvalidChannel);
        }
        let Some(command) = Command::from_repr(message.command) else {
            return error(ErrorCode::InvalidCommand);
        };
        if cid == Cid::BROADCAST && command != Command::Init {
            return error(ErrorCode::InvalidChannel);
        }
        if cid != Cid::BROADCAST && !self.allocated(cid) {
            return error(ErrorCode::InvalidChannel);
        }
        if let Some(busy) = self.busy {
            // While the authenticator works, only its own channel's CANCEL (or INIT, which
            // abandons the request) is taken; everything else waits its turn.
            match command {
                Command::Cancel if busy == cid => {
                    return Received {
                        replies: Vec::new(),
                        request: Some(Request::Cancel { cid }),
                    }
                }
                Command::Init if busy == cid => {
                    self.busy = None;
                }
                _ => return error(ErrorCode::ChannelBusy),
            }
        }
        match command {
            Command::Init => self.init(cid, &message.payload),
            Command::Ping => {
                reply(fragment(cid, Command::Ping as u8, &message.payload).unwrap_or_default())
            }
            Command::Wink => reply(fragment(cid, Command::Wink as u8, &[]).unwrap_or_default()),
            // Nothing to cancel: CANCEL gets no answer.
            Command::Cancel => Received::default(),
            Command::Cbor if message.payload.is_empty() => error(ErrorCode::InvalidLength),
            Command::Cbor => {
                self.busy = Some(cid);
                Received {
                    replies: Vec::new(),
                    request: Some(Request::Cbor {
                        cid,
                        payload: message.payload,
                    }),
                }
            }
            Command::Msg if self.info.msg => {
                self.busy = Some(cid);
                Received {
                    replies: Vec::new(),
                    request: Some(Request::Msg {
                        cid,
                        payload: message.payload,
                    }),
                }
            }
            Command::Msg | Command::Lock | Command::Keepalive | Command::Error => {
                error(ErrorCode::InvalidCommand)
            }
        }
    }

    /// CTAPHID_INIT: on the broadcast channel it allocates a channel; on an allocated one it
    /// resynchronises it. The answer echoes the host's 8-byte nonce.
    fn init(&mut self, cid: Cid, nonce: &[u8]) -> Received {
        if nonce.len() != 8 {
            return Received {
                replies: vec![error_report(cid, ErrorCode::InvalidLength)],
                request: None,
            };
        }
        let channel = if cid == Cid::BROADCAST {
            self.allocate()
        } else {
            cid
        };
        let mut payload = Vec::with_capacity(17);
        payload.extend_from_slice(nonce);
        payload.extend_from_slice(&channel.0.to_be_bytes());
        payload.push(PROTOCOL_VERSION);
        payload.extend_from_slice(&self.info.version);
        let nmsg = if self.info.msg { 0 } else { CAPABILITY_NMSG };
        payload.push(CAPABILITY_WINK | CAPABILITY_CBOR | nmsg);
        Received {
            replies: fragment(cid, Command::Init as u8, &payload).unwrap_or_default(),
            request: None,
        }
    }

    fn allocate(&mut self) -> Cid {
        let cid = Cid(self.next_cid);
        // Never the reserved or the broadcast channel.
        self.next_cid = match self.next_cid.wrapping_add(1) {
            0 | 0xffff_ffff => {
                self.wrapped = true;
                1
            }
            next => next,
        };
        cid
    }

    fn allocated(&self, cid: Cid) -> bool {
        cid != Cid::RESERVED && cid != Cid::BROADCAST && (self.wrapped || cid.0 < self.next_cid)
    }
}

#[cfg(test)]
mod tests;
