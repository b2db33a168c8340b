#![no_main]
//! Backend specs, inline and TOML, and the round trip of what `--print-config` prints:
//! every spec that parses prints (Display: the inline syntax) to a string that parses
//! back to the same spec, and a whole configuration prints (Display: a backends.toml)
//! to a file that loads back to the same configuration.
use libfuzzer_sys::fuzz_target;
use nic_emu::config::{BackendSpec, Config};
use std::collections::BTreeMap;

fn round_trip(spec: &BackendSpec, name: &str) {
    let inline = spec.to_string();
    let again = BackendSpec::parse_inline(&inline)
        .unwrap_or_else(|e| panic!("{spec:?} printed as {inline:?}, which does not parse: {e}"));
    assert_eq!(&again, spec, "inline {inline:?} parsed back differently");
    let mut backends = BTreeMap::new();
    backends.insert(name.to_string(), spec.clone());
    let c = Config {
        backends,
        default_backend: name.to_string(),
        ..Config::builtin()
    };
    config_round_trip(&c);
}

fn config_round_trip(c: &Config) {
    let text = c.to_string();
    let again = Config::parse(&text, "printed")
        .unwrap_or_else(|e| panic!("printed config does not load: {e}\n{text}"));
    assert_eq!(
        again.backends, c.backends,
        "backends differ after printing:\n{text}"
    );
    assert_eq!(again.default_backend, c.default_backend, "{text}");
    assert_eq!(again.mac, c.mac, "{text}");
    assert_eq!(again.link_up, c.link_up, "{text}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(spec) = BackendSpec::parse_inline(s) {
                round_trip(&spec, "x");
            }
        }
        1 => {
            if let Ok(spec) = BackendSpec::from_toml(s) {
                round_trip(&spec, "y");
            }
        }
        _ => {
            if let Ok(c) = Config::parse(s, "fuzz.toml") {
                config_round_trip(&c);
                for (name, spec) in &c.backends {
                    round_trip(spec, name);
                }
            }
        }
    }
});
