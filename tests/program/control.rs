//! The control socket in-process (no QEMU): malformed input of every kind gets an error
//! (or a closed connection) and never touches the device; good requests steer it; the
//! Prometheus endpoint answers only GET /metrics.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nic_emu::backend::{Handles, Loopback, PcapRecorder};
use nic_emu::control::http::MetricsServer;
use nic_emu::control::{ControlContext, ControlServer, MAX_REQUEST};
use nic_emu::frontend::SharedDevice;
use nic_emu::{DeviceConfig, MonotonicClock, E1000};
use serde_json::Value;
use support::watchdog;

fn setup(tag: &str) -> (SharedDevice, ControlServer, PathBuf) {
    let recorder = PcapRecorder::idle(Loopback::new());
    let handles = Handles {
        recorder: Some(recorder.handle()),
        ..Handles::default()
    };
    let backend = Box::new(recorder);
    let d = E1000::new(
        DeviceConfig::default(),
        backend,
        Box::new(nic_emu::SharedIrqLine::new()),
        Arc::new(MonotonicClock::new()),
    );
    let device = SharedDevice::new(d);
    let path = std::env::temp_dir().join(format!("nic-emu-ctl-{}-{tag}.sock", std::process::id()));
    let ctx =
        Arc::new(ControlContext::new(Arc::new(device.clone()), "loopback").with_handles(handles));
    let server = ControlServer::start(&path, ctx).expect("control server");
    (device, server, path)
}

fn reply(stream: &UnixStream) -> Value {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("reply");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}"))
}

fn ask(stream: &mut UnixStream, line: &[u8]) -> Value {
    stream.write_all(line).expect("send");
    reply(stream)
}

fn class(v: &Value) -> &str {
    v["error"]["class"].as_str().unwrap_or("(none)")
}

#[test]
fn malformed_requests_get_errors_and_leave_the_device_alone() {
    watchdog(60, || {
        let (device, _server, path) = setup("bad");
        let before = device.lock().metrics();
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for (line, want) in [
            (&b"garbage\n"[..], "InvalidRequest"),
            (b"\xff\xfe\xfd\n", "InvalidRequest"),
            (b"[1,2,3]\n", "InvalidRequest"),
            (b"{\"execute\":42}\n", "InvalidRequest"),
            (b"{\"execute\":\"reboot\"}\n", "CommandNotFound"),
            (b"{\"execute\":\"link\"}\n", "InvalidArgument"),
            (b"{\"execute\":\"link\",\"arguments\":{\"up\":1}}\n", "InvalidArgument"),
            (b"{\"execute\":\"link\",\"arguments\":{\"up\":false,\"x\":1}}\n", "InvalidArgument"),
            (b"{\"execute\":\"replay\",\"arguments\":{\"action\":\"pause\"}}\n", "NotSupported"),
            (b"{\"execute\":\"impair\",\"arguments\":{\"action\":\"get\"}}\n", "NotSupported"),
            (b"{\"execute\":\"record\",\"arguments\":{\"action\":\"start\",\"file\":\"/nonexistent-dir/x.pcap\"}}\n", "GenericError"),
        ] {
            let v = ask(&mut s, line);
            assert_eq!(class(&v), want, "{:?} -> {v}", String::from_utf8_lossy(line));
        }
        // A request split over several writes is still one request.
        s.write_all(b"{\"execute\":\"in").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let v = ask(&mut s, b"fo\",\"id\":9}\n");
        assert_eq!(v["id"], 9);
        assert_eq!(v["return"]["link_up"], true);
        let d = device.lock();
        assert!(d.link_up(), "a bad request changed the link");
        assert_eq!(d.metrics(), before, "a bad request touched the device");
    });
}

#[test]
fn huge_lines_half_lines_and_closed_clients_do_not_hurt() {
    watchdog(60, || {
        let (device, server, path) = setup("huge");
        // Over-long line without a newline: an error, then the server hangs up.
        let mut big = UnixStream::connect(&path).unwrap();
        big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = big.write_all(&vec![b'x'; MAX_REQUEST + 4096]);
        let v = reply(&big);
        assert_eq!(class(&v), "InvalidRequest", "{v}");
        let mut rest = Vec::new();
        let _ = big.read_to_end(&mut rest);
        // Half lines left hanging, and clients gone mid-request.
        let hanging: Vec<UnixStream> = (0..4)
            .map(|_| {
                let s = UnixStream::connect(&path).unwrap();
                (&s).write_all(b"{\"execute\":\"link\",\"argu").unwrap();
                s
            })
            .collect();
        for _ in 0..20 {
            let mut s = UnixStream::connect(&path).unwrap();
            let _ = s.write_all(b"{\"execute\":\"link\",\"arguments\":{\"up\":fal");
        }
        // Each client gone mid-request holds its place until its thread sees the hang-up
        // (later on a busy machine), and the server refuses past 16: a client told "try
        // again later" does, until the places free up.
        assert!(
            device.lock().link_up(),
            "no half request reached the device"
        );
        let t = std::time::Instant::now();
        let v = loop {
            let mut good = UnixStream::connect(&path).unwrap();
            good.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            // A refused client may be hung up on before its request is written.
            let _ = good.write_all(b"{\"execute\":\"link\",\"arguments\":{\"up\":false}}\n");
            let v = reply(&good);
            let busy = v["error"]["desc"]
                .as_str()
                .is_some_and(|d| d.contains("too many control clients"));
            if !busy {
                break v;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "never served: {v}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(v["return"]["link_up"], false, "{v}");
        assert!(!device.lock().link_up());
        drop(hanging);
        drop(server);
        assert!(!path.exists(), "control socket left behind");
    });
}

#[test]
fn record_at_run_time_holds_only_the_frames_between_start_and_stop() {
    watchdog(60, || {
        let (device, _server, path) = setup("rec");
        let pcap = std::env::temp_dir().join(format!("nic-emu-ctl-{}.pcap", std::process::id()));
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let send = |n: u8| {
            let mut d = device.lock();
            for i in 0..n {
                let frame = support::frame([0xff; 6], [2, 0, 0, 0, 0, 1], 0x0800, 50, i);
                d.backend_mut().send(&frame).unwrap();
            }
        };
        send(3);
        let start = format!(
            "{{\"execute\":\"record\",\"arguments\":{{\"action\":\"start\",\"file\":\"{}\"}}}}\n",
            pcap.display()
        );
        let v = ask(&mut s, start.as_bytes());
        assert_eq!(v["return"]["recording"], true, "{v}");
        send(5);
        let v = ask(
            &mut s,
            b"{\"execute\":\"record\",\"arguments\":{\"action\":\"stop\"}}\n",
        );
        assert_eq!(v["return"]["frames"], 5, "{v}");
        send(2);
        let data = std::fs::read(&pcap).unwrap();
        // 24-byte header, then 5 records of 16 + 64 bytes.
        assert_eq!(data.len(), 24 + 5 * (16 + 64));
        let _ = std::fs::remove_file(&pcap);
    });
}

#[test]
fn metrics_endpoint_serves_only_get_metrics() {
    watchdog(60, || {
        let (device, _server, _path) = setup("http");
        let ctx = Arc::new(ControlContext::new(Arc::new(device), "loopback"));
        let m = MetricsServer::start("127.0.0.1:0".parse().unwrap(), ctx).unwrap();
        let get = |req: &[u8]| {
            let mut s = TcpStream::connect(m.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = s.write_all(req);
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        let ok = get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(
            ok.contains("# TYPE nic_emu_rx_frames_total counter"),
            "{ok}"
        );
        assert!(
            ok.contains("nic_emu_stats_register{register=\"GPRC\"} 0"),
            "{ok}"
        );
        assert!(get(b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get(b"garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 20_000));
        assert!(get(&huge).starts_with("HTTP/1.1 431"));
        // A client that sends half a request and waits is dropped after the timeout;
        // the next one is served.
        let _slow = TcpStream::connect(m.addr()).unwrap();
        assert!(get(b"GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"));
    });
}

#[test]
fn lints_and_drop_reasons_in_lints_stats_and_prometheus() {
    watchdog(60, || {
        let (device, _server, path) = setup("lints");
        {
            // A driver mistake (TDH written with the transmitter on) and a broadcast
            // dropped with RCTL.BAM clear.
            let mut d = device.lock();
            d.write_reg(nic_emu::device::regs::TCTL, nic_emu::device::regs::TCTL_EN);
            d.write_reg(nic_emu::device::regs::TDH, 0);
            d.write_reg(nic_emu::device::regs::RCTL, nic_emu::device::regs::RCTL_EN);
            let bcast = support::frame([0xff; 6], [2, 0, 0, 0, 0, 1], 0x0806, 46, 1);
            d.receive_frame(&bcast);
        }
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let v = ask(&mut s, b"{\"execute\":\"lints\"}\n");
        let r = &v["return"];
        // TDH, the broadcast, and two more a bare device shows: bus mastering was never
        // enabled and the MTA never written.
        assert_eq!(r["warn_total"], 4, "{v}");
        let ids: Vec<&str> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"head-written-enabled"), "{v}");
        assert!(ids.contains(&"rx-broadcast-dropped"), "{v}");
        let f = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "head-written-enabled")
            .unwrap();
        assert!(f["message"].as_str().unwrap().contains("TDH"), "{v}");
        assert!(f["section"].as_str().unwrap().contains("SDM"), "{v}");
        assert!(f["first_access"].as_u64().unwrap() > 0, "{v}");

        let v = ask(&mut s, b"{\"execute\":\"stats\"}\n");
        assert_eq!(v["return"]["lints"]["head-written-enabled"], 1, "{v}");
        assert_eq!(v["return"]["drops"]["rx"]["filtered_broadcast"], 1, "{v}");
        let v = ask(
            &mut s,
            b"{\"execute\":\"stats\",\"arguments\":{\"format\":\"prometheus\"}}\n",
        );
        let text = v["return"]["text"].as_str().unwrap();
        assert!(
            text.contains("nic_emu_lint_total{id=\"head-written-enabled\",severity=\"warn\"} 1")
        );
        assert!(text.contains("nic_emu_lint_total{id=\"tx-no-ifcs\",severity=\"warn\"} 0"));
        assert!(
            text.contains("nic_emu_drop_total{direction=\"rx\",reason=\"filtered_broadcast\"} 1")
        );

        // clear: reported once more, then forgotten.
        let v = ask(
            &mut s,
            b"{\"execute\":\"lints\",\"arguments\":{\"clear\":true}}\n",
        );
        assert_eq!(v["return"]["warn_total"], 4, "{v}");
        let v = ask(&mut s, b"{\"execute\":\"lints\"}\n");
        assert_eq!(v["return"]["warn_total"], 0, "{v}");
        assert_eq!(v["return"]["findings"], Value::Array(vec![]), "{v}");
        let v = ask(
            &mut s,
            b"{\"execute\":\"lints\",\"arguments\":{\"clear\":1}}\n",
        );
        assert_eq!(class(&v), "InvalidArgument", "{v}");
        assert!(
            v["error"]["desc"].as_str().unwrap().contains("`clear`"),
            "{v}"
        );
    });
}

/// A backend without a carrier, saying why.
struct Unplugged;

impl nic_emu::PacketBackend for Unplugged {
    fn name(&self) -> String {
        "unplugged".into()
    }
    fn send(&mut self, _frame: &[u8]) -> std::io::Result<bool> {
        Ok(false)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        Ok(None)
    }
    fn carrier(&mut self) -> nic_emu::backend::Carrier {
        nic_emu::backend::Carrier::down(None)
    }
    fn carrier_note(&self) -> Option<String> {
        Some("the test's wire is cut".into())
    }
}

#[test]
fn link_and_info_say_when_the_backend_has_no_carrier_and_why() {
    watchdog(60, || {
        let d = E1000::new(
            DeviceConfig::default(),
            Box::new(Unplugged),
            Box::new(nic_emu::SharedIrqLine::new()),
            Arc::new(MonotonicClock::new()),
        );
        let device = SharedDevice::new(d);
        let ctx = ControlContext::new(Arc::new(device.clone()), "unplugged");
        let ask = |line: &str| -> Value {
            serde_json::from_str(&nic_emu::control::reply_line(&ctx, line.as_bytes())).unwrap()
        };
        let v = ask(r#"{"execute":"link","arguments":{"up":true}}"#);
        let r = &v["return"];
        assert_eq!(r["link_up"], false, "{v}");
        assert_eq!(r["cable_plugged"], true, "{v}");
        assert_eq!(r["backend_carrier"], false, "{v}");
        assert_eq!(r["backend_carrier_note"], "the test's wire is cut", "{v}");
        let v = ask(r#"{"execute":"info"}"#);
        assert_eq!(v["return"]["link_up"], false, "{v}");
        assert_eq!(v["return"]["backend_carrier"], false, "{v}");
        assert_eq!(
            v["return"]["backend_carrier_note"], "the test's wire is cut",
            "{v}"
        );
        let v = ask(r#"{"execute":"stats","arguments":{"format":"prometheus"}}"#);
        let text = v["return"]["text"].as_str().unwrap();
        assert!(text.contains("\nnic_emu_backend_carrier 0\n"), "{text}");
        assert!(text.contains("\nnic_emu_link_up 0\n"), "{text}");
    });
}

/// `record start` with a descriptor (what `nic-emu-cli ctl` sends): only an empty
/// regular file open for writing is taken; without one, a context that may not create
/// files (a sandboxed nic-emu-cli) says what to do instead.
#[test]
fn record_start_takes_a_passed_descriptor_and_checks_it() {
    use nic_emu::control::reply_line_with;
    let recorder = PcapRecorder::idle(Loopback::new());
    let handles = Handles {
        recorder: Some(recorder.handle()),
        ..Handles::default()
    };
    let device = SharedDevice::new(E1000::new(
        DeviceConfig::default(),
        Box::new(recorder),
        Box::new(nic_emu::SharedIrqLine::new()),
        Arc::new(MonotonicClock::new()),
    ));
    let mut ctx = ControlContext::new(Arc::new(device), "loopback").with_handles(handles);
    ctx.create_files = false;
    let dir = std::env::temp_dir().join(format!("nic-emu-ctl-fd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.pcap");
    let start = format!(
        r#"{{"execute":"record","arguments":{{"action":"start","file":"{}"}}}}"#,
        path.display()
    );
    let answer = |file: Option<std::fs::File>| -> Value {
        serde_json::from_str(&reply_line_with(&ctx, start.as_bytes(), file)).unwrap()
    };

    let v = answer(None);
    assert!(
        v["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("runs sandboxed"),
        "{v}"
    );
    assert!(!path.exists(), "a file was created");

    let (r, _w) = std::io::pipe().unwrap();
    let v = answer(Some(std::fs::File::from(std::os::fd::OwnedFd::from(r))));
    assert!(
        v["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{v}"
    );

    std::fs::write(&path, b"old").unwrap();
    let v = answer(Some(
        std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
    ));
    assert!(
        v["error"]["desc"].as_str().unwrap().contains("not empty"),
        "{v}"
    );

    std::fs::write(&path, b"").unwrap();
    let v = answer(Some(std::fs::File::open(&path).unwrap()));
    assert!(
        v["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("not open for writing"),
        "{v}"
    );

    let v = answer(Some(std::fs::File::create(&path).unwrap()));
    assert_eq!(v["return"]["recording"], true, "{v}");
    let stop = br#"{"execute":"record","arguments":{"action":"stop"}}"#;
    let v: Value = serde_json::from_str(&reply_line_with(&ctx, stop, None)).unwrap();
    assert_eq!(v["return"]["recording"], false, "{v}");
    assert_eq!(std::fs::read(&path).unwrap().len(), 24, "the pcap header");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `impair` and `replay` act on the handles the factory returns with the backend: the
/// device's lock is not involved, the chain sees the change at its next frame.
#[test]
fn impair_and_replay_steer_the_chain_through_their_handles() {
    use nic_emu::config::{BackendContext, BackendSpec, Opened};
    use nic_emu::control::reply_line;
    use nic_emu::PacketBackend;

    let reply = |ctx: &ControlContext, line: &str| -> Value {
        serde_json::from_str(&reply_line(ctx, line.as_bytes())).unwrap()
    };
    let device_with = |backend: Box<dyn PacketBackend>| {
        SharedDevice::new(E1000::new(
            DeviceConfig::default(),
            backend,
            Box::new(nic_emu::SharedIrqLine::new()),
            Arc::new(MonotonicClock::new()),
        ))
    };

    // Impairment: `set loss=100` loses every frame from then on, and `get` counts them.
    let Opened { backend, handles } = BackendSpec::parse_inline("loopback,loss=0")
        .unwrap()
        .open_with_handles(&BackendContext::default())
        .unwrap();
    assert!(handles.impair.is_some() && handles.replay.is_none());
    let device = device_with(backend);
    let ctx = ControlContext::new(Arc::new(device.clone()), "loopback").with_handles(handles);
    let v = reply(
        &ctx,
        r#"{"execute":"impair","arguments":{"action":"set","settings":{"loss":100}}}"#,
    );
    assert_eq!(v["return"]["settings"]["loss"], "100", "{v}");
    {
        let mut d = device.lock();
        let b = d.backend_mut();
        for _ in 0..3 {
            b.send(&[7u8; 60]).unwrap();
        }
        let mut buf = vec![0u8; 2048];
        assert_eq!(b.recv(&mut buf).unwrap(), None, "every frame lost");
    }
    let v = reply(&ctx, r#"{"execute":"impair","arguments":{"action":"get"}}"#);
    assert_eq!(v["return"]["counters"]["tx"]["lost"], 3, "{v}");
    let v = reply(
        &ctx,
        r#"{"execute":"impair","arguments":{"action":"set","settings":{"nonsense":1}}}"#,
    );
    assert_eq!(v["error"]["class"], "InvalidArgument", "{v}");
    let v = reply(
        &ctx,
        r#"{"execute":"replay","arguments":{"action":"pause"}}"#,
    );
    assert_eq!(v["error"]["class"], "NotSupported", "{v}");

    // Replay: paused, it offers nothing; resumed, the frame comes.
    let file = std::env::temp_dir().join(format!("nic-emu-ctl-replay-{}.pcap", std::process::id()));
    {
        let mut rec = PcapRecorder::create(Loopback::new(), &file, Default::default()).unwrap();
        rec.send(&[5u8; 60]).unwrap();
        assert!(rec.finish());
    }
    let Opened { backend, handles } =
        BackendSpec::parse_inline(&format!("pcap,replay={},timing=fast", file.display()))
            .unwrap()
            .open_with_handles(&BackendContext::default())
            .unwrap();
    assert!(handles.replay.is_some() && handles.impair.is_none());
    let device = device_with(backend);
    let ctx = ControlContext::new(Arc::new(device.clone()), "replay").with_handles(handles);
    let v = reply(
        &ctx,
        r#"{"execute":"replay","arguments":{"action":"pause"}}"#,
    );
    assert_eq!(v["return"]["paused"], true, "{v}");
    let mut buf = vec![0u8; 2048];
    assert_eq!(device.lock().backend_mut().recv(&mut buf).unwrap(), None);
    assert_eq!(device.lock().backend_mut().next_rx_deadline(), None);
    let v = reply(
        &ctx,
        r#"{"execute":"replay","arguments":{"action":"resume"}}"#,
    );
    assert_eq!(v["return"]["paused"], false, "{v}");
    assert_eq!(
        device.lock().backend_mut().recv(&mut buf).unwrap(),
        Some(60)
    );
    let v = reply(
        &ctx,
        r#"{"execute":"replay","arguments":{"action":"status"}}"#,
    );
    assert_eq!(v["return"]["delivered"], 1, "{v}");
    assert_eq!(v["return"]["finished"], true, "{v}");
    let _ = std::fs::remove_file(&file);
}
