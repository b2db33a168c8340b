//! Build script: with the `generate-bindings` feature, write the C header for the C API
//! (`src/capi/`) with cbindgen to `$OUT_DIR/nic_emu.h` and `include/nic_emu.h`. Without
//! the feature it does nothing (and cbindgen is not compiled).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "generate-bindings")]
    bindings::generate();
}

#[cfg(feature = "generate-bindings")]
mod bindings {
    use std::path::PathBuf;

    pub fn generate() {
        println!("cargo:rerun-if-changed=src/capi");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        let root =
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
            .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
        let bindings = cbindgen::Builder::new()
            .with_config(config)
            .with_src(root.join("src/capi/mod.rs"))
            .generate()
            .unwrap_or_else(|e| panic!("cbindgen could not generate the C header: {e}"));
        bindings.write_to_file(out_dir.join("nic_emu.h"));
        // The committed copy, for C users without cbindgen; rewritten only if it changed
        // (write_to_file compares first), so an up-to-date tree stays untouched.
        bindings.write_to_file(root.join("include/nic_emu.h"));
        println!(
            "cargo:rustc-env=NIC_EMU_HEADER={}",
            out_dir.join("nic_emu.h").display()
        );
    }
}
