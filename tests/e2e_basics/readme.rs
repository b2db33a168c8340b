//! The README's tap example end to end, as written: its ```sh block (nic-emu-cli on tap0
//! with /tmp/nic-emu.sock, the tap's address) and the `scripts/boot-guest.sh ... 'ping
//! -c3 10.233.0.1'` line under it, in a sandbox of their own (network and mount
//! namespaces, private /tmp and /run: the README's paths and tap0 are used as they
//! are). The guest pings the tap through nic-emu; and the QEMU the script started had
//! every option the README's QEMU line gives (`-nic none`, the shared memfd, the JSON
//! `-device vfio-user-pci` on /tmp/nic-emu.sock), apart from the RAM size.
#![cfg(feature = "cli")]

// The harness's flows (ping helpers) are not needed here.
#[allow(unused_imports)]
use crate::support::e2e;
use crate::support::readme;

use std::time::Instant;

use e2e::{serial, Rig};
use readme::*;

#[test]
fn e2e_readme_tap_example_pings_as_written() {
    const T: &str = "e2e_readme_tap_example_pings_as_written";
    let Some(rig) = Rig::get(T, true) else { return };
    let _serial = serial();
    let t0 = Instant::now();
    let heading = "A QEMU guest with an e1000 on a tap";
    let sh: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.heading.starts_with(heading) && b.lang == "sh")
        .collect();
    let setup = commands(&sh[0]);
    let qemu_line = setup
        .iter()
        .find(|c| c.starts_with("qemu-system-x86_64"))
        .expect("the README's QEMU line")
        .clone();
    let boot = sh
        .iter()
        .flat_map(commands)
        .find(|c| c.starts_with("scripts/boot-guest.sh"))
        .expect("the README's boot-guest.sh line");

    let dir = workdir("e2e-tap");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut script = String::from(SERVE_FNS);
    for c in setup.iter().filter(|c| !c.starts_with("qemu-system")) {
        if c.starts_with("nic-emu-cli ") {
            script.push_str(&format!(
                "serve 0 {}\n",
                sh_quote(c.trim_end_matches('&').trim_end())
            ));
            script.push_str(
                "for i in $(seq 100); do [ -S /tmp/nic-emu.sock ] && break; sleep 0.1; done\n",
            );
        } else {
            script.push_str(&format!("{c}\n"));
        }
    }
    // From the repository root, as the README's relative script path expects.
    script.push_str(&format!(
        "up 0 0\ncd {}\nexport NIC_EMU_CACHE={} NIC_EMU_SHOW_QEMU=1\nrc=0; {boot} || rc=$?\n\
         cd {}\nstop_all\nexit $rc\n",
        repo.display(),
        rig.cache.display(),
        dir.display()
    ));
    let o = in_sandbox(&dir, &script);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "README tap example failed:\n{out}\n{err}"
    );
    assert!(
        out.contains("3 packets transmitted, 3 packets received"),
        "no three answers to the guest's ping:\n{out}"
    );

    // What boot-guest.sh ran against the README's QEMU line (sizes aside: README 512 MB).
    let ran: Vec<String> = err
        .lines()
        .filter_map(|l| l.strip_prefix("[boot-guest] qemu arg: "))
        .map(str::to_string)
        .collect();
    assert!(
        !ran.is_empty(),
        "boot-guest.sh did not show QEMU's arguments:\n{err}"
    );
    let norm = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect()
    };
    let ran_pairs: Vec<String> = ran
        .windows(2)
        .map(|p| norm(&format!("{} {}", p[0], p[1])))
        .collect();
    let readme = words(&qemu_line);
    for pair in readme[1..]
        .windows(2)
        .filter(|p| p[0].starts_with('-') && p[1] != "...")
    {
        let want = norm(&format!("{} {}", pair[0], pair[1]));
        assert!(
            ran_pairs.contains(&want),
            "README's `{} {}` is not what boot-guest.sh gives QEMU: {ran:?}",
            pair[0],
            pair[1]
        );
    }
    eprintln!("e2e: {T}: {:.1}s", t0.elapsed().as_secs_f64());
}
