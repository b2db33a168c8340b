//! nic-emu-cli: serve an emulated e1000 to QEMU over vfio-user (being written).
fn main() {
    eprintln!("nic-emu-cli: the vfio-user frontend is not built yet");
    std::process::exit(2);
}
