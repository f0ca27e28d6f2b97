//! Linux's uhid (`/dev/uhid`, `linux/uhid.h`): a process creates a HID device by writing
//! events to it and reads what the host sends the device. The kernel then offers the device as
//! `/dev/hidraw*`, where the `authenticator` crate finds it as it would a USB security key.
//! Events are one packed C struct (`struct uhid_event`); this module writes and reads its bytes
//! directly, so no unsafe code is needed.

use std::io::{Read, Write};

/// `sizeof(struct uhid_event)`: the type, then the largest request (`uhid_create2_req`).
pub const EVENT_LEN: usize = 4 + CREATE2_LEN;
/// `UHID_DATA_MAX` and `HID_MAX_DESCRIPTOR_SIZE`.
const DATA_MAX: usize = 4096;
/// name[128], phys[64], uniq[64], rd_size, bus, vendor, product, version, country, rd_data.
const CREATE2_LEN: usize = 128 + 64 + 64 + 2 + 2 + 4 * 4 + DATA_MAX;

// `enum uhid_event_type`.
const UHID_DESTROY: u32 = 1;
const UHID_START: u32 = 2;
const UHID_STOP: u32 = 3;
const UHID_OPEN: u32 = 4;
const UHID_CLOSE: u32 = 5;
const UHID_OUTPUT: u32 = 6;
const UHID_GET_REPORT: u32 = 9;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_SET_REPORT: u32 = 13;

/// `BUS_USB` from `linux/input.h`.
const BUS_USB: u16 = 0x03;

/// The report descriptor of a FIDO security key (CTAP 2.1 §11.2.8.1): usage page 0xF1D0, usage
/// CTAPHID, one 64-byte input report and one 64-byte output report, no report ids.
pub const FIDO_REPORT_DESCRIPTOR: [u8; 34] = [
    0x06, 0xd0, 0xf1, // Usage Page (FIDO Alliance)
    0x09, 0x01, // Usage (CTAPHID)
    0xa1, 0x01, // Collection (Application)
    0x09, 0x20, //   Usage (Input Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x81, 0x02, //   Input (Data, Variable, Absolute)
    0x09, 0x21, //   Usage (Output Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x91, 0x02, //   Output (Data, Variable, Absolute)
    0xc0, // End Collection
];

/// Who the device says it is.
#[derive(Clone, Debug)]
pub struct Identity<'a> {
    pub name: &'a str,
    pub vendor: u32,
    pub product: u32,
    pub version: u32,
}

/// Why an event could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum UhidError {
    #[error("the device name is {0} bytes; uhid takes at most 127")]
    NameTooLong(usize),
    #[error("{0} bytes do not fit a uhid event's {DATA_MAX}")]
    TooLong(usize),
    #[error("a uhid event is {EVENT_LEN} bytes; {0} arrived")]
    ShortEvent(usize),
    #[error("uhid event type {0} is not one this device knows")]
    UnknownEvent(u32),
    #[error("uhid: {0}")]
    Io(#[from] std::io::Error),
}

/// The `UHID_CREATE2` event that makes the device.
pub fn create2(identity: &Identity<'_>, descriptor: &[u8]) -> Result<Vec<u8>, UhidError> {
    let name = identity.name.as_bytes();
    if name.len() > 127 {
        return Err(UhidError::NameTooLong(name.len()));
    }
    if descriptor.len() > DATA_MAX {
        return Err(UhidError::TooLong(descriptor.len()));
    }
    let mut event = vec![0u8; EVENT_LEN];
    event[..4].copy_from_slice(&UHID_CREATE2.to_ne_bytes());
    let body = &mut event[4..];
    body[..name.len()].copy_from_slice(name); // NUL-terminated by the zeros after it
    let mut at = 128 + 64 + 64;
    let mut put = |bytes: &[u8]| {
        body[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    // Checked above: at most 4096.
    put(&(descriptor.len() as u16).to_ne_bytes());
    put(&BUS_USB.to_ne_bytes());
    put(&identity.vendor.to_ne_bytes());
    put(&identity.product.to_ne_bytes());
    put(&identity.version.to_ne_bytes());
    put(&0u32.to_ne_bytes()); // country
    put(descriptor);
    Ok(event)
}

/// The `UHID_INPUT2` event that delivers one input report to the host.
pub fn input2(report: &[u8]) -> Result<Vec<u8>, UhidError> {
    if report.len() > DATA_MAX {
        return Err(UhidError::TooLong(report.len()));
    }
    let mut event = vec![0u8; EVENT_LEN];
    event[..4].copy_from_slice(&UHID_INPUT2.to_ne_bytes());
    event[4..6].copy_from_slice(&(report.len() as u16).to_ne_bytes());
    event[6..6 + report.len()].copy_from_slice(report);
    Ok(event)
}

/// The `UHID_DESTROY` event: the device is unplugged.
pub fn destroy() -> Vec<u8> {
    let mut event = vec![0u8; EVENT_LEN];
    event[..4].copy_from_slice(&UHID_DESTROY.to_ne_bytes());
    event
}

/// What the kernel tells the device.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Stop,
    /// A program opened the hidraw node.
    Open,
    /// The last program closed it.
    Close,
    /// The host wrote an output report (without the report-number byte hidraw adds when the
    /// device has no numbered reports).
    Output(Vec<u8>),
    /// A feature report was asked for or set; a FIDO key has none (the kernel times out).
    Ignored,
}

/// Reads one event from the bytes the kernel returned.
pub fn parse(bytes: &[u8]) -> Result<Event, UhidError> {
    if bytes.len() < EVENT_LEN {
        return Err(UhidError::ShortEvent(bytes.len()));
    }
    let kind = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    Ok(match kind {
        UHID_START => Event::Start,
        UHID_STOP => Event::Stop,
        UHID_OPEN => Event::Open,
        UHID_CLOSE => Event::Close,
        UHID_OUTPUT => {
            // uhid_output_req: data[4096], size (u16), rtype (u8).
            let size = usize::from(u16::from_ne_bytes([
                bytes[4 + DATA_MAX],
                bytes[5 + DATA_MAX],
            ]));
            let data = &bytes[4..4 + size.min(DATA_MAX)];
            // hidraw passes the report number first; 0 means "no numbered reports".
            let report = match data.split_first() {
                Some((0, rest)) if rest.len() == crate::ctaphid::REPORT_LEN => rest,
                _ => data,
            };
            Event::Output(report.to_vec())
        }
        UHID_GET_REPORT | UHID_SET_REPORT => Event::Ignored,
        other => return Err(UhidError::UnknownEvent(other)),
    })
}

/// A uhid device over any reader and writer (`/dev/uhid` opened read-write, in a test a
/// buffer).
pub struct Device<T: Read + Write> {
    io: T,
}

impl<T: Read + Write> Device<T> {
    /// Creates the device.
    pub fn create(
        mut io: T,
        identity: &Identity<'_>,
        descriptor: &[u8],
    ) -> Result<Self, UhidError> {
        io.write_all(&create2(identity, descriptor)?)?;
        Ok(Device { io })
    }

    /// Another handle on a device already created through the same open `/dev/uhid` (a
    /// clone of its file): one thread reads events while another writes reports.
    pub fn attach(io: T) -> Self {
        Device { io }
    }

    /// Sends one input report to the host.
    pub fn send(&mut self, report: &[u8]) -> Result<(), UhidError> {
        self.io.write_all(&input2(report)?)?;
        Ok(())
    }

    /// Waits for the kernel's next event.
    pub fn next_event(&mut self) -> Result<Event, UhidError> {
        let mut buffer = vec![0u8; EVENT_LEN];
        let read = self.io.read(&mut buffer)?;
        parse(&buffer[..read])
    }

    /// Unplugs the device.
    pub fn destroy(mut self) -> Result<T, UhidError> {
        self.unplug()?;
        Ok(self.io)
    }

    /// Unplugs the device but keeps the handle (other threads may still hold clones).
    pub fn unplug(&mut self) -> Result<(), UhidError> {
        self.io.write_all(&destroy())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_event_is_as_large_as_the_kernels_struct() {
        // sizeof(struct uhid_event) on Linux: 4 + sizeof(struct uhid_create2_req).
        assert_eq!(EVENT_LEN, 4376);
    }

    #[test]
    fn create2_lays_out_the_kernels_fields() {
        let identity = Identity {
            name: "Countersign virtual key",
            vendor: 0x1209,
            product: 0xc0de,
            version: 0x0100,
        };
        let event = create2(&identity, &FIDO_REPORT_DESCRIPTOR).unwrap();
        assert_eq!(event.len(), EVENT_LEN);
        assert_eq!(&event[..4], &11u32.to_ne_bytes());
        assert_eq!(&event[4..27], b"Countersign virtual key");
        assert_eq!(event[27], 0, "NUL-terminated");
        let fields = 4 + 256;
        assert_eq!(&event[fields..fields + 2], &34u16.to_ne_bytes());
        assert_eq!(
            &event[fields + 2..fields + 4],
            &3u16.to_ne_bytes(),
            "BUS_USB"
        );
        assert_eq!(&event[fields + 4..fields + 8], &0x1209u32.to_ne_bytes());
        assert_eq!(&event[fields + 8..fields + 12], &0xc0deu32.to_ne_bytes());
        assert_eq!(&event[fields + 12..fields + 16], &0x0100u32.to_ne_bytes());
        assert_eq!(&event[fields + 20..fields + 54], &FIDO_REPORT_DESCRIPTOR);
        let long = "x".repeat(128);
        let too_long = Identity {
            name: &long,
            ..identity
        };
        assert!(matches!(
            create2(&too_long, &[]),
            Err(UhidError::NameTooLong(128))
        ));
    }

    #[test]
    fn input2_carries_one_report() {
        let report = [0xabu8; 64];
        let event = input2(&report).unwrap();
        assert_eq!(&event[..4], &12u32.to_ne_bytes());
        assert_eq!(&event[4..6], &64u16.to_ne_bytes());
        assert_eq!(&event[6..70], &report);
        assert!(event[70..].iter().all(|b| *b == 0));
        assert!(matches!(input2(&[0; 4097]), Err(UhidError::TooLong(4097))));
    }

    fn output_event(data: &[u8]) -> Vec<u8> {
        let mut event = vec![0u8; EVENT_LEN];
        event[..4].copy_from_slice(&6u32.to_ne_bytes());
        event[4..4 + data.len()].copy_from_slice(data);
        event[4 + 4096..4 + 4098].copy_from_slice(&(data.len() as u16).to_ne_bytes());
        event
    }

    #[test]
    fn output_reports_come_without_hidraws_report_number() {
        let mut with_number = vec![0u8];
        with_number.extend_from_slice(&[7u8; 64]);
        assert_eq!(
            parse(&output_event(&with_number)).unwrap(),
            Event::Output(vec![7; 64])
        );
        assert_eq!(
            parse(&output_event(&[7u8; 64])).unwrap(),
            Event::Output(vec![7; 64])
        );
    }

    #[test]
    fn the_kernels_other_events_are_read_and_unknown_or_short_ones_refused() {
        let event = |kind: u32| {
            let mut e = vec![0u8; EVENT_LEN];
            e[..4].copy_from_slice(&kind.to_ne_bytes());
            e
        };
        assert_eq!(parse(&event(2)).unwrap(), Event::Start);
        assert_eq!(parse(&event(3)).unwrap(), Event::Stop);
        assert_eq!(parse(&event(4)).unwrap(), Event::Open);
        assert_eq!(parse(&event(5)).unwrap(), Event::Close);
        assert_eq!(parse(&event(9)).unwrap(), Event::Ignored);
        assert!(matches!(
            parse(&event(99)),
            Err(UhidError::UnknownEvent(99))
        ));
        assert!(matches!(parse(&[0; 10]), Err(UhidError::ShortEvent(10))));
    }

    /// A stand-in for `/dev/uhid`: what the device writes, and events queued for it to read.
    struct Loop {
        written: Vec<u8>,
        queued: std::collections::VecDeque<Vec<u8>>,
    }

    impl Read for Loop {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let next = self.queued.pop_front().unwrap_or_default();
            buf[..next.len()].copy_from_slice(&next);
            Ok(next.len())
        }
    }

    impl Write for Loop {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_device_writes_create_input_and_destroy_and_reads_events() {
        let io = Loop {
            written: Vec::new(),
            queued: [output_event(&[1; 64])].into(),
        };
        let identity = Identity {
            name: "k",
            vendor: 1,
            product: 2,
            version: 3,
        };
        let mut device = Device::create(io, &identity, &FIDO_REPORT_DESCRIPTOR).unwrap();
        assert_eq!(device.next_event().unwrap(), Event::Output(vec![1; 64]));
        device.send(&[2; 64]).unwrap();
        let io = device.destroy().unwrap();
        assert_eq!(io.written.len(), 3 * EVENT_LEN);
        let kinds: Vec<u32> = io
            .written
            .chunks(EVENT_LEN)
            .map(|e| u32::from_ne_bytes(e[..4].try_into().unwrap()))
            .collect();
        assert_eq!(kinds, vec![11, 12, 1]);
        // Nothing queued: a read of zero bytes is a short event, not a panic.
        assert!(matches!(
            Device::create(io, &identity, &[]).unwrap().next_event(),
            Err(UhidError::ShortEvent(0))
        ));
    }
}
