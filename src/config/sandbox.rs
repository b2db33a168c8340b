//! What each backend kind needs from the sandbox: its system calls, and for a tap the
//! device it reattaches through, for a stream peer its address and port. The sandbox
//! knows thread kinds and call groups, not configurations; this is where the two meet.

use std::path::PathBuf;

use super::BackendKind;
use crate::backend::stream::{StreamAddr, StreamRole};
use crate::sandbox::Plan;

/// Add to `plan` what backend `kind` needs at run time: its calls, and for a tap the device
/// it reattaches through, for a stream peer its address.
pub fn add_backend(plan: &mut Plan, kind: &BackendKind) {
    match kind {
        BackendKind::Tap { .. } => {
            plan.needs.tap = true;
            plan.needs.tap_reattach = true;
            plan.landlock.devices.push(PathBuf::from("/dev/net/tun"));
        }
        // An inherited descriptor is never reopened: no /dev/net/tun.
        BackendKind::TapFd { .. } => plan.needs.tap = true,
        // VXLAN is UDP too: its sockets are opened (and a peer's name resolved) at start.
        BackendKind::Udp { .. } | BackendKind::Mcast { .. } | BackendKind::Vxlan(_) => {
            plan.needs.udp = true
        }
        BackendKind::Stream { addr, role } => {
            plan.needs.stream = true;
            match (role, addr) {
                (StreamRole::Connect, StreamAddr::Unix(_)) => {
                    plan.needs.socket_families.push(libc::AF_UNIX);
                }
                (StreamRole::Connect, StreamAddr::Tcp(a)) => {
                    plan.needs.socket_families.push(if a.is_ipv4() {
                        libc::AF_INET
                    } else {
                        libc::AF_INET6
                    });
                    plan.landlock.tcp_connect.push(a.port());
                }
                (StreamRole::Listen, StreamAddr::Unix(p)) => {
                    plan.needs.stream_listen = true;
                    plan.add_own_socket(p.clone());
                }
                (StreamRole::Listen, StreamAddr::Tcp(_)) => plan.needs.stream_listen = true,
            }
        }
        BackendKind::Pcap { .. } => plan.needs.replay = true,
        BackendKind::Loopback => {}
    }
}
