//! Backend specs: the inline syntax, the TOML tables of backends.toml, error messages
//! that name the key, and `open` building each kind.

use std::net::SocketAddr;
use std::path::PathBuf;

use nic_emu::backend::{RecordLimits, ReplayTiming, Rewrite};
use nic_emu::config::{BackendKind, BackendSpec, RecordSpec, SpecError};
use proptest::prelude::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn each_kind_parses_inline() {
    let tap = BackendSpec::parse_inline("tap,ifname=tap0").unwrap();
    assert_eq!(
        tap.kind,
        BackendKind::Tap {
            ifname: "tap0".into()
        }
    );
    assert_eq!(tap.record, None);

    let udp = BackendSpec::parse_inline("udp,local=127.0.0.1:7001,remote=127.0.0.1:7002").unwrap();
    assert_eq!(
        udp.kind,
        BackendKind::Udp {
            local: sa("127.0.0.1:7001"),
            remote: Some(sa("127.0.0.1:7002")),
        }
    );
    let learn = BackendSpec::parse_inline("udp,local=[::1]:7001").unwrap();
    assert_eq!(
        learn.kind,
        BackendKind::Udp {
            local: sa("[::1]:7001"),
            remote: None
        }
    );

    let pcap = BackendSpec::parse_inline("pcap,replay=in.pcap,timing=250pps,repeat=4").unwrap();
    assert_eq!(
        pcap.kind,
        BackendKind::Pcap {
            replay: "in.pcap".into(),
            timing: ReplayTiming::Rate(250.try_into().unwrap()),
            repeat: 4,
            rewrite: Rewrite::default(),
        }
    );
    let defaults = BackendSpec::parse_inline("pcap,replay=in.pcap").unwrap();
    assert_eq!(
        defaults.kind,
        BackendKind::Pcap {
            replay: "in.pcap".into(),
            timing: ReplayTiming::Original,
            repeat: 1,
            rewrite: Rewrite::default(),
        }
    );
    let fast = BackendSpec::parse_inline("pcap,replay=in.pcap,timing=fast").unwrap();
    assert!(matches!(
        fast.kind,
        BackendKind::Pcap {
            timing: ReplayTiming::Fast,
            ..
        }
    ));

    let lo = BackendSpec::parse_inline("loopback,record=out.pcap,record_max_frames=10").unwrap();
    assert_eq!(lo.kind, BackendKind::Loopback);
    assert_eq!(
        lo.record,
        Some(RecordSpec {
            path: "out.pcap".into(),
            limits: RecordLimits {
                max_bytes: None,
                max_frames: Some(10)
            },
        })
    );
    // A comma in a file name is doubled, as in QEMU.
    let comma = BackendSpec::parse_inline("loopback,record=a,,b.pcap").unwrap();
    assert_eq!(comma.record.unwrap().path, PathBuf::from("a,b.pcap"));
    // tap without a name: the kernel picks one.
    let anon = BackendSpec::parse_inline("tap").unwrap();
    assert_eq!(
        anon.kind,
        BackendKind::Tap {
            ifname: "tap%d".into()
        }
    );
}

#[test]
fn an_inherited_tap_descriptor_is_a_key_of_tap() {
    let spec = BackendSpec::parse_inline("tap,fd=3").unwrap();
    assert_eq!(spec.kind, BackendKind::TapFd { fd: 3 });
    assert_eq!(spec.kind.name(), "tap");
    assert_eq!(spec.to_string(), "tap,fd=3");
    assert_eq!(BackendSpec::parse_inline(&spec.to_string()), Ok(spec));
    let err = |s: &str| BackendSpec::parse_inline(s).unwrap_err().to_string();
    for bad in [
        "tap,fd=3,ifname=tap0",
        "tap,fd=-1",
        "tap,fd=three",
        "tap,fd=4294967296",
    ] {
        let msg = err(bad);
        assert!(msg.contains("`fd`"), "{bad}: {msg}");
    }
    assert!(err("udp,local=127.0.0.1:1,fd=3").contains("`fd`"));
    #[cfg(feature = "tap")]
    {
        // Standard input is not a tap: opening says so, naming the key.
        let e = BackendSpec::parse_inline("tap,fd=0")
            .unwrap()
            .open()
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("tap: `fd`=0: "), "{e}");
    }
}

#[test]
fn inline_errors_name_the_problem() {
    let err = |s: &str| BackendSpec::parse_inline(s).unwrap_err();
    assert_eq!(err(""), SpecError::Empty);
    assert_eq!(err("vde,sock=/x"), SpecError::UnknownKind("vde".into()));
    assert!(err("udp,local=127.0.0.1:1,colour=red")
        .to_string()
        .contains("`colour`"));
    assert_eq!(
        err("udp,remote=127.0.0.1:1"),
        SpecError::MissingKey {
            kind: "udp".into(),
            key: "local".into()
        }
    );
    assert_eq!(
        err("tap,ifname=tap0,local=127.0.0.1:1"),
        SpecError::KeyNotForKind {
            kind: "tap".into(),
            key: "local".into()
        }
    );
    assert_eq!(
        err("tap,ifname=a,ifname=b"),
        SpecError::DuplicateKey("ifname".into())
    );
    assert_eq!(err("tap,tap0"), SpecError::Syntax("tap0".into()));
    let msg = err("udp,local=localhost:7").to_string();
    assert!(
        msg.contains("`local`") && msg.contains("localhost:7"),
        "{msg}"
    );
    let msg = err("udp,local=127.0.0.1:1,remote=[::1]:2").to_string();
    assert!(
        msg.contains("`remote`") && msg.contains("IP version"),
        "{msg}"
    );
    let msg = err("pcap,replay=x.pcap,timing=slow").to_string();
    assert!(msg.contains("`timing`") && msg.contains("slow"), "{msg}");
    assert!(err("pcap,replay=x.pcap,timing=0pps")
        .to_string()
        .contains("`timing`"));
    assert!(err("pcap,replay=x.pcap,repeat=-1")
        .to_string()
        .contains("`repeat`"));
    assert!(err("pcap,replay=").to_string().contains("`replay`"));
    assert!(err("tap,ifname=far-too-long-a-name")
        .to_string()
        .contains("`ifname`"));
    assert!(err("loopback,record_max_bytes=5")
        .to_string()
        .contains("record=FILE"));
}

proptest! {
    /// Display writes the inline syntax back, and it parses to the same spec.
    #[test]
    fn display_round_trips(
        kind in 0u8..4,
        port in 1u16..,
        name in "[a-z]{1,10}",
        file in "[a-z,./]{1,20}",
        n in 0u64..1000,
        pps in 1u32..,
        rec in proptest::option::of(("[a-z,]{1,12}", proptest::option::of(0u64..), proptest::option::of(0u64..))),
    ) {
        let kind = match kind {
            0 => BackendKind::Tap { ifname: name },
            1 => BackendKind::Udp { local: SocketAddr::from(([127, 0, 0, 1], port)), remote: (n % 2 == 0).then(|| SocketAddr::from(([10, 1, 2, 3], port))) },
            2 => BackendKind::Pcap { replay: file.into(), timing: [ReplayTiming::Original, ReplayTiming::Fast, ReplayTiming::Rate(pps.try_into().unwrap())][(n % 3) as usize], repeat: n, rewrite: Rewrite::default() },
            _ => BackendKind::Loopback,
        };
        let record = rec.map(|(p, b, f)| RecordSpec { path: p.into(), limits: RecordLimits { max_bytes: b, max_frames: f } });
        let spec = BackendSpec { kind, record, impair: None };
        let text = spec.to_string();
        prop_assert_eq!(BackendSpec::parse_inline(&text), Ok(spec), "{}", text);
    }

    /// Arbitrary input never panics the parser.
    #[test]
    fn parse_inline_never_panics(s in ".{0,80}") {
        let _ = BackendSpec::parse_inline(&s);
    }
}

#[test]
fn open_builds_loopback_and_wraps_it_for_recording() {
    let lo = BackendSpec::parse_inline("loopback")
        .unwrap()
        .open()
        .unwrap();
    assert_eq!(lo.name(), "loopback");
    #[cfg(feature = "pcap")]
    {
        let path = std::env::temp_dir().join(format!("nic-emu-spec-{}.pcap", std::process::id()));
        let spec =
            BackendSpec::parse_inline(&format!("loopback,record={}", path.display())).unwrap();
        let mut b = spec.open().unwrap();
        assert!(b.name().contains("recorded to"));
        assert!(b.send(&[0u8; 60]).unwrap());
        let mut buf = vec![0u8; nic_emu::backend::MAX_FRAME];
        assert_eq!(b.recv(&mut buf).unwrap(), Some(60));
        b.flush().unwrap();
        // Header + two records of 16 + 60 bytes.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 2 * 76);
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(feature = "udp")]
#[test]
fn open_builds_a_udp_tunnel() {
    let b = BackendSpec::parse_inline("udp,local=127.0.0.1:0")
        .unwrap()
        .open()
        .unwrap();
    assert!(b.name().starts_with("udp 127.0.0.1:"));
    assert!(b.rx_fd().is_some());
}

#[cfg(feature = "pcap")]
#[test]
fn open_reports_a_missing_replay_file() {
    let spec = BackendSpec::parse_inline("pcap,replay=/nonexistent/in.pcap").unwrap();
    let err = spec.open().err().expect("missing file");
    assert!(err.to_string().contains("/nonexistent/in.pcap"), "{err}");
}

#[cfg(feature = "tap")]
#[test]
fn open_tap_with_a_taken_non_tap_name_explains() {
    // `lo` always exists and is not a tap: as root this is "name taken", as a user
    // "permission denied"; either way the message says which and names `lo`.
    let err = BackendSpec::parse_inline("tap,ifname=lo")
        .unwrap()
        .open()
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("tap lo") && (msg.contains("taken") || msg.contains("CAP_NET_ADMIN")),
        "{msg}"
    );
}

#[cfg(feature = "config")]
mod toml_tables {
    use super::*;

    #[test]
    fn tables_deserialise() {
        let spec = BackendSpec::from_toml(
            r#"
            kind = "pcap"
            replay = "in.pcap"
            timing = "fast"
            repeat = 0
            record = "out.pcap"
            record_max_bytes = 1000000
            "#,
        )
        .unwrap();
        assert_eq!(
            spec,
            BackendSpec {
                kind: BackendKind::Pcap {
                    replay: "in.pcap".into(),
                    timing: ReplayTiming::Fast,
                    repeat: 0,
                    rewrite: Rewrite::default(),
                },
                record: Some(RecordSpec {
                    path: "out.pcap".into(),
                    limits: RecordLimits {
                        max_bytes: Some(1_000_000),
                        max_frames: None
                    }
                }),
                impair: None,
            }
        );
        // As a field of a larger document, the way config/file.rs uses it.
        #[derive(serde::Deserialize)]
        struct Doc {
            backends: std::collections::BTreeMap<String, BackendSpec>,
        }
        let doc: Doc = toml::from_str(
            r#"
            [backends.wire]
            kind = "udp"
            local = "127.0.0.1:7001"
            remote = "127.0.0.1:7002"
            [backends.lo]
            kind = "loopback"
            "#,
        )
        .unwrap();
        assert_eq!(doc.backends["lo"].kind, BackendKind::Loopback);
        assert!(matches!(
            doc.backends["wire"].kind,
            BackendKind::Udp {
                remote: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_key() {
        let err = |s: &str| BackendSpec::from_toml(s).unwrap_err().to_string();
        let unknown = err("kind = \"udp\"\nlocal = \"127.0.0.1:1\"\ncolour = \"red\"\n");
        assert!(unknown.contains("colour"), "{unknown}");
        let missing_kind = err("local = \"127.0.0.1:1\"\n");
        assert!(missing_kind.contains("kind"), "{missing_kind}");
        let missing = err("kind = \"udp\"\n");
        assert!(missing.contains("`local`"), "{missing}");
        let mistyped = err("kind = \"pcap\"\nreplay = \"x\"\nrepeat = \"twice\"\n");
        assert!(
            mistyped.contains("repeat") && mistyped.contains("u64"),
            "{mistyped}"
        );
        let wrong_kind = err("kind = \"ethernet\"\n");
        assert!(wrong_kind.contains("ethernet"), "{wrong_kind}");
        let fd = BackendSpec::from_toml("kind = \"tap\"\nfd = 3\n").unwrap();
        assert_eq!(fd.kind, BackendKind::TapFd { fd: 3 });
        let both = err("kind = \"tap\"\nfd = 3\nifname = \"tap0\"\n");
        assert!(both.contains("`fd`"), "{both}");
        let not_for_kind = err("kind = \"loopback\"\nifname = \"tap0\"\n");
        for m in [&unknown, &missing, &not_for_kind] {
            println!("{m}");
        }
        assert!(not_for_kind.contains("`ifname`"), "{not_for_kind}");
    }
}

#[cfg(feature = "config")]
#[test]
fn errors_inside_a_document_point_at_the_table() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        backends: std::collections::BTreeMap<String, BackendSpec>,
    }
    let err = toml::from_str::<Doc>(
        "[backends.lo]\nkind = \"loopback\"\n\n[backends.wire]\nkind = \"udp\"\nremote = \"127.0.0.1:2\"\n",
    )
    .unwrap_err()
    .to_string();
    println!("{err}");
    assert!(err.contains("needs `local`"), "{err}");
    assert!(err.contains("line 5") || err.contains("line 4"), "{err}");
}

#[cfg(not(all(feature = "tap", feature = "udp", feature = "pcap")))]
#[test]
fn a_kind_whose_feature_is_off_says_which_feature() {
    for (spec, feature) in [
        ("tap,ifname=tap0", "tap"),
        ("udp,local=127.0.0.1:0", "udp"),
        ("pcap,replay=in.pcap", "pcap"),
        ("loopback,record=out.pcap", "pcap"),
    ] {
        let enabled = match feature {
            "tap" => cfg!(feature = "tap"),
            "udp" => cfg!(feature = "udp"),
            _ => cfg!(feature = "pcap"),
        };
        if enabled {
            continue;
        }
        let err = BackendSpec::parse_inline(spec)
            .unwrap()
            .open()
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("`{feature}` feature")),
            "{spec}: {msg}"
        );
    }
}

/// Found by the `backend_spec` fuzz target: `--print-config` (Config's Display) wrote
/// strings with Rust's `{:?}`, whose escapes (`\u{2}`) are not TOML, so a path or
/// backend name with a control character printed a file that did not load.
#[cfg(feature = "config")]
#[test]
fn printed_config_with_control_characters_and_quotes_loads_back() {
    use nic_emu::config::Config;
    let text = "default = \"a\\u0002\\\"b\"\n\
                [backends.\"a\\u0002\\\"b\"]\n\
                kind = \"pcap\"\n\
                replay = \"in\\u0002.pcap\\\\x\\ny\\u007F\"\n\
                record = \"tab\\there\"\n";
    let c = Config::parse(text, "t.toml").unwrap();
    let printed = c.to_string();
    let again = Config::parse(&printed, "printed").unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(again.backends, c.backends, "{printed}");
    assert_eq!(again.default_backend, "a\u{2}\"b");
}

/// Found by the `backend_spec` fuzz target: an inline spec trimmed the whole string, so
/// a value ending in a space (kept by backends.toml, written so by Display) lost it.
#[cfg(feature = "config")]
#[test]
fn inline_values_keep_their_spaces_as_toml_values_do() {
    let spec = BackendSpec::from_toml("kind = \"loopback\"\nrecord = \" r.pcap \"\n").unwrap();
    assert_eq!(
        spec.record.as_ref().unwrap().path,
        PathBuf::from(" r.pcap ")
    );
    let text = spec.to_string();
    assert_eq!(BackendSpec::parse_inline(&text), Ok(spec), "{text:?}");
    // Spaces around the kind are still ignored.
    assert_eq!(
        BackendSpec::parse_inline("  loopback \n").unwrap().kind,
        BackendKind::Loopback
    );
}
