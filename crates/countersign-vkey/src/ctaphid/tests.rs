#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const INFO: DeviceInfo = DeviceInfo {
    version: [1, 2, 3],
    msg: false,
};

fn transport() -> Transport {
    Transport::new(INFO)
}

/// Sends a whole message and returns what the last report gave back.
fn send(t: &mut Transport, cid: Cid, command: Command, payload: &[u8], now: Instant) -> Received {
    let reports = fragment(cid, command as u8, payload).unwrap();
    let mut last = Received::default();
    for report in &reports {
        last = t.receive(report, now);
    }
    last
}

/// Allocates a channel through INIT on the broadcast channel.
fn open(t: &mut Transport, now: Instant) -> Cid {
    let got = send(t, Cid::BROADCAST, Command::Init, &[7; 8], now);
    let message = reassemble(&got.replies);
    Cid(u32::from_be_bytes(
        message.payload[8..12].try_into().unwrap(),
    ))
}

/// Reads reports back into one message, as the host would.
fn reassemble(reports: &[Report]) -> Message {
    let mut assembler = Assembler::default();
    let now = Instant::now();
    let mut out = None;
    for report in reports {
        if let Assembled::Message(m) = assembler.push(report, now) {
            out = Some(m);
        }
    }
    out.expect("the reports make one message")
}

fn error_of(received: &Received) -> (Cid, u8, Vec<u8>) {
    assert_eq!(received.replies.len(), 1, "{received:?}");
    let m = reassemble(&received.replies);
    assert_eq!(m.command, Command::Error as u8, "{m:?}");
    (m.cid, m.command, m.payload)
}

#[test]
fn a_message_is_cut_into_init_and_numbered_continuation_packets() {
    let payload: Vec<u8> = (0..=99u8).collect();
    let reports = fragment(Cid(0x0102_0304), Command::Ping as u8, &payload).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(&reports[0][..7], &[1, 2, 3, 4, 0x81, 0, 100]);
    assert_eq!(&reports[0][7..], &payload[..57]);
    assert_eq!(&reports[1][..5], &[1, 2, 3, 4, 0]);
    assert_eq!(&reports[1][5..5 + 43], &payload[57..]);
    assert!(
        reports[1][5 + 43..].iter().all(|b| *b == 0),
        "padded with zeros"
    );
}

#[test]
fn messages_of_every_boundary_size_come_back_whole() {
    for len in [0, 1, 56, 57, 58, 115, 116, 117, 1000, MAX_MESSAGE] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let reports = fragment(Cid(9), Command::Cbor as u8, &payload).unwrap();
        let expected = 1 + len.saturating_sub(INIT_DATA).div_ceil(CONT_DATA);
        assert_eq!(reports.len(), expected, "{len}");
        let message = reassemble(&reports);
        assert_eq!((message.cid, message.command), (Cid(9), 0x10));
        assert_eq!(message.payload, payload, "{len}");
    }
    assert_eq!(
        fragment(Cid(9), 0x10, &vec![0; MAX_MESSAGE + 1]),
        Err(TooLong(MAX_MESSAGE + 1))
    );
}

#[test]
fn init_on_broadcast_allocates_a_new_channel_each_time_and_echoes_the_nonce() {
    let mut t = transport();
    let now = Instant::now();
    let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
    let got = send(&mut t, Cid::BROADCAST, Command::Init, &nonce, now);
    let answer = reassemble(&got.replies);
    assert_eq!(answer.cid, Cid::BROADCAST);
    assert_eq!(answer.command, Command::Init as u8);
    assert_eq!(&answer.payload[..8], &nonce);
    let first = Cid(u32::from_be_bytes(
        answer.payload[8..12].try_into().unwrap(),
    ));
    assert_eq!(answer.payload[12], 2, "CTAPHID protocol version");
    assert_eq!(&answer.payload[13..16], &[1, 2, 3]);
    assert_eq!(answer.payload[16], 0x01 | 0x04 | 0x08, "WINK, CBOR, no MSG");
    let second = open(&mut t, now);
    assert_ne!(first, second);
    assert!(![Cid::RESERVED, Cid::BROADCAST].contains(&first));

    // INIT on an allocated channel keeps it (resynchronisation).
    let got = send(&mut t, first, Command::Init, &nonce, now);
    let answer = reassemble(&got.replies);
    assert_eq!(answer.cid, first);
    assert_eq!(&answer.payload[8..12], &first.0.to_be_bytes());
}

#[test]
fn init_needs_an_eight_byte_nonce() {
    let mut t = transport();
    let got = send(
        &mut t,
        Cid::BROADCAST,
        Command::Init,
        &[1; 7],
        Instant::now(),
    );
    assert_eq!(
        error_of(&got),
        (Cid::BROADCAST, 0x3f, vec![ErrorCode::InvalidLength as u8])
    );
}

#[test]
fn channels_that_were_not_allocated_are_refused() {
    let mut t = transport();
    let now = Instant::now();
    for cid in [Cid(5), Cid::RESERVED] {
        let got = send(&mut t, cid, Command::Ping, b"hi", now);
        assert_eq!(error_of(&got).2, vec![ErrorCode::InvalidChannel as u8]);
    }
    let got = send(&mut t, Cid::BROADCAST, Command::Ping, b"hi", now);
    assert_eq!(error_of(&got).2, vec![ErrorCode::InvalidChannel as u8]);
}

#[test]
fn ping_echoes_wink_answers_and_unknown_or_unsupported_commands_are_refused() {
    let mut t = transport();
    let now = Instant::now();
    let cid = open(&mut t, now);
    let payload: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let got = send(&mut t, cid, Command::Ping, &payload, now);
    let echo = reassemble(&got.replies);
    assert_eq!((echo.cid, echo.command), (cid, Command::Ping as u8));
    assert_eq!(echo.payload, payload);
    assert_eq!(got.request, None);

    let got = send(&mut t, cid, Command::Wink, &[], now);
    assert_eq!(reassemble(&got.replies).command, Command::Wink as u8);

    for command in [0x22u8, Command::Lock as u8, Command::Msg as u8] {
        let reports = fragment(cid, command, &[1]).unwrap();
        let got = t.receive(&reports[0], now);
        assert_eq!(
            error_of(&got).2,
            vec![ErrorCode::InvalidCommand as u8],
            "{command}"
        );
    }
    let got = send(&mut t, cid, Command::Cbor, &[], now);
    assert_eq!(error_of(&got).2, vec![ErrorCode::InvalidLength as u8]);
}

#[test]
fn a_cbor_request_holds_the_key_until_answered_and_only_its_channel_may_cancel() {
    let mut t = transport();
    let now = Instant::now();
    let alice = open(&mut t, now);
    let bob = open(&mut t, now);
    let request: Vec<u8> = (0..200).map(|i| i as u8).collect();
    let got = send(&mut t, alice, Command::Cbor, &request, now);
    assert_eq!(
        got.request,
        Some(Request::Cbor {
            cid: alice,
            payload: request
        })
    );
    assert!(got.replies.is_empty());
    assert_eq!(t.busy(), Some(alice));

    let got = send(&mut t, bob, Command::Ping, b"x", now);
    assert_eq!(
        error_of(&got),
        (bob, 0x3f, vec![ErrorCode::ChannelBusy as u8])
    );
    let got = send(&mut t, bob, Command::Cancel, &[], now);
    assert_eq!(error_of(&got).2, vec![ErrorCode::ChannelBusy as u8]);
    let got = send(&mut t, alice, Command::Cbor, &[4], now);
    assert_eq!(error_of(&got).2, vec![ErrorCode::ChannelBusy as u8]);

    let got = send(&mut t, alice, Command::Cancel, &[], now);
    assert_eq!(got.request, Some(Request::Cancel { cid: alice }));
    assert!(got.replies.is_empty(), "CANCEL itself gets no answer");

    let answer = t.response(alice, &[0x2d]).unwrap();
    let m = reassemble(&answer);
    assert_eq!((m.cid, m.command, m.payload), (alice, 0x10, vec![0x2d]));
    assert_eq!(t.busy(), None);
    let got = send(&mut t, bob, Command::Ping, b"x", now);
    assert_eq!(reassemble(&got.replies).payload, b"x");
}

#[test]
fn init_on_the_busy_channel_abandons_its_request() {
    let mut t = transport();
    let now = Instant::now();
    let cid = open(&mut t, now);
    send(&mut t, cid, Command::Cbor, &[4], now);
    let got = send(&mut t, cid, Command::Init, &[3; 8], now);
    assert_eq!(reassemble(&got.replies).command, Command::Init as u8);
    assert_eq!(t.busy(), None);
}

#[test]
fn packets_out_of_sequence_end_the_message_with_an_error() {
    let mut t = transport();
    let now = Instant::now();
    let cid = open(&mut t, now);
    let reports = fragment(cid, Command::Ping as u8, &[5; 200]).unwrap();
    assert_eq!(t.receive(&reports[0], now), Received::default());
    let got = t.receive(&reports[2], now);
    assert_eq!(
        error_of(&got),
        (cid, 0x3f, vec![ErrorCode::InvalidSequence as u8])
    );
    // The rest of that message is now stray and ignored; the next message works.
    assert_eq!(t.receive(&reports[3], now), Received::default());
    let got = send(&mut t, cid, Command::Ping, b"ok", now);
    assert_eq!(reassemble(&got.replies).payload, b"ok");
}

#[test]
fn a_new_message_on_the_same_channel_mid_message_is_a_sequence_error() {
    let mut t = transport();
    let now = Instant::now();
    let cid = open(&mut t, now);
    let long = fragment(cid, Command::Ping as u8, &[5; 200]).unwrap();
    t.receive(&long[0], now);
    let got = t.receive(&fragment(cid, Command::Ping as u8, b"x").unwrap()[0], now);
    assert_eq!(error_of(&got).2, vec![ErrorCode::InvalidSequence as u8]);
}

#[test]
fn another_channel_mid_message_is_busy_and_the_first_message_still_completes() {
    let mut t = transport();
    let now = Instant::now();
    let alice = open(&mut t, now);
    let bob = open(&mut t, now);
    let long = fragment(alice, Command::Ping as u8, &[6; 150]).unwrap();
    t.receive(&long[0], now);
    let got = t.receive(&fragment(bob, Command::Ping as u8, b"x").unwrap()[0], now);
    assert_eq!(
        error_of(&got),
        (bob, 0x3f, vec![ErrorCode::ChannelBusy as u8])
    );
    // Bob's stray continuation is ignored, not mixed into Alice's message.
    let bob_long = fragment(bob, Command::Ping as u8, &[9; 150]).unwrap();
    assert_eq!(t.receive(&bob_long[1], now), Received::default());
    t.receive(&long[1], now);
    let got = t.receive(&long[2], now);
    let echo = reassemble(&got.replies);
    assert_eq!((echo.cid, echo.payload), (alice, vec![6; 150]));
}

#[test]
fn a_late_packet_times_the_message_out() {
    let mut t = transport();
    let start = Instant::now();
    let cid = open(&mut t, start);
    let long = fragment(cid, Command::Ping as u8, &[5; 100]).unwrap();
    t.receive(&long[0], start);
    assert!(t.tick(start + PACKET_TIMEOUT).is_empty(), "not late yet");
    let late = start + PACKET_TIMEOUT + Duration::from_millis(1);
    let got = t.receive(&long[1], late);
    assert_eq!(
        error_of(&got),
        (cid, 0x3f, vec![ErrorCode::MessageTimeout as u8])
    );

    // Noticed by the clock alone, too.
    t.receive(&long[0], late);
    let replies = t.tick(late + Duration::from_secs(1));
    assert_eq!(replies, vec![error_report(cid, ErrorCode::MessageTimeout)]);
    assert!(
        t.tick(late + Duration::from_secs(2)).is_empty(),
        "said once"
    );
}

#[test]
fn a_length_beyond_what_ctaphid_can_carry_is_refused() {
    let mut t = transport();
    let now = Instant::now();
    let cid = open(&mut t, now);
    let mut report = fragment(cid, Command::Ping as u8, &[]).unwrap()[0];
    report[5..7].copy_from_slice(&u16::try_from(MAX_MESSAGE + 1).unwrap().to_be_bytes());
    let got = t.receive(&report, now);
    assert_eq!(error_of(&got).2, vec![ErrorCode::InvalidLength as u8]);
}

#[test]
fn keepalive_and_error_reports_are_single_packets() {
    let report = keepalive_report(Cid(0x0a0b_0c0d), KeepaliveStatus::UserPresenceNeeded);
    assert_eq!(&report[..8], &[0x0a, 0x0b, 0x0c, 0x0d, 0xbb, 0, 1, 2]);
    let report = error_report(Cid(1), ErrorCode::ChannelBusy);
    assert_eq!(&report[..8], &[0, 0, 0, 1, 0xbf, 0, 1, 6]);
}
